/**
 * The SQLite message store around each batch's WAL sync: a failed sync fails the store,
 * what is held back while a sync is under way, batches and pruning one at a time, close()
 * waiting, the WAL of a symlinked database, and another connection writing meanwhile.
 * WAL syncs are held and released (or failed) by the test (sync-gate.ts): no clock.
 */
import { fstatSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { InboxEntry, Peer } from '../../src/protocol/chat-types.js'
import { GroupCommit } from '../../src/store/group-commit.js'
import { MessageStoreError, type InboxWrite, type InboxWriteResult } from '../../src/store/message-store.js'
import { DATABASE_FILE, SqliteAccountStore } from '../../src/store/sqlite-account-store.js'
import { SQLITE_MIGRATIONS } from '../../src/store/sqlite-message-schema.js'
import { SqliteMessageStore, openSqliteStores } from '../../src/store/sqlite-message-store.js'
import { cid, messageWrite, rejectsMessageCode, versionsOf } from './message-conformance.js'
import { openGatedStores, type GatedStores } from './sync-gate.js'

const tempDir = (t: { teardown: (fn: () => void) => void }): string => {
  const dir = mkdtempSync(join(tmpdir(), 'pigeon-msg-durability-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** A gated store with users alice, bob, carol; closed (held syncs released) at teardown. */
const setup = async (t: Test, dataDir = tempDir(t)): Promise<GatedStores & { users: number[] }> => {
  const s = openGatedStores(dataDir)
  t.teardown(() => s.close())
  const users: number[] = []
  for (const username of ['alice', 'bob', 'carol']) users.push((await s.accounts.createUser({ username, passwordHash: 'h', nowMs: 0 })).userId)
  return { ...s, users }
}

/** applyBatch, its sync released at once. */
const applied = async (s: GatedStores, writes: InboxWrite[]): Promise<InboxWriteResult[]> => {
  const p = s.messages.applyBatch(writes)
  await s.gate.whenHeld(1)
  s.gate.release()
  return p
}

/** `p`, releasing any WAL sync started meanwhile: a store that wrongly goes on fails the test instead of hanging it. */
const settled = async <T>(s: GatedStores, p: Promise<T>): Promise<T> => {
  for (;;) {
    const done = await Promise.race([p.then(() => true, () => true), s.gate.whenHeld(1).then(() => false)])
    if (done) return p
    s.gate.releaseAll()
  }
}

const msgTo = (from: number, to: number, n: number, inboxUserIds = [to, from]): InboxWrite =>
  messageWrite(from, cid(n), { kind: 'user', userId: to } satisfies Peer, inboxUserIds, n, `m${n}`)
const versions = (entries: InboxEntry[]): number[] => entries.map((e) => e.version)
const msgIdOf = (r: InboxWriteResult): number => {
  if (r.kind !== 'message') throw new Error(`expected a message result, got ${r.kind}`)
  return r.msgId
}

for (const code of ['EIO', 'ENOSPC', 'EBADF']) {
  t.test(`a failed WAL sync (${code}) fails the store: that batch, queued batches, a retry and every read reject with STORE_FAILED`, async (t) => {
    const dataDir = tempDir(t)
    const s = await setup(t, dataDir)
    const [a, b] = s.users
    const store = s.messages
    const m1 = msgIdOf((await applied(s, [msgTo(a, b, 1)]))[0])
    await store.advanceCursor({ deviceId: 9, version: 1 })

    const failing = store.applyBatch([msgTo(a, b, 2)])
    const queued = store.applyBatch([msgTo(a, b, 3)])
    t.equal(await store.inboxHead(b), 1, 'held back while the sync is under way')
    const cause = s.gate.fail(code)
    try {
      await failing
      t.fail('the batch whose sync failed resolved')
    } catch (err) {
      t.ok(err instanceof MessageStoreError && err.code === 'STORE_FAILED', 'its writes reject with STORE_FAILED', { found: err })
      t.equal((err as Error).cause, cause, 'the sync error is the cause')
      t.match((err as Error).message, /restart the server/)
      t.match((err as Error).message, new RegExp(code))
    }
    t.equal(store.failure?.code, 'STORE_FAILED', 'observable: failure')
    await rejectsMessageCode(t, settled(s, queued), 'STORE_FAILED', 'the batch queued behind it')

    const calls: Array<[string, Promise<unknown>]> = [
      ['retry of the failed write', store.applyBatch([msgTo(a, b, 2)])],
      ['readInbox', store.readInbox({ userId: b, afterVersion: 0, limit: 10 })],
      ['inboxHead', store.inboxHead(b)],
      ['findByClientMsgId', store.findByClientMsgId({ senderUserId: a, clientMsgId: cid(2) })],
      ['getMessage', store.getMessage(m1)],
      ['hasInboxCopy', store.hasInboxCopy({ userId: b, msgId: m1 })],
      ['getCursor', store.getCursor(9)],
      ['advanceCursor', store.advanceCursor({ deviceId: 9, version: 2 })],
      ['listContacts', store.listContacts(a)],
      ['addContact', store.addContact({ userId: a, contactUserId: b, nowMs: 5 })],
      ['createGroup', store.createGroup({ name: 'g', createdByUserId: a, memberUserIds: [b], nowMs: 5 })],
      ['pruneInboxes', store.pruneInboxes({ nowMs: 0, keepLastPerUser: 1 })],
    ]
    for (const [what, p] of calls) await rejectsMessageCode(t, settled(s, p), 'STORE_FAILED', what)
    const commit = new GroupCommit({ store })
    await rejectsMessageCode(t, settled(s, commit.write(msgTo(a, b, 2))), 'STORE_FAILED', 'a SEND retried through the group commit gets no SEND_OK')
    await commit.close()
    t.equal(s.gate.fds.length, 2, 'no second fdatasync was tried after the failure')
    await store.close()
    t.equal(store.db.open, false, 'a failed store still closes')

    // The restart: recovery from the WAL decides (here the OS kept the committed batch).
    const again = openSqliteStores({ dataDir })
    t.teardown(() => again.close())
    t.same(versions(await again.messages.readInbox({ userId: b, afterVersion: 0, limit: 10 })), [1, 2])
    t.equal(await again.messages.hasInboxCopy({ userId: b, msgId: m1 }), true)
  })
}

t.test('a duplicate in a batch holds back only the versions the batch writes, not the original durable ones', async (t) => {
  const dataDir = tempDir(t)
  const s = await setup(t, dataDir)
  const [a, b] = s.users
  const store = s.messages
  const ids: number[] = []
  for (let i = 1; i <= 5; i++) ids.push(msgIdOf((await applied(s, [msgTo(a, b, i)]))[0]))
  for (const viaTable of [false, true]) {
    if (viaTable) {
      // Another connection's commit drops the tails: reads go to the table.
      const other = new SqliteAccountStore({ dataDir, migrations: SQLITE_MIGRATIONS })
      await other.createUser({ username: 'dave', passwordHash: 'h', nowMs: 0 })
      await other.close()
    }
    const head = await store.inboxHead(b)
    const n = 10 + head
    const pending = store.applyBatch([msgTo(a, b, 1), msgTo(a, b, n)]) // a retransmitted SEND 1, and a new one
    t.equal(await store.inboxHead(b), head, `${viaTable ? 'table' : 'tails'}: the head stays at the last durable version`)
    t.same(versions(await store.readInbox({ userId: b, afterVersion: 0, limit: 20 })).slice(0, 5), [1, 2, 3, 4, 5], 'the original entries are served')
    t.equal(versions(await store.readInbox({ userId: b, afterVersion: 0, limit: 20 })).at(-1), head, 'the new entry is not')
    t.equal(await store.hasInboxCopy({ userId: b, msgId: ids[0] }), true, 'the duplicated message is held')
    await s.gate.whenHeld(1)
    s.gate.release()
    const [dup, fresh] = await pending
    t.ok(dup.kind === 'message' && dup.duplicate, 'answered as a duplicate')
    t.equal(await store.inboxHead(b), head + 1, 'durable: the new entry shows')
    t.equal(await store.hasInboxCopy({ userId: b, msgId: msgIdOf(fresh) }), true)
  }
})

t.test('hasInboxCopy: a copy written by a batch whose sync is under way is not reported yet', async (t) => {
  const s = await setup(t)
  const [a, b] = s.users
  const pending = s.messages.applyBatch([msgTo(a, b, 1)])
  const msgId = (await s.messages.findByClientMsgId({ senderUserId: a, clientMsgId: cid(1) }))!.msgId
  t.equal(await s.messages.hasInboxCopy({ userId: b, msgId }), false, 'not durable yet')
  s.gate.release()
  await pending
  t.equal(await s.messages.hasInboxCopy({ userId: b, msgId }), true)
})

t.test('pruning waits for the batch being synced; the tails never serve pruned entries; a later FIN is fine', async (t) => {
  const s = await setup(t)
  const [a, b, c] = s.users
  const store = s.messages
  const countRows = s.accounts.db.prepare('SELECT count(*) FROM inbox').pluck()
  await applied(s, [msgTo(a, b, 1)])
  await applied(s, [{ kind: 'fin', userId: b, deviceId: 22, version: 1, maxReceiptEntries: 50, nowMs: 1 }])
  const batch = store.applyBatch([msgTo(a, b, 2), msgTo(a, b, 3)])
  const rowsBefore = countRows.get()
  const prune = store.pruneInboxes({ nowMs: 0, keepLastPerUser: 1 }) // the retention timer fires during the WAL sync
  t.equal(countRows.get(), rowsBefore, 'the prune has not run: it waits for the batch to be durable')
  s.gate.release()
  await batch
  const deleted = await prune
  t.ok(deleted > 0, 'then it runs')

  const table = (userId: number): number[] => s.accounts.db.prepare('SELECT version FROM inbox WHERE user_id = ? ORDER BY version').pluck().all(userId) as number[]
  t.same(versions(await store.readInbox({ userId: b, afterVersion: 1, limit: 10 })), table(b), 'served what the table holds')
  t.same(table(b), [3])
  const commit = new GroupCommit({ store })
  const fin = commit.write({ kind: 'fin', userId: b, deviceId: 22, version: 3, maxReceiptEntries: 50, nowMs: 4 })
  const send = commit.write(msgTo(c, a, 9)) // an unrelated SEND in the same batch
  await Promise.race([s.gate.whenHeld(1), Promise.allSettled([fin, send])]) // (the batch failing would not sync)
  if (s.gate.heldCount > 0) s.gate.release()
  const finResult = await fin
  t.same(finResult.kind === 'fin' && finResult.versions.map((v) => v.userId), [a], 'a delivered receipt for the message still held (3), none for the pruned one')
  t.equal((await send).kind, 'message')
  await commit.close()
})

t.test('overlapping applyBatch calls run one after another: the second commits once the first is durable', async (t) => {
  const dataDir = tempDir(t)
  const s = await setup(t, dataDir)
  const [a, b] = s.users
  const store = s.messages
  const reader = openSqliteStores({ dataDir }) // a second connection sees commits
  t.teardown(() => reader.close())
  await applied(s, [msgTo(a, b, 1, [b])])
  const first = store.applyBatch([msgTo(a, b, 2, [b])])
  const second = store.applyBatch([msgTo(a, b, 3, [b])])
  t.equal(await reader.messages.inboxHead(b), 2, 'the first batch committed')
  t.equal(s.gate.heldCount, 1, 'one sync under way')
  s.gate.release()
  t.same(versionsOf((await first)[0]), [{ userId: b, version: 2 }])
  await s.gate.whenHeld(1)
  t.equal(await reader.messages.inboxHead(b), 3, 'the second committed after the first was durable')
  t.equal(await store.inboxHead(b), 2, 'and is held back by itself')
  s.gate.fail('EIO')
  await rejectsMessageCode(t, second, 'STORE_FAILED')
})

t.test('close() waits for the batch being synced and the batches queued behind it', async (t) => {
  const s = await setup(t)
  const [a, b] = s.users
  const store = s.messages
  const first = store.applyBatch([msgTo(a, b, 1)])
  const second = store.applyBatch([msgTo(a, b, 2)])
  let closed = false
  const closing = store.close().then(() => { closed = true })
  await rejectsMessageCode(t, store.readInbox({ userId: b, afterVersion: 0, limit: 1 }), 'STORE_CLOSED', 'new calls are refused at once')
  await rejectsMessageCode(t, store.applyBatch([msgTo(a, b, 3)]), 'STORE_CLOSED')
  t.equal(store.db.open, true, 'the connection stays open')
  s.gate.release() // the real fdatasync: the WAL fd must still be open
  t.same(versionsOf((await first)[0]), [{ userId: b, version: 1 }, { userId: a, version: 1 }])
  await s.gate.whenHeld(1)
  t.equal(closed, false, 'still waiting for the queued batch')
  s.gate.release()
  t.same(versionsOf((await second)[0]), [{ userId: b, version: 2 }, { userId: a, version: 2 }])
  await closing
  t.equal(store.db.open, false, 'then it closes')
  t.equal(store.failure, undefined)
})

for (const stale of [false, true]) {
  t.test(`the WAL synced is the one SQLite writes, also when pigeon.db is a symlink${stale ? ' and a stale pigeon.db-wal lies beside it' : ''}`, async (t) => {
    const root = tempDir(t)
    const disk2 = join(root, 'disk2')
    const data = join(root, 'data')
    mkdirSync(disk2)
    mkdirSync(data)
    const init = openSqliteStores({ dataDir: disk2 })
    const a = (await init.accounts.createUser({ username: 'alice', passwordHash: 'h', nowMs: 0 })).userId
    await init.close()
    symlinkSync(join(disk2, DATABASE_FILE), join(data, DATABASE_FILE)) // the database moved to another disk
    if (stale) writeFileSync(join(data, `${DATABASE_FILE}-wal`), '') // left over from before the move

    const accounts = new SqliteAccountStore({ dataDir: data, migrations: SQLITE_MIGRATIONS })
    const synced: number[] = []
    const store = new SqliteMessageStore(accounts.db, {
      ownsDatabase: true,
      fdatasync: async (fd) => { synced.push(fstatSync(fd).ino) },
    })
    t.teardown(() => store.close())
    const [r] = await store.applyBatch([msgTo(a, a, 1, [a])])
    t.equal(r.kind, 'message', 'the batch is applied')
    const realWal = statSync(join(disk2, `${DATABASE_FILE}-wal`)).ino
    t.same(synced, [realWal], "fdatasync went to the WAL beside the link's target")
    t.equal(await store.inboxHead(a), 1)
  })
}

t.test('another connection writing an inbox while a batch for it syncs does not leave the cache stale', async (t) => {
  const dataDir = tempDir(t)
  const s = await setup(t, dataDir)
  const [a, b] = s.users
  const other = openSqliteStores({ dataDir })
  t.teardown(() => other.close())
  await applied(s, [msgTo(a, b, 1, [b])])
  for (const readBetween of [true, false]) {
    const head = await other.messages.inboxHead(b)
    const mine = s.messages.applyBatch([msgTo(a, b, head + 1, [b])]) // server: bob head+1, sync under way
    await other.messages.applyBatch([msgTo(a, b, head + 2, [b])]) // another process: bob head+2
    if (readBetween) {
      await new Promise((resolve) => setImmediate(resolve)) // a new event-loop turn: the read checks data_version
      await s.messages.readInbox({ userId: a, afterVersion: 0, limit: 1 })
    }
    s.gate.release()
    await mine
    const what = readBetween ? 'with a read during the sync' : 'without'
    t.equal(await s.messages.inboxHead(b), head + 2, `${what}: the head is the table's`)
    t.same(versions(await s.messages.readInbox({ userId: b, afterVersion: head, limit: 10 })), [head + 1, head + 2], `${what}: both entries are served`)
  }
})
