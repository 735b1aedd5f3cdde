import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ACCOUNT_MIGRATIONS, DATABASE_FILE, SqliteAccountStore, schemaVersion, type Migration } from '../../src/store/sqlite-account-store.js'
import { accountStoreConformance, rejectsCode } from './conformance.js'

const tempDir = (): string => mkdtempSync(join(tmpdir(), 'pigeon-store-'))

accountStoreConformance(t, async () => {
  const dataDir = tempDir()
  const store = new SqliteAccountStore({ dataDir })
  return {
    store,
    cleanup: async () => {
      await store.close()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
})

t.test('creates the data directory, WAL mode, schema version recorded', async (t) => {
  const root = tempDir()
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const dataDir = join(root, 'nested', 'data')
  const store = new SqliteAccountStore({ dataDir })
  t.teardown(() => store.close())
  t.ok(existsSync(join(dataDir, DATABASE_FILE)))
  t.equal(store.db.pragma('journal_mode', { simple: true }), 'wal')
  t.equal(store.db.pragma('foreign_keys', { simple: true }), 1)
  t.equal(schemaVersion(store.db), ACCOUNT_MIGRATIONS.length)
})

t.test('data survives reopening', async (t) => {
  const dataDir = tempDir()
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const a = new SqliteAccountStore({ dataDir })
  const alice = await a.createUser({ username: 'alice', passwordHash: 'h', nowMs: 1 })
  await a.close()
  const b = new SqliteAccountStore({ dataDir })
  t.teardown(() => b.close())
  t.same(await b.getUserByName('alice'), alice)
  await rejectsCode(t, b.createUser({ username: 'alice', passwordHash: 'x', nowMs: 2 }), 'USER_EXISTS')
  const carol = await b.createUser({ username: 'carol', passwordHash: 'h', nowMs: 3 })
  t.ok(carol.userId > alice.userId)
})

t.test('later migrations (issue 4) apply on top, once', async (t) => {
  const dataDir = tempDir()
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  await new SqliteAccountStore({ dataDir }).close()
  let runs = 0
  const inbox: Migration = {
    version: ACCOUNT_MIGRATIONS.length + 1,
    name: 'test: inbox',
    up(db) {
      runs++
      db.exec('CREATE TABLE inbox (user_id INTEGER NOT NULL REFERENCES users(user_id), version INTEGER NOT NULL, PRIMARY KEY (user_id, version))')
    },
  }
  const migrations = [...ACCOUNT_MIGRATIONS, inbox]
  const s1 = new SqliteAccountStore({ dataDir, migrations })
  t.equal(schemaVersion(s1.db), migrations.length)
  const alice = await s1.createUser({ username: 'alice', passwordHash: 'h', nowMs: 1 })
  s1.db.prepare('INSERT INTO inbox VALUES (?, 1)').run(alice.userId)
  await s1.close()
  const s2 = new SqliteAccountStore({ dataDir, migrations })
  t.equal(runs, 1, 'not re-applied')
  t.equal((s2.db.prepare('SELECT COUNT(*) AS n FROM inbox').get() as { n: number }).n, 1)
  await s2.close()
  t.throws(() => new SqliteAccountStore({ dataDir }), /newer than this program knows/, 'an older program refuses a newer schema')
  t.throws(() => new SqliteAccountStore({ dataDir: tempDirIn(t), migrations: [{ ...inbox, version: 1 }, ...ACCOUNT_MIGRATIONS] }), /expected/)
})

t.test('two connections (admin CLI next to the server) see each other', async (t) => {
  const dataDir = tempDir()
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const server = new SqliteAccountStore({ dataDir })
  const admin = new SqliteAccountStore({ dataDir })
  t.teardown(async () => {
    await server.close()
    await admin.close()
  })
  await admin.createUser({ username: 'alice', passwordHash: 'h', nowMs: 1 })
  t.equal((await server.getUserByName('alice'))?.username, 'alice')
})

function tempDirIn(t: { teardown: (fn: () => void) => void }): string {
  const dir = tempDir()
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}
