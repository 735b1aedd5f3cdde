import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { SqliteAccountStore } from '../../src/store/sqlite-account-store.js'
import { SQLITE_MIGRATIONS } from '../../src/store/sqlite-message-schema.js'
import { LoginService } from '../../src/server/accounts/login.js'
import { verifyPassword } from '../../src/server/accounts/password.js'
import { SessionTokens, loadOrCreateTokenSecret } from '../../src/server/accounts/tokens.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const ADMIN = join(root, 'src', 'server', 'admin.ts')

const admin = (args: string[], options: { input?: string; env?: Record<string, string> } = {}) => {
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env }
  delete env.PIGEON_DATA_DIR
  if (!options.env?.PIGEON_ADMIN_PASSWORD) delete env.PIGEON_ADMIN_PASSWORD
  const r = spawnSync(process.execPath, ['--import', 'tsx', ADMIN, ...args], { cwd: root, input: options.input ?? '', env, encoding: 'utf8' })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

t.test('add-user, list-users, passwd, kick over a real data directory', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'pigeon-admin-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const pwFile = join(dataDir, 'pw.txt')
  writeFileSync(pwFile, 'wonderland\n')

  let r = admin(['--data-dir', dataDir, 'add-user', 'alice', '--password-file', pwFile])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /added user alice \(id 1\)/)
  r = admin(['--data-dir', dataDir, 'add-user', 'bob'], { input: 'builder-bob\n' })
  t.equal(r.code, 0, `password from piped stdin: ${r.stderr}`)
  r = admin(['--data-dir', dataDir, 'add-user', 'alice', '--password-file', pwFile])
  t.equal(r.code, 1)
  t.match(r.stderr, /already exists/)
  r = admin(['--data-dir', dataDir, 'add-user', 'carol'], { input: 'short\n' })
  t.equal(r.code, 1)
  t.match(r.stderr, /too short/)
  r = admin(['--data-dir', dataDir, 'add-user', 'Bad Name', '--password-file', pwFile])
  t.equal(r.code, 1)
  t.match(r.stderr, /invalid username/)

  // Log alice in from "the server" (same data dir, another connection).
  const store = new SqliteAccountStore({ dataDir, migrations: SQLITE_MIGRATIONS })
  t.teardown(() => store.close())
  const tokens = new SessionTokens({ store, secret: loadOrCreateTokenSecret(dataDir) })
  const service = new LoginService({ store, tokens })
  const nowMs = Date.now()
  const login = await service.login({ username: 'alice', password: 'wonderland', deviceName: 'phone', address: '127.0.0.1', nowMs })
  if (!login.ok) throw new Error(login.code)

  r = admin(['--data-dir', dataDir, 'list-users', '--json'])
  t.equal(r.code, 0, r.stderr)
  t.match(JSON.parse(r.stdout), [
    { userId: 1, username: 'alice', devices: 1, sessions: 1 },
    { userId: 2, username: 'bob', devices: 0, sessions: 0 },
  ])
  r = admin(['--data-dir', dataDir, 'list-users'])
  t.match(r.stdout, /^1\talice\tdevices=1\tsessions=1\tcreated=/)

  r = admin(['--data-dir', dataDir, 'kick', 'alice'])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /kicked alice: 1 session\(s\) revoked/)
  t.same(await service.resume({ token: login.token, nowMs: nowMs + 1 }), { ok: false, code: 'TOKEN_REVOKED' })
  r = admin(['--data-dir', dataDir, 'kick', 'zed'])
  t.equal(r.code, 1)
  t.match(r.stderr, /no user zed/)

  const again = await service.login({ username: 'alice', password: 'wonderland', deviceName: 'phone', address: '127.0.0.1', nowMs: nowMs + 2 })
  if (!again.ok) throw new Error(again.code)
  r = admin(['--data-dir', dataDir, 'passwd', 'alice'], { env: { PIGEON_ADMIN_PASSWORD: 'through the looking glass' } })
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /1 session\(s\) revoked/)
  t.equal((await verifyPassword('through the looking glass', (await store.getUserByName('alice'))!.passwordHash)).ok, true)
  t.same(await service.resume({ token: again.token, nowMs: nowMs + 3 }), { ok: false, code: 'TOKEN_REVOKED' }, 'password change logs out')
})

t.test('usage errors exit 2; --help exits 0', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'pigeon-admin-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  for (const args of [[], ['frob'], ['kick'], ['kick', 'a', 'b'], ['list-users', '--bogus']]) {
    const r = admin(['--data-dir', dataDir, ...args])
    t.equal(r.code, 2, args.join(' '))
    t.match(r.stderr, /usage: npm run admin/)
  }
  const help = admin(['--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /add-user NAME/)
})

t.test('npm run admin is wired', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'pigeon-admin-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const env: NodeJS.ProcessEnv = { ...process.env, PIGEON_ADMIN_PASSWORD: 'npm-script-pw' }
  const r = spawnSync('npm', ['run', '-s', 'admin', '--', '--data-dir', dataDir, 'add-user', 'dave'], { cwd: root, env, encoding: 'utf8' })
  t.equal(r.status, 0, r.stderr)
  t.match(r.stdout, /added user dave/)
})
