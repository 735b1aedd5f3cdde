/**
 * Tokens revoked outside the server process end the live sessions that use them: the
 * admin CLI's kick (and passwd) write the database, and `npm start` notices another
 * connection's commit and checks its sessions' tokens again. LOGOUT ends the other
 * sessions resumed with the same token.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ChatClient, type ChatClientOptions } from '../../src/client/chat-client.js'
import { unusedPort } from '../io/helpers.js'
import { ROOT, ServerProcess, addUsersToDataDir, passwordOf, tempDir, waitFor, watch } from './udp-helpers.js'

t.test('admin kick closes the live sessions of the user in the running server', { timeout: 60_000 }, async (t) => {
  const dataDir = tempDir('pigeon-revoke-')
  await addUsersToDataDir(dataDir, ['kim', 'lee'])
  const port = await unusedPort('127.0.0.1')
  const server = new ServerProcess(['--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir, '--log-level', 'info'])
  const clients: ChatClient[] = []
  t.teardown(async () => {
    for (const c of clients) await c.close()
    await server.kill()
    rmSync(dataDir, { recursive: true, force: true })
  })
  const listening = await server.started()
  const options = (username: string): ChatClientOptions => ({
    host: '127.0.0.1',
    port,
    serverPublicKey: new Uint8Array(Buffer.from(listening.publicKey ?? '', 'hex')),
    username,
    password: passwordOf(username),
    deviceName: 'revocation-test',
    reconnectDelayMs: 60_000, // stays down once closed: what closed it is what the test looks at
  })
  const kim = watch(await ChatClient.start(options('kim')))
  const lee = watch(await ChatClient.start(options('lee')))
  clients.push(kim, lee)
  const reasons: Record<string, string[]> = { kim: [], lee: [] }
  kim.on('disconnected', (r) => reasons.kim.push(r))
  lee.on('disconnected', (r) => reasons.lee.push(r))

  const admin = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/server/admin.ts'), '--data-dir', dataDir, 'kick', 'kim'], { cwd: ROOT, stdio: 'ignore' })
  const [code] = await once(admin, 'exit')
  t.equal(code, 0, 'admin kick ran')
  await waitFor("kim's session closed", () => reasons.kim.length > 0)
  t.match(reasons.kim[0], /token revoked/, `closed by the server because of the revocation (${reasons.kim[0]})`)
  t.same(reasons.lee, [], 'lee, not kicked, stays connected')
  t.ok(server.lines.some((l) => l.msg === 'sessions of revoked or expired tokens closed' && l.closed === 1), 'the server says so')
})
