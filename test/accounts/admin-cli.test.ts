import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { SqliteAccountStore } from '../../src/store/sqlite-account-store.js'
import { SQLITE_MIGRATIONS } from '../../src/store/sqlite-message-schema.js'
import { LoginService } from '../../src/server/accounts/login.js'
import { verifyPassword } from '../../src/server/accounts/password.js'
import { SessionTokens, loadOrCreateTokenSecret } from '../../src/server/accounts/tokens.js'
import { parseSettings } from '../../src/server/settings.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const ADMIN = join(root, 'src', 'server', 'admin.ts')
/** Absolute, so that the CLI also runs with another working directory. */
const TSX = import.meta.resolve('tsx')

const admin = (args: string[], options: { input?: string; env?: Record<string, string>; cwd?: string } = {}) => {
  // Only what the test passes: an operator's own PIGEON_* must not pick the database.
  const inherited: NodeJS.ProcessEnv = { ...process.env }
  for (const name of ['PIGEON_DATA_DIR', 'PIGEON_CONFIG', 'PIGEON_ADMIN_PASSWORD']) delete inherited[name]
  const env: NodeJS.ProcessEnv = { ...inherited, ...options.env }
  const r = spawnSync(process.execPath, ['--import', TSX, ADMIN, ...args], { cwd: options.cwd ?? root, input: options.input ?? '', env, encoding: 'utf8' })
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

t.test('the data directory comes from the flags, env and config file the server reads', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'pigeon-admin-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const dirs = { config: join(root, 'from-config'), env: join(root, 'from-env'), flag: join(root, 'from-flag') }
  const configFile = join(root, 'pigeon.json')
  // Server-only keys too: the admin command reads the server's own file.
  writeFileSync(configFile, JSON.stringify({ 'data-dir': dirs.config, port: 7701, 'retention-days': 30 }))
  const cases: Array<{ name: string; args: string[]; env: Record<string, string>; expected: string }> = [
    { name: '--config', args: ['--config', configFile], env: {}, expected: dirs.config },
    { name: 'PIGEON_CONFIG', args: [], env: { PIGEON_CONFIG: configFile }, expected: dirs.config },
    { name: 'PIGEON_DATA_DIR beats the config file', args: ['--config', configFile], env: { PIGEON_DATA_DIR: dirs.env }, expected: dirs.env },
    { name: '--data-dir beats both', args: ['--data-dir', dirs.flag], env: { PIGEON_CONFIG: configFile, PIGEON_DATA_DIR: dirs.env }, expected: dirs.flag },
  ]
  let n = 0
  for (const c of cases) {
    const username = `user${++n}`
    const serverDataDir = (parseSettings(c.args, c.env, false) as { dataDir: string }).dataDir
    t.equal(serverDataDir, c.expected, `${c.name}: the server's choice`)
    // Run in `root`: a CLI that missed the server's choice writes root/data, not the checkout's.
    const r = admin([...c.args, 'add-user', username], { env: { ...c.env, PIGEON_ADMIN_PASSWORD: 'same-database' }, cwd: root })
    t.equal(r.code, 0, `${c.name}: ${r.stderr}`)
    const store = new SqliteAccountStore({ dataDir: serverDataDir, migrations: SQLITE_MIGRATIONS })
    t.ok(await store.getUserByName(username), `${c.name}: the user is in the server's database`)
    await store.close()
  }
  t.notOk(existsSync(join(root, 'data')), 'nothing written to the default ./data')

  const missing = admin(['--config', join(root, 'nope.json'), 'list-users'], { cwd: root })
  t.equal(missing.code, 2, 'an unreadable config file is a setup error, as for the server')
  t.match(missing.stderr, /config file .*nope\.json.*\(CONFIG_FILE\)/)
  const empty = admin(['list-users'], { env: { PIGEON_DATA_DIR: '' }, cwd: root })
  t.equal(empty.code, 2)
  t.match(empty.stderr, /data-dir: expected a value/)
  const help = admin(['--help'])
  t.match(help.stdout, /--config FILE/)
  t.match(help.stdout, /--data-dir, then \$PIGEON_DATA_DIR,\s+then "data-dir" in the config file/)
})

t.test('npm run admin is wired', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'pigeon-admin-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const env: NodeJS.ProcessEnv = { ...process.env, PIGEON_ADMIN_PASSWORD: 'npm-script-pw' }
  const r = spawnSync('npm', ['run', '-s', 'admin', '--', '--data-dir', dataDir, 'add-user', 'dave'], { cwd: root, env, encoding: 'utf8' })
  t.equal(r.status, 0, r.stderr)
  t.match(r.stdout, /added user dave/)
})
