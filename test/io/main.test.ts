import type { PigeonClient } from '../../src/io/client.js'
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { connect, messages, str, text, unusedPort } from './helpers.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const tsx = (script: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess =>
  spawn(process.execPath, ['--import', 'tsx', join(ROOT, script), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env })

const PASSWORD = 'correct horse battery'
const USER_ENV = { ...process.env, PIGEON_USER: 'alice', PIGEON_PASSWORD: PASSWORD }

/** `npm run admin -- add-user alice` into the server's data directory. */
const addUser = async (dataDir: string): Promise<void> => {
  const r = await runToEnd(tsx('src/server/admin.ts', ['--data-dir', dataDir, 'add-user', 'alice'], { ...process.env, PIGEON_ADMIN_PASSWORD: PASSWORD }))
  if (r.code !== 0) throw new Error(`admin add-user failed: ${r.stderr}`)
}

const login = async (client: PigeonClient): Promise<void> => {
  await client.login({ username: 'alice', password: PASSWORD, deviceName: 'test' })
}

interface LogLine {
  msg: string
  port?: number
  [key: string]: unknown
}

/** Start `npm start`'s entry; resolves once it logged where it listens. */
const startServerProcess = async (
  args: string[],
): Promise<{ child: ChildProcess; port: number; lines: LogLine[]; publicKey: string | undefined }> => {
  // Each server gets its own data directory (accounts, token secret, key) with user alice.
  const dataDir = mkdtempSync(join(tmpdir(), 'pigeon-data-'))
  await addUser(dataDir)
  const child = tsx('src/server/main.ts', [...args, '--data-dir', dataDir])
  const lines: LogLine[] = []
  const listening = new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const j = JSON.parse(line) as LogLine
      lines.push(j)
      if (j.msg === 'listening') resolve(j.port!)
    })
    child.once('exit', (code) => reject(new Error(`server exited with ${code} before listening`)))
  })
  const port = await listening
  const publicKey = lines.find((l) => l.msg === 'listening')?.publicKey as string | undefined
  return { child, port, lines, publicKey }
}

const keyOf = (hex: string | undefined): Uint8Array => new Uint8Array(Buffer.from(hex ?? '', 'hex'))

const runToEnd = async (child: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> => {
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
  const [code] = (await once(child, 'exit')) as [number | null]
  return { code, stdout, stderr }
}

t.test('npm start: answers a client and the ping script on both families, exits 0 on SIGTERM', { timeout: 60_000 }, async (t) => {
  const qlog = join(mkdtempSync(join(tmpdir(), 'pigeon-')), 'server.qlog')
  // No --host: the default listens on both IPv6 and IPv4.
  const keyLog = join(mkdtempSync(join(tmpdir(), 'pigeon-')), 'keys.log')
  const { child, port, lines, publicKey } = await startServerProcess(['--port', '0', '--qlog', qlog, '--key-log', keyLog])
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  t.ok(port > 0, `listening on port ${port}`)
  t.match(publicKey, /^[0-9a-f]{64}$/, 'encrypted by default: it prints the key clients pin')

  for (const host of ['127.0.0.1', '::1']) {
    const client = await connect(host, port, { serverPublicKey: keyOf(publicKey) })
    await login(client)
    const one = messages(client, 1)
    client.send(4, text(`ping over ${host}`))
    t.equal(str((await one)[0].data), `ping over ${host}`, `echo over ${host}`)
    await client.close()
  }

  const ping = await runToEnd(
    tsx('src/client/ping.ts', ['--host', '127.0.0.1', '--port', String(port), '--count', '3', '--interval-ms', '0', '--server-key', publicKey!], USER_ENV),
  )
  t.equal(ping.code, 0, 'ping exits 0')
  t.match(ping.stdout, /3 sent, 3 echoed, 0\.0% lost/)
  t.match(ping.stdout, /rtt min\/avg\/p50\/p99\/max = /)

  const exit = once(child, 'exit')
  child.kill('SIGTERM')
  const [code] = (await exit) as [number | null]
  t.equal(code, 0, 'exit 0 after SIGTERM')
  t.ok(lines.some((l) => l.msg === 'session closed'), 'the server logged sessions closing')
  t.ok(lines.some((l) => l.msg === 'stopped'), 'and its shutdown')

  const keyLines = readFileSync(keyLog, 'utf8').trim().split('\n')
  t.ok(keyLines.length >= 2 && keyLines.every((l) => /^PIGEON_(CLIENT|SERVER)_TRAFFIC_SECRET [0-9a-f]{64} [0-9a-f]{64}$/.test(l)), 'the key log has the session secrets')
  t.ok(lines.some((l) => l.msg === 'listening' && l.retry === true), 'stateless retry is on by default')

  const events = readFileSync(qlog, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { time: number; name: string })
  t.ok(events.length > 10, 'qlog has events')
  t.ok(events.some((e) => e.name === 'transport:packet_received'))
  t.ok(events.every((e) => e.time > 1e12), 'qlog times are Unix-epoch milliseconds')
})

t.test('npm start closes live sessions with CLOSE on SIGTERM', { timeout: 60_000 }, async (t) => {
  const { child, port, publicKey } = await startServerProcess(['--host', '::1', '--port', '0'])
  const client = await connect('::1', port, { serverPublicKey: keyOf(publicKey) })
  const closed = new Promise((resolve) => client.once('closed', resolve))
  child.kill('SIGTERM')
  t.same(await closed, { code: 0, reason: 'server shutting down', byPeer: true })
  const [code] = (await once(child, 'exit')) as [number | null]
  t.equal(code, 0)
})

t.test('ping exits 1 with a clear message when nothing answers', { timeout: 60_000 }, async (t) => {
  const port = await unusedPort('127.0.0.1')
  const r = await runToEnd(tsx('src/client/ping.ts', ['--port', String(port), '--count', '1', '--timeout-ms', '300']))
  t.equal(r.code, 1)
  t.match(r.stderr, new RegExp(`pigeon ping: pigeon server 127\\.0\\.0\\.1:${port} unreachable`))
})

t.test('bad arguments: exit 2 with usage', { timeout: 60_000 }, async (t) => {
  const r = await runToEnd(tsx('src/server/main.ts', ['--port', 'seventy']))
  t.equal(r.code, 2)
  t.match(r.stderr, /port: expected an integer/)
  t.match(r.stderr, /Usage: npm start/)
})

t.test('a client pinning another key is refused; --insecure serves plaintext clients', { timeout: 60_000 }, async (t) => {
  const secure = await startServerProcess(['--host', '127.0.0.1', '--port', '0'])
  const wrong = keyOf(secure.publicKey)
  wrong[0] ^= 1
  await t.rejects(connect('127.0.0.1', secure.port, { serverPublicKey: wrong, connectTimeoutMs: 5000 }), /HANDSHAKE_FAILED/)
  await t.rejects(connect('127.0.0.1', secure.port, { connectTimeoutMs: 5000 }), /PROTOCOL_VIOLATION/, 'a plaintext client is refused too')
  secure.child.kill('SIGTERM')
  await once(secure.child, 'exit')

  const plain = await startServerProcess(['--host', '127.0.0.1', '--port', '0', '--insecure'])
  t.equal(plain.publicKey, undefined)
  const client = await connect('127.0.0.1', plain.port)
  await login(client)
  const one = messages(client, 1)
  client.send(4, text('plain'))
  t.equal(str((await one)[0].data), 'plain')
  await client.close()
  plain.child.kill('SIGTERM')
  await once(plain.child, 'exit')
})

t.test('the data directory the server creates is owner-only; setup errors name their file', { timeout: 60_000 }, async (t) => {
  const parent = mkdtempSync(join(tmpdir(), 'pigeon-perm-'))
  t.teardown(() => rmSync(parent, { recursive: true, force: true }))
  const dataDir = join(parent, 'data')
  const child = tsx('src/server/main.ts', ['--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir])
  const listening = new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if ((JSON.parse(line) as LogLine).msg === 'listening') resolve()
    })
    child.once('exit', (code) => reject(new Error(`server exited with ${code} before listening`)))
  })
  await listening
  t.equal(statSync(dataDir).mode & 0o777, 0o700, 'the key, the secret and pigeon.db are not readable by others')
  child.kill('SIGTERM')
  t.equal((await once(child, 'exit'))[0], 0)

  const badKeyLog = await runToEnd(tsx('src/server/main.ts', ['--port', '0', '--data-dir', dataDir, '--key-log', join(parent, 'missing', 'keys.log')]))
  t.equal(badKeyLog.code, 1, 'a key log that cannot be written stops the start')
  t.match(badKeyLog.stderr, /key log file .*missing\/keys\.log: ENOENT/)

  writeFileSync(join(dataDir, 'pigeon.db'), 'not a database, at all, not even close to one'.repeat(100))
  const corrupt = await runToEnd(tsx('src/server/main.ts', ['--port', '0', '--data-dir', dataDir]))
  t.equal(corrupt.code, 1)
  t.match(corrupt.stderr, /cannot open the database .*pigeon\.db: file is not a database/)
})
