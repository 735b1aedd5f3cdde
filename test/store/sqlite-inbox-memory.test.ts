import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { InboxEntry } from '../../src/protocol/chat-types.js'
import { SqliteAccountStore } from '../../src/store/sqlite-account-store.js'
import { InboxMemory } from '../../src/store/sqlite-inbox-memory.js'
import { SQLITE_MIGRATIONS } from '../../src/store/sqlite-message-schema.js'

const receipt = (version: number): InboxEntry => ({ kind: 'receipt', version, msgId: 7, status: 'delivered', byUserId: 3, atMs: 9 })

/** An InboxMemory over a fresh pigeon.db with one user. */
const setup = async (t: Test): Promise<{ memory: InboxMemory; userId: number; accounts: SqliteAccountStore }> => {
  const dataDir = mkdtempSync(join(tmpdir(), 'pigeon-inbox-memory-'))
  const accounts = new SqliteAccountStore({ dataDir, migrations: SQLITE_MIGRATIONS })
  t.teardown(async () => {
    await accounts.close()
    rmSync(dataDir, { recursive: true, force: true })
  })
  const userId = (await accounts.createUser({ username: 'alice', passwordHash: 'h', nowMs: 0 })).userId
  return { memory: new InboxMemory(accounts.db), userId, accounts }
}

/** One batch adding the user's next entry; returns it committed, not yet durable. */
const commitOne = (memory: InboxMemory, userId: number) => {
  memory.beginBatch()
  const version = memory.nextVersion(userId)
  memory.added(userId, receipt(version))
  memory.endBatch()
  return memory.committed(false)
}

t.test('a batch durable after a prune does not put its entries into the tails', async (t) => {
  const { memory, userId } = await setup(t)
  memory.durable(commitOne(memory, userId), true)
  t.same(memory.read(userId, 0, 10)?.map((e) => e.version), [1], 'control: a durable entry is served')

  const batch = commitOne(memory, userId)
  t.same(batch.firstVersions, new Map([[userId, 2]]), 'the versions the batch wrote, for the hold-back')
  memory.pruned([userId]) // while the batch syncs
  memory.durable(batch, true)
  t.equal(memory.read(userId, 1, 10), undefined, 'not served from memory (the prune may have deleted it): the table answers')
  t.equal(memory.head(userId), undefined)

  memory.durable(commitOne(memory, userId), true)
  t.same(memory.read(userId, 2, 10)?.map((e) => e.version), [3], 'later batches are served again')
})

t.test('each batch keeps its own entries: a batch inside a caller transaction does not take a syncing batch\'s', async (t) => {
  const { memory, userId, accounts } = await setup(t)
  memory.durable(commitOne(memory, userId), true)
  const syncing = commitOne(memory, userId) // version 2, its WAL sync under way
  accounts.db.transaction(() => {
    memory.beginBatch()
    const v = memory.nextVersion(userId)
    memory.added(userId, receipt(v))
    memory.endBatch()
    memory.committed(true)
  })()
  t.same(syncing.entries.map((e) => e.entry.version), [2], 'the syncing batch still has its entry')
  memory.durable(syncing, true)
  t.equal(memory.read(userId, 1, 10), undefined, 'but does not serve it: the nested batch wrote version 3 meanwhile')
  t.equal(memory.head(userId), undefined)
})
