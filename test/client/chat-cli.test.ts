import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const CLI = join(root, 'src', 'client', 'chat-cli.ts')
const BIN = join(root, 'bin', 'pigeon.js')

const run = (args: string[], env: Record<string, string> = {}) => {
  const e: NodeJS.ProcessEnv = { ...process.env, ...env }
  for (const k of ['PIGEON_USER', 'PIGEON_PASSWORD', 'PIGEON_PORT', 'PIGEON_HOST', 'PIGEON_SERVER_KEY', 'PIGEON_STATE_DIR']) if (!(k in env)) delete e[k]
  const r = spawnSync(process.execPath, args, { cwd: root, input: '', env: e, encoding: 'utf8', timeout: 60_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

t.test('--help prints the usage and the commands, exit 0', async (t) => {
  const r = run(['--import', 'tsx', CLI, '--help'])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /Usage: npm run chat -- --user NAME/)
  t.match(r.stdout, /\/to USER/)
  t.match(r.stdout, /--state-dir DIR/)
})

t.test('pigeon chat --help dispatches to the chat CLI', async (t) => {
  const r = run([BIN, 'chat', '--help'])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /Usage: npm run chat/)
})

t.test('bad arguments exit 2 with the reason', async (t) => {
  let r = run(['--import', 'tsx', CLI])
  t.equal(r.code, 2)
  t.match(r.stderr, /--user NAME \(or env PIGEON_USER\) is required/)
  r = run(['--import', 'tsx', CLI, '--user', 'alice', '--port', '99999'])
  t.equal(r.code, 2)
  t.match(r.stderr, /--port must be an integer/)
  r = run(['--import', 'tsx', CLI, '--user', 'alice', '--server-key', 'nothex'])
  t.equal(r.code, 2)
  t.match(r.stderr, /64 hex digits/)
  r = run(['--import', 'tsx', CLI, '--bogus'])
  t.equal(r.code, 2)
})

t.test('piped input: log in, add a contact, send, and see it again in /history on the next run', async (t) => {
  const { spawn } = await import('node:child_process')
  const { mkdtempSync, rmSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const { randomBytes } = await import('node:crypto')
  const { ChatClient } = await import('../../src/client/chat-client.js')
  const { LoginService } = await import('../../src/server/accounts/login.js')
  const { SessionTokens } = await import('../../src/server/accounts/tokens.js')
  const { startChatServer } = await import('../../src/server/chat-server.js')
  const { MemoryAccountStore } = await import('../../src/store/memory-account-store.js')
  const { MemoryMessageStore } = await import('../../src/store/memory-message-store.js')

  const accounts = new MemoryAccountStore()
  const messages = new MemoryMessageStore({ accounts })
  const tokens = new SessionTokens({ store: accounts, secret: new Uint8Array(randomBytes(32)) })
  const login = new LoginService({ store: accounts, tokens, openRegistration: true })
  const server = await startChatServer({ host: '127.0.0.1', port: 0, login, accounts, messages, commitWindowMs: 0 })
  t.teardown(() => server.close())
  const stateDir = mkdtempSync(join(tmpdir(), 'pigeon-chat-cli-'))
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }))

  const bob = await ChatClient.start({ host: '127.0.0.1', port: server.port, username: 'bob', password: 'bob-password', register: true, deviceName: 'test' })
  t.teardown(() => bob.close())
  const bobGot: string[] = []
  bob.on('message', (e) => bobGot.push(e.body))

  const cli = (input: string, extra: string[] = []) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const env: NodeJS.ProcessEnv = { ...process.env, PIGEON_PASSWORD: 'alice-password' }
      delete env.PIGEON_SERVER_KEY
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', CLI, '--insecure', '--host', '127.0.0.1', '--port', String(server.port), '--user', 'alice', '--state-dir', stateDir, ...extra],
        { cwd: root, env },
      )
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (d) => (stdout += d))
      child.stderr.on('data', (d) => (stderr += d))
      child.on('close', (code) => resolve({ code, stdout, stderr }))
      child.stdin.end(input)
    })

  let r = await cli('/add bob\n/to bob\nhello from the cli\n/status\n', ['--register'])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /connected as alice/)
  t.match(r.stdout, /added bob/)
  t.match(r.stdout, /alice: hello from the cli/)
  t.match(r.stdout, /✓ sent "hello from the cli"/)
  t.same(bobGot, ['hello from the cli'])

  const alice = await accounts.getUserByName('alice')
  await bob.send({ kind: 'user', userId: alice!.userId }, 'hi alice')
  r = await cli('/list\n/to bob\n/history\n')
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /bob \(1 unread\)/)
  t.match(r.stdout, /alice: hello from the cli/)
  t.match(r.stdout, /bob: hi alice/)
})
