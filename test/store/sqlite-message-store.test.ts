import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { SeededRng } from '../../src/core/rng.js'
import { MESSAGE_MEMORY_MS, type InboxWrite } from '../../src/store/message-store.js'
import { DATABASE_FILE, SqliteAccountStore, schemaVersion } from '../../src/store/sqlite-account-store.js'
import { MESSAGE_MIGRATIONS, SQLITE_MIGRATIONS } from '../../src/store/sqlite-message-schema.js'
import { SqliteMessageStore, openSqliteStores } from '../../src/store/sqlite-message-store.js'
import { cid, messageStoreConformance, messageWrite, rejectsMessageCode, versionsOf } from './message-conformance.js'

const tempDir = (t: { teardown: (fn: () => void) => void }): string => {
  const dir = mkdtempSync(join(tmpdir(), 'pigeon-msg-store-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

messageStoreConformance(t, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'pigeon-msg-store-'))
  const stores = openSqliteStores({ dataDir })
  return {
    store: stores.messages,
    accounts: stores.accounts,
    cleanup: async () => {
      await stores.close()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
})

/** Commit records in the WAL: frames whose "database size after commit" field is set. */
const walCommits = (dataDir: string): number => {
  const wal = readFileSync(join(dataDir, `${DATABASE_FILE}-wal`))
  if (wal.length < 32) return 0
  const pageSize = wal.readUInt32BE(8)
  const salt1 = wal.readUInt32BE(16)
  const salt2 = wal.readUInt32BE(20)
  let commits = 0
  for (let off = 32; off + 24 + pageSize <= wal.length; off += 24 + pageSize) {
    if (wal.readUInt32BE(off + 8) !== salt1 || wal.readUInt32BE(off + 12) !== salt2) break // stale frames of an earlier WAL generation
    if (wal.readUInt32BE(off + 4) !== 0) commits++
  }
  return commits
}

t.test('schema: messaging migrations follow the account ones; the store needs them', async (t) => {
  const dataDir = tempDir(t)
  const stores = openSqliteStores({ dataDir })
  t.equal(schemaVersion(stores.accounts.db), SQLITE_MIGRATIONS.length)
  t.equal(MESSAGE_MIGRATIONS[0].version, 2)
  t.equal(stores.messages.db, stores.accounts.db, 'one connection')
  t.equal(stores.messages.db.pragma('journal_mode', { simple: true }), 'wal')
  t.equal(stores.messages.db.pragma('foreign_keys', { simple: true }), 1)
  await stores.close()
  t.equal(stores.accounts.db.open, false, 'close() closes the shared connection')

  const accountsOnly = new SqliteAccountStore({ dataDir: tempDir(t) })
  t.teardown(() => accountsOnly.close())
  t.throws(() => new SqliteMessageStore(accountsOnly.db), /SQLITE_MIGRATIONS/)
})

t.test('closing the message store leaves the shared connection to the account store', async (t) => {
  const stores = openSqliteStores({ dataDir: tempDir(t) })
  t.teardown(() => stores.close())
  await stores.messages.close()
  await rejectsMessageCode(t, stores.messages.listContacts(1), 'STORE_CLOSED')
  t.equal((await stores.accounts.createUser({ username: 'alice', passwordHash: 'h', nowMs: 1 })).username, 'alice')
  const owned = new SqliteMessageStore(stores.accounts.db, { ownsDatabase: true })
  await owned.close()
  t.equal(stores.accounts.db.open, false, 'ownsDatabase: close() closes it')
})

t.test('everything survives closing and reopening the data directory', async (t) => {
  const dataDir = tempDir(t)
  const s1 = openSqliteStores({ dataDir })
  const a = (await s1.accounts.createUser({ username: 'alice', passwordHash: 'h', nowMs: 0 })).userId
  const b = (await s1.accounts.createUser({ username: 'bob', passwordHash: 'h', nowMs: 0 })).userId
  await s1.messages.addContact({ userId: a, contactUserId: b, nowMs: 1 })
  const g = await s1.messages.createGroup({ name: 'pair', createdByUserId: a, memberUserIds: [b], nowMs: 2 })
  const [m1, m2] = await s1.messages.applyBatch([
    messageWrite(a, cid(1), { kind: 'user', userId: b }, [b, a], 10, 'first'),
    messageWrite(b, cid(1), { kind: 'group', groupId: g.groupId }, [a, b], 11, 'second'),
  ])
  if (m1.kind !== 'message' || m2.kind !== 'message') throw new Error('expected messages')
  await s1.messages.applyBatch([{ kind: 'receipt', msgId: m1.msgId, status: 'read', byUserId: b, nowMs: 12 }])
  await s1.messages.advanceCursor({ deviceId: 7, version: 2 })
  const inboxA = await s1.messages.readInbox({ userId: a, afterVersion: 0, limit: 100 })
  const inboxB = await s1.messages.readInbox({ userId: b, afterVersion: 0, limit: 100 })
  await s1.close()

  const s2 = openSqliteStores({ dataDir })
  t.teardown(() => s2.close())
  const store = s2.messages
  t.same(await store.listContacts(b), [a])
  t.same(await store.getGroup(g.groupId), g)
  t.same(await store.listGroupMembers(g.groupId), [a, b])
  t.same(await store.readInbox({ userId: a, afterVersion: 0, limit: 100 }), inboxA)
  t.same(await store.readInbox({ userId: b, afterVersion: 0, limit: 100 }), inboxB)
  t.equal(await store.inboxHead(a), 3)
  t.equal(await store.getCursor(7), 2)
  const [dup] = await store.applyBatch([messageWrite(a, cid(1), { kind: 'user', userId: b }, [b, a], 20, 'retry')])
  t.same(dup, { ...m1, duplicate: true }, 'deduplication survives the restart')
  const [receipt] = await store.applyBatch([{ kind: 'receipt', msgId: m1.msgId, status: 'read', byUserId: b, nowMs: 21 }])
  t.same(receipt, { kind: 'receipt', added: false, versions: [] })
  const [m3] = await store.applyBatch([messageWrite(a, cid(2), { kind: 'user', userId: b }, [b, a], 22)])
  if (m3.kind !== 'message') throw new Error('expected a message')
  t.same(m3.versions, [{ userId: b, version: 3 }, { userId: a, version: 4 }], 'versions continue')
  t.ok(m3.msgId > m2.msgId)
})

t.test('a batch is one transaction: exactly one commit record in the WAL', async (t) => {
  const dataDir = tempDir(t)
  const stores = openSqliteStores({ dataDir })
  t.teardown(() => stores.close())
  stores.accounts.db.pragma('wal_autocheckpoint = 0') // keep every frame in the WAL for counting
  const a = (await stores.accounts.createUser({ username: 'alice', passwordHash: 'h', nowMs: 0 })).userId
  const b = (await stores.accounts.createUser({ username: 'bob', passwordHash: 'h', nowMs: 0 })).userId
  const c = (await stores.accounts.createUser({ username: 'carol', passwordHash: 'h', nowMs: 0 })).userId
  const store = stores.messages

  let before = walCommits(dataDir)
  await store.addContact({ userId: a, contactUserId: b, nowMs: 1 })
  t.equal(walCommits(dataDir) - before, 1, 'the counter works: one commit for addContact')

  const writes: InboxWrite[] = []
  for (let i = 0; i < 200; i++) writes.push(messageWrite(i % 2 ? a : b, cid(i), { kind: 'user', userId: c }, [c, i % 2 ? a : b], 100 + i))
  before = walCommits(dataDir)
  const results = await store.applyBatch(writes)
  t.equal(walCommits(dataDir) - before, 1, '200 messages, 400 inbox entries: one commit')
  t.equal(results.length, 200)
  t.equal(await store.inboxHead(c), 200)

  before = walCommits(dataDir)
  await store.applyBatch([
    { kind: 'receipt', msgId: 1, status: 'read', byUserId: c, nowMs: 500 },
    { kind: 'receipt', msgId: 2, status: 'read', byUserId: c, nowMs: 500 },
    messageWrite(c, cid(1), { kind: 'user', userId: a }, [a, c], 501),
  ])
  t.equal(walCommits(dataDir) - before, 1, 'mixed batch: one commit')

  before = walCommits(dataDir)
  await rejectsMessageCode(t, store.applyBatch([...writes.slice(0, 1).map((w) => ({ ...w, clientMsgId: cid(999) })), messageWrite(a, cid(1000), { kind: 'user', userId: 9999 }, [9999], 600)]), 'UNKNOWN_USER')
  t.equal(walCommits(dataDir) - before, 0, 'a failed batch commits nothing')
  t.equal(await store.findByClientMsgId({ senderUserId: b, clientMsgId: cid(999) }), undefined)
})

t.test('a second connection (admin CLI) sees committed batches', async (t) => {
  const dataDir = tempDir(t)
  const server = openSqliteStores({ dataDir })
  const admin = openSqliteStores({ dataDir })
  t.teardown(async () => {
    await server.close()
    await admin.close()
  })
  const a = (await server.accounts.createUser({ username: 'alice', passwordHash: 'h', nowMs: 0 })).userId
  await server.messages.applyBatch([messageWrite(a, cid(1), { kind: 'user', userId: a }, [a], 1)])
  t.equal(await admin.messages.inboxHead(a), 1)
  await admin.messages.applyBatch([messageWrite(a, cid(2), { kind: 'user', userId: a }, [a], 2)])
  t.equal(await server.messages.inboxHead(a), 2)
  // The server keeps heads in memory between batches: the admin's write must move them.
  const [third] = await server.messages.applyBatch([messageWrite(a, cid(3), { kind: 'user', userId: a }, [a], 3)])
  t.same(third.kind === 'message' && third.versions, [{ userId: a, version: 3 }], 'the server continues after the admin write')
  const [fourth] = await admin.messages.applyBatch([messageWrite(a, cid(4), { kind: 'user', userId: a }, [a], 4)])
  t.same(fourth.kind === 'message' && fourth.versions, [{ userId: a, version: 4 }], 'and the admin after the server')
  const [fin] = await server.messages.applyBatch([{ kind: 'fin', userId: a, deviceId: 1, version: 99, maxReceiptEntries: 10, nowMs: 5 }])
  t.same(fin, { kind: 'fin', previousCursor: 0, cursor: 4, versions: [] }, 'a FIN is capped at the head the admin moved')
})

t.test('a failed batch leaves the inbox heads where they were', async (t) => {
  const stores = openSqliteStores({ dataDir: tempDir(t) })
  t.teardown(() => stores.close())
  const a = (await stores.accounts.createUser({ username: 'alice', passwordHash: 'h', nowMs: 0 })).userId
  const b = (await stores.accounts.createUser({ username: 'bob', passwordHash: 'h', nowMs: 0 })).userId
  await stores.messages.applyBatch([messageWrite(a, cid(1), { kind: 'user', userId: b }, [b, a], 1)])
  await rejectsMessageCode(t, stores.messages.applyBatch([
    messageWrite(a, cid(2), { kind: 'user', userId: b }, [b, a], 2),
    messageWrite(a, cid(3), { kind: 'user', userId: 9999 }, [9999, a], 3),
  ]), 'UNKNOWN_USER')
  const [next] = await stores.messages.applyBatch([messageWrite(a, cid(2), { kind: 'user', userId: b }, [b, a], 4)])
  t.same(next.kind === 'message' && next.versions, [{ userId: b, version: 2 }, { userId: a, version: 2 }], 'no version was skipped')
  t.equal(await stores.messages.inboxHead(a), 2)
})

t.test('a batch is read back only once its WAL sync has returned; the connection stays FULL', async (t) => {
  const dataDir = tempDir(t)
  const stores = openSqliteStores({ dataDir })
  t.teardown(() => stores.close())
  const a = (await stores.accounts.createUser({ username: 'alice', passwordHash: 'h', nowMs: 0 })).userId
  const b = (await stores.accounts.createUser({ username: 'bob', passwordHash: 'h', nowMs: 0 })).userId
  const store = stores.messages
  await store.applyBatch([messageWrite(a, cid(1), { kind: 'user', userId: b }, [b, a], 1)])
  t.equal(await store.inboxHead(b), 1)

  const pending = store.applyBatch([
    messageWrite(a, cid(2), { kind: 'user', userId: b }, [b, a], 2),
    messageWrite(a, cid(3), { kind: 'user', userId: b }, [b, a], 3),
  ])
  // Committed (a second connection would see it) but its fdatasync is still under way:
  const admin = openSqliteStores({ dataDir })
  t.equal(await admin.messages.inboxHead(b), 3, 'committed to the WAL')
  await admin.close()
  t.equal(await store.inboxHead(b), 1, 'held back: the head before the batch')
  t.same((await store.readInbox({ userId: b, afterVersion: 0, limit: 10 })).map((e) => e.version), [1])
  t.same((await store.readInbox({ userId: a, afterVersion: 0, limit: 10 })).map((e) => e.version), [1])
  const results = await pending
  t.same(results.map(versionsOf), [[{ userId: b, version: 2 }, { userId: a, version: 2 }], [{ userId: b, version: 3 }, { userId: a, version: 3 }]])
  t.equal(await store.inboxHead(b), 3, 'durable: visible')
  t.same((await store.readInbox({ userId: b, afterVersion: 0, limit: 10 })).map((e) => e.version), [1, 2, 3])
  t.equal(stores.accounts.db.pragma('synchronous', { simple: true }), 2, 'synchronous is FULL again for every other commit')
})

t.test('reads served from the in-memory inbox tails equal the table (random batches, admin writes, failures, pruning)', async (t) => {
  const seed = 20261123
  const rng = new SeededRng(seed)
  const pick = (n: number): number => Math.floor(rng.nextFloat() * n)
  const dataDir = tempDir(t)
  const server = openSqliteStores({ dataDir })
  const admin = openSqliteStores({ dataDir })
  const reader = openSqliteStores({ dataDir }) // never writes: always reads the table
  t.teardown(async () => {
    await server.close()
    await admin.close()
    await reader.close()
  })
  const users: number[] = []
  for (let i = 0; i < 6; i++) users.push((await server.accounts.createUser({ username: `u${i}`, passwordHash: 'h', nowMs: 0 })).userId)
  const group = await server.messages.createGroup({ name: 'g', createdByUserId: users[0], memberUserIds: users.slice(1, 4), nowMs: 0 })
  let n = 0
  let mismatches = 0
  for (let step = 0; step < 400; step++) {
    const writer = pick(10) === 0 ? admin : server
    const a = users[pick(users.length)]
    const b = users[pick(users.length)]
    const r = pick(20)
    const writes: InboxWrite[] = []
    for (let k = 0; k <= pick(4); k++) {
      n++
      if (r === 0) writes.push({ kind: 'group_event', groupId: group.groupId, event: 'renamed', actorUserId: a, subjectUserId: a, name: `g${n}`, inboxUserIds: users.slice(0, 4), nowMs: n })
      else if (r === 1) writes.push(messageWrite(a, cid(n), { kind: 'user', userId: 9999 }, [9999, a], n)) // fails the batch
      else if (r < 5) writes.push({ kind: 'fin', userId: b, deviceId: b, version: 1_000_000, maxReceiptEntries: 50, nowMs: n })
      else if (r < 7) writes.push({ kind: 'receipt', msgId: 1 + pick(n), status: 'read', byUserId: b, nowMs: n })
      else writes.push(messageWrite(a, cid(pick(3) === 0 ? n - 1 : n), { kind: 'user', userId: b }, a === b ? [a] : [b, a], n, `m${n}`))
    }
    await writer.messages.applyBatch(writes).catch(() => undefined)
    if (pick(50) === 0) await writer.messages.pruneInboxes({ nowMs: 0, keepLastPerUser: 5 + pick(20) })
    for (const u of users) {
      const head = await reader.messages.inboxHead(u)
      if ((await server.messages.inboxHead(u)) !== head) mismatches++
      for (const after of [head, head - 1, head - 3, head - 70, 0]) {
        const want = await reader.messages.readInbox({ userId: u, afterVersion: after, limit: 10 })
        const got = await server.messages.readInbox({ userId: u, afterVersion: after, limit: 10 })
        if (JSON.stringify(got) !== JSON.stringify(want)) {
          mismatches++
          if (mismatches <= 3) t.same(got, want, `seed ${seed} step ${step}: user ${u} after ${after}`)
        }
      }
    }
  }
  t.equal(mismatches, 0, `seed ${seed}: every read matched the table`)
})

t.test('retention cut short by close(): the messages it took the last copy of are listed as orphans, then forgotten with their receipts', async (t) => {
  const dataDir = tempDir(t)
  const first = openSqliteStores({ dataDir })
  const users: number[] = []
  for (const username of ['alice', 'bob']) users.push((await first.accounts.createUser({ username, passwordHash: 'h', nowMs: 0 })).userId)
  const [a, b] = users
  for (let i = 1; i <= 5; i++) await first.messages.applyBatch([messageWrite(a, cid(i), { kind: 'user', userId: b }, [b], 1_000 + i, `secret ${i}`)])
  await first.messages.applyBatch([{ kind: 'receipt', msgId: 1, status: 'read', byUserId: b, nowMs: 2_000 }])
  const pruning = first.messages.pruneInboxes({ nowMs: 3_000, keepLastPerUser: 0 })
  const closing = first.close() // lands between the first step and the next
  await rejectsMessageCode(t, pruning, 'STORE_CLOSED')
  await closing

  const again = openSqliteStores({ dataDir })
  t.teardown(() => again.close())
  const count = (sql: string): number => again.accounts.db.prepare(sql).pluck().get() as number
  t.equal(count('SELECT count(*) FROM inbox'), 0, 'the first step deleted the copies')
  t.equal(count('SELECT count(*) FROM orphaned_messages'), 5, 'and listed their messages in the same transaction')
  t.equal(count("SELECT count(*) FROM messages WHERE body <> ''"), 0, 'text cleared')
  t.ok(await again.messages.findByClientMsgId({ senderUserId: a, clientMsgId: cid(1) }), 'still de-duplicating')
  t.equal(await again.messages.pruneInboxes({ nowMs: 1_006 + MESSAGE_MEMORY_MS, keepLastPerUser: 0 }), 0)
  t.equal(count('SELECT count(*) FROM messages'), 0, 'a day later: forgotten')
  t.equal(count('SELECT count(*) FROM orphaned_messages'), 0)
  t.equal(count('SELECT count(*) FROM receipts'), 0, 'with their receipts')
})

t.test('pruning by age in steps: a backlog of old entries longer than a step goes whole, the young ones stay', async (t) => {
  const s = openSqliteStores({ dataDir: tempDir(t) })
  t.teardown(() => s.close())
  const a = (await s.accounts.createUser({ username: 'alice', passwordHash: 'h', nowMs: 0 })).userId
  const b = (await s.accounts.createUser({ username: 'bob', passwordHash: 'h', nowMs: 0 })).userId
  const writes: InboxWrite[] = []
  for (let i = 1; i <= 2_500; i++) writes.push(messageWrite(a, cid(i), { kind: 'user', userId: b }, [b], i))
  await s.messages.applyBatch(writes)
  t.equal(await s.messages.pruneInboxes({ nowMs: 10_000, olderThanMs: 2_001 }), 2_000, 'the 2,000 oldest go, in steps')
  t.same((await s.messages.readInbox({ userId: b, afterVersion: 0, limit: 1 })).map((e) => e.version), [2_001])
})
