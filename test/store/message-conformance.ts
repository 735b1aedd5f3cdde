/** The MessageStore conformance suite: every implementation runs exactly these tests. */
import type { Test } from 'tap'
import type { InboxEntry, Peer } from '../../src/protocol/chat-types.js'
import type { AccountStore } from '../../src/store/account-store.js'
import { MESSAGE_MEMORY_MS, MessageStoreError, type InboxWrite, type InboxWriteResult, type MessageStore } from '../../src/store/message-store.js'

export type MessageStoreFactory = () => Promise<{ store: MessageStore; accounts: AccountStore; cleanup: () => Promise<void> }>

/** Asserts that `p` rejects with a MessageStoreError of code `c`. */
export const rejectsMessageCode = async (t: Test, p: Promise<unknown>, c: string, msg?: string): Promise<void> => {
  try {
    await p
    t.fail(msg ?? `expected ${c}, resolved`)
  } catch (err) {
    t.ok(err instanceof MessageStoreError && err.code === c, msg ?? `rejects with ${c}`, { found: err })
  }
}

/** A 16-byte client message id from a number. */
export const cid = (n: number): Uint8Array => {
  const b = new Uint8Array(16)
  new DataView(b.buffer).setUint32(12, n)
  b[0] = 0xc1
  return b
}

export const messageWrite = (
  senderUserId: number,
  clientMsgId: Uint8Array,
  to: Peer,
  inboxUserIds: number[],
  nowMs: number,
  body = 'hi',
  senderDeviceId = 7,
): InboxWrite => ({ kind: 'message', senderUserId, senderDeviceId, clientMsgId, to, body, inboxUserIds, nowMs })

type MessageResult = Extract<InboxWriteResult, { kind: 'message' }>
type ReceiptResult = Extract<InboxWriteResult, { kind: 'receipt' }>

/** The versions a write answered with (none for a write that failed alone). */
export const versionsOf = (r: InboxWriteResult): Array<{ userId: number; version: number }> | undefined => ('versions' in r ? r.versions : undefined)

const asMessage = (r: InboxWriteResult): MessageResult => {
  if (r.kind !== 'message') throw new Error(`expected a message result, got ${r.kind}`)
  return r
}
const asReceipt = (r: InboxWriteResult): ReceiptResult => {
  if (r.kind !== 'receipt') throw new Error(`expected a receipt result, got ${r.kind}`)
  return r
}

/** A retention run's clock late enough to forget the (early) messages of these tests. */
const LATER = MESSAGE_MEMORY_MS + 10_000

const readAll = (store: MessageStore, userId: number): Promise<InboxEntry[]> => store.readInbox({ userId, afterVersion: 0, limit: 10_000 })
const versions = (entries: InboxEntry[]): number[] => entries.map((e) => e.version)

export const messageStoreConformance = (t: Test, factory: MessageStoreFactory): void => {
  const withStore = (name: string, body: (s: { store: MessageStore; accounts: AccountStore; users: number[] }, t: Test) => Promise<void>) =>
    t.test(name, async (t) => {
      const { store, accounts, cleanup } = await factory()
      t.teardown(cleanup)
      const users: number[] = []
      for (const username of ['alice', 'bob', 'carol', 'dave']) users.push((await accounts.createUser({ username, passwordHash: 'h', nowMs: 0 })).userId)
      await body({ store, accounts, users }, t)
    })

  withStore('contacts: mutual add, remove, list, errors', async ({ store, users: [a, b, c] }, t) => {
    t.same(await store.listContacts(a), [])
    t.equal(await store.addContact({ userId: a, contactUserId: c, nowMs: 1 }), true)
    t.equal(await store.addContact({ userId: a, contactUserId: b, nowMs: 2 }), true)
    t.equal(await store.addContact({ userId: b, contactUserId: a, nowMs: 3 }), false, 'mutual: b already has a')
    t.same(await store.listContacts(a), [b, c], 'ordered by user id')
    t.same(await store.listContacts(b), [a])
    t.same(await store.listContacts(c), [a])
    t.equal(await store.removeContact({ userId: b, contactUserId: a }), true)
    t.equal(await store.removeContact({ userId: a, contactUserId: b }), false, 'removed both ways')
    t.same(await store.listContacts(a), [c])
    t.same(await store.listContacts(b), [])
    t.equal(await store.addContact({ userId: b, contactUserId: a, nowMs: 4 }), true, 'can be added again')
    await rejectsMessageCode(t, store.addContact({ userId: a, contactUserId: 9999, nowMs: 1 }), 'UNKNOWN_USER')
    await rejectsMessageCode(t, store.addContact({ userId: 9999, contactUserId: a, nowMs: 1 }), 'UNKNOWN_USER')
    await rejectsMessageCode(t, store.addContact({ userId: a, contactUserId: a, nowMs: 1 }), 'INVALID_ARGUMENT')
    t.same(await store.listContacts(9999), [])
    t.equal(await store.removeContact({ userId: 9999, contactUserId: a }), false)
  })

  withStore('groups: create, members, add, remove, rename, list, errors', async ({ store, users: [a, b, c, d] }, t) => {
    const g = await store.createGroup({ name: 'friends', createdByUserId: a, memberUserIds: [c, b, c, a], nowMs: 100 })
    t.ok(g.groupId > 0)
    t.same(g, { groupId: g.groupId, name: 'friends', createdByUserId: a, createdAtMs: 100 })
    t.same(await store.getGroup(g.groupId), g)
    t.equal(await store.getGroup(9999), undefined)
    t.same(await store.listGroupMembers(g.groupId), [a, b, c], 'creator included, deduplicated, ordered')
    const solo = await store.createGroup({ name: 'just me', createdByUserId: b, memberUserIds: [], nowMs: 200 })
    t.not(solo.groupId, g.groupId)
    t.same(await store.listGroupMembers(solo.groupId), [b])
    t.same((await store.listGroupsOf(b)).map((x) => x.groupId), [g.groupId, solo.groupId].sort((x, y) => x - y))
    t.same(await store.listGroupsOf(a), [g])
    t.same(await store.listGroupsOf(d), [])

    await store.addGroupMember({ groupId: g.groupId, userId: d, nowMs: 300 })
    t.same(await store.listGroupMembers(g.groupId), [a, b, c, d])
    await rejectsMessageCode(t, store.addGroupMember({ groupId: g.groupId, userId: d, nowMs: 300 }), 'ALREADY_MEMBER')
    await rejectsMessageCode(t, store.addGroupMember({ groupId: g.groupId, userId: 9999, nowMs: 300 }), 'UNKNOWN_USER')
    await rejectsMessageCode(t, store.addGroupMember({ groupId: 9999, userId: d, nowMs: 300 }), 'UNKNOWN_GROUP')

    await store.removeGroupMember({ groupId: g.groupId, userId: b })
    t.same(await store.listGroupMembers(g.groupId), [a, c, d])
    t.same((await store.listGroupsOf(b)).map((x) => x.groupId), [solo.groupId])
    await rejectsMessageCode(t, store.removeGroupMember({ groupId: g.groupId, userId: b }), 'NOT_A_MEMBER')
    await rejectsMessageCode(t, store.removeGroupMember({ groupId: 9999, userId: b }), 'UNKNOWN_GROUP')
    await store.removeGroupMember({ groupId: solo.groupId, userId: b })
    t.same(await store.listGroupMembers(solo.groupId), [], 'an empty group stays')

    await store.renameGroup({ groupId: g.groupId, name: 'best friends 🐦' })
    t.equal((await store.getGroup(g.groupId))?.name, 'best friends 🐦')
    t.equal((await store.listGroupsOf(a))[0].name, 'best friends 🐦')
    await rejectsMessageCode(t, store.renameGroup({ groupId: 9999, name: 'x' }), 'UNKNOWN_GROUP')
    await rejectsMessageCode(t, store.renameGroup({ groupId: g.groupId, name: '' }), 'INVALID_ARGUMENT')
    await rejectsMessageCode(t, store.listGroupMembers(9999), 'UNKNOWN_GROUP')
  })

  withStore('groups: an unknown member or a bad name creates nothing', async ({ store, users: [a, b] }, t) => {
    await rejectsMessageCode(t, store.createGroup({ name: 'g', createdByUserId: a, memberUserIds: [b, 9999], nowMs: 1 }), 'UNKNOWN_USER')
    await rejectsMessageCode(t, store.createGroup({ name: 'g', createdByUserId: 9999, memberUserIds: [a], nowMs: 1 }), 'UNKNOWN_USER')
    await rejectsMessageCode(t, store.createGroup({ name: '', createdByUserId: a, memberUserIds: [], nowMs: 1 }), 'INVALID_ARGUMENT')
    await rejectsMessageCode(t, store.createGroup({ name: 'x'.repeat(65), createdByUserId: a, memberUserIds: [], nowMs: 1 }), 'INVALID_ARGUMENT')
    t.same(await store.listGroupsOf(a), [])
    t.same(await store.listGroupsOf(b), [])
    const g = await store.createGroup({ name: 'x'.repeat(64), createdByUserId: a, memberUserIds: [], nowMs: 1 })
    t.same(await store.listGroupsOf(a), [g])
  })

  withStore('applyBatch: a 1:1 message lands in both inboxes, entries exactly as typed', async ({ store, users: [a, b] }, t) => {
    const [r] = await store.applyBatch([messageWrite(a, cid(1), { kind: 'user', userId: b }, [b, a], 1000, 'hello bob', 11)])
    const m = asMessage(r)
    t.ok(m.msgId > 0)
    t.equal(m.duplicate, false)
    t.equal(m.sentAtMs, 1000)
    t.same(m.versions, [{ userId: b, version: 1 }, { userId: a, version: 1 }], 'in inboxUserIds order')
    t.equal(await store.inboxHead(a), 1)
    t.equal(await store.inboxHead(b), 1)
    const expected = (version: number): InboxEntry => ({
      kind: 'message',
      version,
      msgId: m.msgId,
      fromUserId: a,
      fromDeviceId: 11,
      to: { kind: 'user', userId: b },
      sentAtMs: 1000,
      clientMsgId: cid(1),
      body: 'hello bob',
    })
    const inB = await readAll(store, b)
    t.same(inB, [expected(1)])
    t.ok(inB[0].kind === 'message' && inB[0].clientMsgId instanceof Uint8Array && inB[0].clientMsgId.length === 16)
    t.same(await readAll(store, a), [expected(1)])
    t.same(await store.getMessage(m.msgId), { msgId: m.msgId, senderUserId: a, senderDeviceId: 11, to: { kind: 'user', userId: b }, sentAtMs: 1000 })
    t.equal(await store.getMessage(m.msgId + 100), undefined)
    t.same(await store.findByClientMsgId({ senderUserId: a, clientMsgId: cid(1) }), await store.getMessage(m.msgId))
    t.equal(await store.findByClientMsgId({ senderUserId: b, clientMsgId: cid(1) }), undefined, 'keyed by sender')
    t.equal(await store.findByClientMsgId({ senderUserId: a, clientMsgId: cid(2) }), undefined)
    t.equal(await store.inboxHead(9999), 0)
    t.same(await readAll(store, 9999), [])

    // returned entries are copies
    if (inB[0].kind === 'message') inB[0].clientMsgId[0] = 0
    const again = await readAll(store, b)
    t.ok(again[0].kind === 'message' && again[0].clientMsgId[0] === 0xc1, 'mutating a read entry does not change the store')
  })

  withStore('applyBatch: group messages, versions strictly increasing per user', async ({ store, users: [a, b, c, d] }, t) => {
    const g = await store.createGroup({ name: 'g', createdByUserId: a, memberUserIds: [b, c], nowMs: 0 })
    const to: Peer = { kind: 'group', groupId: g.groupId }
    const members = await store.listGroupMembers(g.groupId)
    const r1 = await store.applyBatch([
      messageWrite(a, cid(1), to, members, 10),
      messageWrite(b, cid(1), to, members, 11, 'same client id, other sender'),
      messageWrite(a, cid(2), { kind: 'user', userId: d }, [d, a], 12),
    ])
    const [m1, m2, m3] = r1.map(asMessage)
    t.equal(new Set([m1.msgId, m2.msgId, m3.msgId]).size, 3, 'three distinct messages')
    t.same(m1.versions, [{ userId: a, version: 1 }, { userId: b, version: 1 }, { userId: c, version: 1 }])
    t.same(m2.versions, [{ userId: a, version: 2 }, { userId: b, version: 2 }, { userId: c, version: 2 }])
    t.same(m3.versions, [{ userId: d, version: 1 }, { userId: a, version: 3 }])
    const [r4] = await store.applyBatch([messageWrite(c, cid(9), to, members, 20)])
    t.same(versionsOf(r4), [{ userId: a, version: 4 }, { userId: b, version: 3 }, { userId: c, version: 3 }])
    t.same(versions(await readAll(store, a)), [1, 2, 3, 4])
    t.same(versions(await readAll(store, c)), [1, 2, 3])
    const entry = (await readAll(store, c))[2]
    t.ok(entry.kind === 'message' && entry.fromUserId === c && entry.to.kind === 'group' && entry.to.groupId === g.groupId)
    t.equal(await store.inboxHead(a), 4)
    t.equal(await store.inboxHead(d), 1)
  })

  withStore('applyBatch: a repeated inbox user gets one copy', async ({ store, users: [a] }, t) => {
    const [r] = await store.applyBatch([messageWrite(a, cid(1), { kind: 'user', userId: a }, [a, a], 5)])
    t.same(versionsOf(r), [{ userId: a, version: 1 }])
    t.equal((await readAll(store, a)).length, 1)
  })

  withStore('applyBatch: a duplicate clientMsgId returns the first msgId and versions, writes nothing', async ({ store, users: [a, b] }, t) => {
    const to: Peer = { kind: 'user', userId: b }
    const [first] = (await store.applyBatch([messageWrite(a, cid(1), to, [b, a], 1000, 'one')])).map(asMessage)
    await store.applyBatch([messageWrite(b, cid(5), { kind: 'user', userId: a }, [a, b], 1500)])
    const headA = await store.inboxHead(a)
    const headB = await store.inboxHead(b)
    const [dup] = (await store.applyBatch([messageWrite(a, cid(1), to, [b, a], 2000, 'one, retried')])).map(asMessage)
    t.same(dup, { kind: 'message', msgId: first.msgId, sentAtMs: 1000, duplicate: true, versions: first.versions })
    t.equal(await store.inboxHead(a), headA, 'no new entry for the sender')
    t.equal(await store.inboxHead(b), headB, 'no new entry for the recipient')
    t.equal((await readAll(store, b)).length, 2)
    const body = (await readAll(store, b))[0]
    t.ok(body.kind === 'message' && body.body === 'one', 'the first body stays')

    // duplicates inside one batch
    const r = (await store.applyBatch([
      messageWrite(a, cid(2), to, [b, a], 3000, 'two'),
      messageWrite(a, cid(2), to, [b, a], 3001, 'two again'),
      messageWrite(a, cid(1), to, [b, a], 3002, 'one again'),
    ])).map(asMessage)
    t.equal(r[0].duplicate, false)
    t.same(r[1], { kind: 'message', msgId: r[0].msgId, sentAtMs: 3000, duplicate: true, versions: r[0].versions })
    t.same(r[2], { ...first, duplicate: true })
    t.equal(await store.inboxHead(a), headA + 1)
  })

  withStore('receipts: deduplicated, land in the sender inbox, unknown message is not an error', async ({ store, users: [a, b, c] }, t) => {
    const [m] = (await store.applyBatch([messageWrite(a, cid(1), { kind: 'user', userId: b }, [b, a], 10)])).map(asMessage)
    const rs = await store.applyBatch([
      { kind: 'receipt', msgId: m.msgId, status: 'delivered', byUserId: b, nowMs: 20 },
      { kind: 'receipt', msgId: m.msgId, status: 'delivered', byUserId: b, nowMs: 21 },
      { kind: 'receipt', msgId: m.msgId + 1000, status: 'read', byUserId: b, nowMs: 22 },
      messageWrite(c, cid(1), { kind: 'user', userId: a }, [a, c], 23),
      { kind: 'receipt', msgId: m.msgId, status: 'read', byUserId: b, nowMs: 24 },
    ])
    t.same(rs[0], { kind: 'receipt', added: true, versions: [{ userId: a, version: 2 }] })
    t.same(rs[1], { kind: 'receipt', added: false, versions: [] }, 'same receipt in the same batch')
    t.same(rs[2], { kind: 'receipt', added: false, versions: [] }, 'unknown message')
    t.same(versionsOf(rs[3]), [{ userId: a, version: 3 }, { userId: c, version: 1 }], 'the other writes of the batch succeed')
    t.same(rs[4], { kind: 'receipt', added: true, versions: [{ userId: a, version: 4 }] }, 'read is another status')
    const [again] = await store.applyBatch([{ kind: 'receipt', msgId: m.msgId, status: 'read', byUserId: b, nowMs: 30 }])
    t.same(asReceipt(again), { kind: 'receipt', added: false, versions: [] }, 'same receipt in a later batch')
    t.equal(await store.inboxHead(b), 1, 'nothing lands in the receiver inbox')
    const entries = await readAll(store, a)
    t.same(entries.filter((e) => e.kind === 'receipt'), [
      { kind: 'receipt', version: 2, msgId: m.msgId, status: 'delivered', byUserId: b, atMs: 20 },
      { kind: 'receipt', version: 4, msgId: m.msgId, status: 'read', byUserId: b, atMs: 24 },
    ])
    t.same(versions(entries), [1, 2, 3, 4])
  })

  withStore('group events land in every listed inbox', async ({ store, users: [a, b, c] }, t) => {
    const g = await store.createGroup({ name: 'g', createdByUserId: a, memberUserIds: [b], nowMs: 0 })
    await store.applyBatch([messageWrite(b, cid(1), { kind: 'user', userId: c }, [c, b], 1)])
    const [r] = await store.applyBatch([
      { kind: 'group_event', groupId: g.groupId, event: 'joined', actorUserId: a, subjectUserId: c, name: 'g', inboxUserIds: [a, b, c], nowMs: 50 },
    ])
    t.same(r, { kind: 'group_event', groupId: g.groupId, versions: [{ userId: a, version: 1 }, { userId: b, version: 2 }, { userId: c, version: 2 }] })
    t.same((await readAll(store, c))[1], { kind: 'group', version: 2, groupId: g.groupId, event: 'joined', actorUserId: a, subjectUserId: c, name: 'g', atMs: 50 })
    const events = ['created', 'left', 'renamed'] as const
    for (const event of events) {
      await store.applyBatch([{ kind: 'group_event', groupId: g.groupId, event, actorUserId: b, subjectUserId: b, name: 'h', inboxUserIds: [a], nowMs: 60 }])
    }
    t.same((await readAll(store, a)).map((e) => (e.kind === 'group' ? e.event : e.kind)), ['joined', ...events])
    const [unknown] = await store.applyBatch([{ kind: 'group_event', groupId: 9999, event: 'left', actorUserId: a, subjectUserId: a, name: 'g', inboxUserIds: [a], nowMs: 1 }])
    t.match(unknown, { kind: 'failed', error: { code: 'UNKNOWN_GROUP' } }, 'an unknown group fails that write alone')
    const [empty] = await store.applyBatch([{ kind: 'group_event', groupId: g.groupId, event: 'renamed', actorUserId: a, subjectUserId: a, name: 'g', inboxUserIds: [], nowMs: 1 }])
    t.same(empty, { kind: 'group_event', groupId: g.groupId, versions: [] })
  })

  withStore('a group event with applyChange makes the change and its inbox entries together; a change that cannot apply fails that write alone', async ({ store, users: [a, b, c] }, t) => {
    const to: Peer = { kind: 'user', userId: b }
    const ge = (event: 'created' | 'joined' | 'left' | 'renamed', groupId: number, subject: number, name: string, inboxUserIds: number[]): InboxWrite => ({
      kind: 'group_event', groupId, event, actorUserId: a, subjectUserId: subject, name, inboxUserIds, nowMs: 70, applyChange: true,
    })
    const [created] = await store.applyBatch([ge('created', 0, a, 'team', [a, b])])
    if (created.kind !== 'group_event') throw new Error(`created: ${created.kind}`)
    t.same(await store.listGroupMembers(created.groupId), [a, b], 'the group exists with its members')
    t.match(await store.getGroup(created.groupId), { name: 'team', createdByUserId: a, createdAtMs: 70 })
    t.match((await readAll(store, b)).at(-1), { kind: 'group', groupId: created.groupId, event: 'created', name: 'team' }, 'and its event is in the inboxes')

    const results = await store.applyBatch([
      messageWrite(a, cid(1), to, [b, a], 71),
      ge('joined', created.groupId, b, 'team', [a, b]), // b is a member already
      ge('joined', created.groupId, c, 'team', [a, b, c]),
      ge('left', created.groupId, c, 'team', [a, b, c]),
      ge('left', created.groupId, c, 'team', [a, b]), // c left just before
      ge('renamed', 9999, a, 'x', [a]), // no such group
      ge('renamed', created.groupId, a, 'team 2', [a, b]),
      messageWrite(a, cid(2), to, [b, a], 72),
    ])
    t.same(results.map((r) => (r.kind === 'failed' ? r.error.code : r.kind)), ['message', 'ALREADY_MEMBER', 'group_event', 'group_event', 'NOT_A_MEMBER', 'UNKNOWN_GROUP', 'group_event', 'message'])
    t.same(await store.listGroupMembers(created.groupId), [a, b])
    t.equal((await store.getGroup(created.groupId))?.name, 'team 2')
    t.same((await readAll(store, c)).map((e) => (e.kind === 'group' ? e.event : e.kind)), ['joined', 'left'], 'c saw its join and leave, nothing of the failed writes')
    const bEntries = (await readAll(store, b)).slice(-5).map((e) => (e.kind === 'group' ? e.event : e.kind))
    t.same(bEntries, ['message', 'joined', 'left', 'renamed', 'message'], 'versions stay contiguous: the failed writes took none')
    await rejectsMessageCode(t, store.applyBatch([ge('created', 0, a, 'ghosts', [a, 9999])]), 'UNKNOWN_USER', 'an inbox user who does not exist fails the batch (every store)')
    await rejectsMessageCode(t, store.applyBatch([ge('joined', created.groupId, 9999, 'team 2', [a, b, 9999]), ge('renamed', created.groupId, a, 'n', [a])]), 'UNKNOWN_USER')
    t.equal((await store.listGroupsOf(a)).length, 1, 'and no group was made')
    t.equal((await store.getGroup(created.groupId))?.name, 'team 2', 'nothing of that batch applied')
    await rejectsMessageCode(t, store.applyBatch([ge('created', 5, a, 'team', [a])]), 'INVALID_ARGUMENT', 'a group to create has groupId 0')
  })

  withStore('a write that throws fails the whole batch and writes nothing', async ({ store, users: [a, b] }, t) => {
    const [m] = (await store.applyBatch([messageWrite(a, cid(1), { kind: 'user', userId: b }, [b, a], 1)])).map(asMessage)
    const batch: InboxWrite[] = [
      messageWrite(a, cid(2), { kind: 'user', userId: b }, [b, a], 2),
      { kind: 'receipt', msgId: m.msgId, status: 'read', byUserId: b, nowMs: 3 },
      messageWrite(b, cid(3), { kind: 'user', userId: 9999 }, [9999, b], 4),
    ]
    await rejectsMessageCode(t, store.applyBatch(batch), 'UNKNOWN_USER', 'unknown inbox user')
    await rejectsMessageCode(t, store.applyBatch([messageWrite(9999, cid(4), { kind: 'user', userId: a }, [a], 5)]), 'UNKNOWN_USER', 'unknown sender')
    t.equal(await store.inboxHead(a), 1)
    t.equal(await store.inboxHead(b), 1)
    t.equal(await store.findByClientMsgId({ senderUserId: a, clientMsgId: cid(2) }), undefined)
    // the receipt was rolled back too: it can be added now
    const [r] = await store.applyBatch([{ kind: 'receipt', msgId: m.msgId, status: 'read', byUserId: b, nowMs: 6 }])
    t.same(r, { kind: 'receipt', added: true, versions: [{ userId: a, version: 2 }] })
    const [again] = await store.applyBatch(batch.slice(0, 1))
    t.same(versionsOf(again), [{ userId: b, version: 2 }, { userId: a, version: 3 }], 'versions were not consumed by the failed batch')
  })

  withStore('applyBatch: malformed writes are INVALID_ARGUMENT', async ({ store, users: [a, b] }, t) => {
    const good = messageWrite(a, cid(1), { kind: 'user', userId: b }, [b, a], 1) as Extract<InboxWrite, { kind: 'message' }>
    const bad: unknown[] = [
      { ...good, clientMsgId: new Uint8Array(0) },
      { ...good, clientMsgId: 'abc' },
      { ...good, senderUserId: 0 },
      { ...good, nowMs: -1 },
      { ...good, nowMs: 1.5 },
      { ...good, to: { kind: 'channel', id: 1 } },
      { ...good, inboxUserIds: [b, 'a'] },
      { ...good, body: 5 },
      { kind: 'receipt', msgId: 1, status: 'seen', byUserId: b, nowMs: 1 },
      { kind: 'group_event', groupId: 1, event: 'exploded', actorUserId: a, subjectUserId: a, name: 'g', inboxUserIds: [a], nowMs: 1 },
      { kind: 'nonsense' },
    ]
    for (const w of bad) await rejectsMessageCode(t, store.applyBatch([good, w as InboxWrite]), 'INVALID_ARGUMENT', JSON.stringify(w))
    t.equal(await store.inboxHead(a), 0, 'nothing written')
    t.same(await store.applyBatch([]), [])
  })

  withStore('readInbox pages with afterVersion and limit', async ({ store, users: [a, b] }, t) => {
    const writes: InboxWrite[] = []
    for (let i = 1; i <= 10; i++) writes.push(messageWrite(a, cid(i), { kind: 'user', userId: b }, [b, a], i, `m${i}`))
    await store.applyBatch(writes)
    t.same(versions(await store.readInbox({ userId: b, afterVersion: 0, limit: 3 })), [1, 2, 3])
    t.same(versions(await store.readInbox({ userId: b, afterVersion: 3, limit: 3 })), [4, 5, 6])
    t.same(versions(await store.readInbox({ userId: b, afterVersion: 8, limit: 3 })), [9, 10])
    t.same(await store.readInbox({ userId: b, afterVersion: 10, limit: 3 }), [])
    t.same(await store.readInbox({ userId: b, afterVersion: 50, limit: 3 }), [])
    t.same(await store.readInbox({ userId: b, afterVersion: 0, limit: 0 }), [])
    t.same(versions(await store.readInbox({ userId: b, afterVersion: -5, limit: 100 })), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    const page = await store.readInbox({ userId: b, afterVersion: 4, limit: 1 })
    t.ok(page[0].kind === 'message' && page[0].body === 'm5')
    await rejectsMessageCode(t, store.readInbox({ userId: b, afterVersion: 0, limit: -1 }), 'INVALID_ARGUMENT')
  })

  withStore('device cursors never go backwards', async ({ store }, t) => {
    t.equal(await store.getCursor(5), 0)
    t.equal(await store.advanceCursor({ deviceId: 5, version: 3 }), 0)
    t.equal(await store.getCursor(5), 3)
    t.equal(await store.advanceCursor({ deviceId: 5, version: 2 }), 3, 'returns the cursor before the call')
    t.equal(await store.getCursor(5), 3, 'not moved back')
    t.equal(await store.advanceCursor({ deviceId: 5, version: 3 }), 3)
    t.equal(await store.advanceCursor({ deviceId: 5, version: 9 }), 3)
    t.equal(await store.getCursor(5), 9)
    t.equal(await store.getCursor(6), 0, 'per device')
    await rejectsMessageCode(t, store.advanceCursor({ deviceId: 5, version: -1 }), 'INVALID_ARGUMENT')
  })

  withStore('fin: moves the cursor, delivered receipts for messages from others, once, within the look-back', async ({ store, users: [a, b, c] }, t) => {
    const fin = async (userId: number, deviceId: number, version: number, maxReceiptEntries = 1000) => {
      const [r] = await store.applyBatch([{ kind: 'fin', userId, deviceId, version, maxReceiptEntries, nowMs: 50 }])
      if (r.kind !== 'fin') throw new Error(`expected a fin result, got ${r.kind}`)
      return r
    }
    // b's inbox: 1 from a, 2 own message to a, 3 from c, 4 from a
    const m1 = asMessage((await store.applyBatch([messageWrite(a, cid(1), { kind: 'user', userId: b }, [b, a], 10)]))[0])
    await store.applyBatch([messageWrite(b, cid(2), { kind: 'user', userId: a }, [a, b], 11)])
    const m3 = asMessage((await store.applyBatch([messageWrite(c, cid(3), { kind: 'user', userId: b }, [b, c], 12)]))[0])
    const m4 = asMessage((await store.applyBatch([messageWrite(a, cid(4), { kind: 'user', userId: b }, [b, a], 13)]))[0])
    t.same(versions(await readAll(store, b)), [1, 2, 3, 4])
    const aHead = await store.inboxHead(a)

    const r1 = await fin(b, 20, 3)
    t.same([r1.previousCursor, r1.cursor], [0, 3])
    t.same(r1.versions, [{ userId: a, version: aHead + 1 }, { userId: c, version: 2 }], 'one receipt per message from another user, none for its own')
    t.equal(await store.getCursor(20), 3)
    const aEntries = await store.readInbox({ userId: a, afterVersion: aHead, limit: 10 })
    t.same(aEntries.map((e) => e.kind === 'receipt' && [e.msgId, e.status, e.byUserId, e.atMs]), [[m1.msgId, 'delivered', b, 50]])
    const cEntries = await store.readInbox({ userId: c, afterVersion: 1, limit: 10 })
    t.same(cEntries.map((e) => e.kind === 'receipt' && [e.msgId, e.status, e.byUserId]), [[m3.msgId, 'delivered', b]])

    const again = await fin(b, 20, 2)
    t.same([again.previousCursor, again.cursor, again.versions.length], [3, 3, 0], 'never backwards, nothing added')
    const other = await fin(b, 21, 3)
    t.same([other.previousCursor, other.cursor, other.versions.length], [0, 3, 0], 'a second device of the same user: cursor moves, receipts exist already')
    const beyond = await fin(b, 20, 99)
    t.same([beyond.cursor, beyond.versions.map((v) => v.userId)], [4, [a]], 'clamped to the inbox head')
    t.same((await store.readInbox({ userId: a, afterVersion: aHead + 1, limit: 10 })).map((e) => e.kind === 'receipt' && e.msgId), [m4.msgId])

    // look-back: a new device holding 4 entries at once, limited to the last entry
    const d = await store.applyBatch([messageWrite(c, cid(5), { kind: 'user', userId: b }, [b, c], 14)])
    const limited = await fin(b, 22, 5, 1)
    t.same([limited.previousCursor, limited.cursor], [0, 5])
    t.same(limited.versions.map((v) => v.userId), [c], 'only the entry within the look-back')
    t.ok(asMessage(d[0]).versions.length === 2)
    t.same(await fin(c, 23, 0), { kind: 'fin', previousCursor: 0, cursor: 0, versions: [] }, 'FIN 0 is a no-op')
    await rejectsMessageCode(t, store.applyBatch([{ kind: 'fin', userId: b, deviceId: 0, version: 1, maxReceiptEntries: 1, nowMs: 1 }]), 'INVALID_ARGUMENT')
    await rejectsMessageCode(t, store.applyBatch([{ kind: 'fin', userId: b, deviceId: 1, version: -1, maxReceiptEntries: 1, nowMs: 1 }]), 'INVALID_ARGUMENT')
  })

  withStore('pruneInboxes: by age, versions continue increasing', async ({ store, users: [a, b] }, t) => {
    const to: Peer = { kind: 'user', userId: b }
    const ms: MessageResult[] = []
    for (let i = 1; i <= 5; i++) ms.push(...(await store.applyBatch([messageWrite(a, cid(i), to, [b, a], i * 100)])).map(asMessage))
    t.equal(await store.pruneInboxes({ nowMs: LATER }), 0, 'an empty policy keeps everything')
    t.equal(await store.pruneInboxes({ nowMs: LATER, olderThanMs: 300 }), 4, 'two entries in each of two inboxes')
    t.same(versions(await readAll(store, a)), [3, 4, 5])
    t.same(versions(await readAll(store, b)), [3, 4, 5])
    t.equal(await store.inboxHead(b), 5, 'head unchanged')
    t.equal(await store.getMessage(ms[0].msgId), undefined, 'a message with no copy left is forgotten')
    t.ok(await store.getMessage(ms[2].msgId))
    const [next] = await store.applyBatch([messageWrite(a, cid(6), to, [b, a], 600)])
    t.same(versionsOf(next), [{ userId: b, version: 6 }, { userId: a, version: 6 }], 'versions are never reused')
    t.ok(asMessage(next).msgId > ms[4].msgId, 'message ids are never reused')
    t.equal(await store.pruneInboxes({ nowMs: LATER, olderThanMs: 300 }), 0, 'idempotent')
    await rejectsMessageCode(t, store.pruneInboxes({ nowMs: LATER, olderThanMs: -1 }), 'INVALID_ARGUMENT')
  })

  withStore('pruneInboxes: keep the newest N per user, and both policies together', async ({ store, users: [a, b, c] }, t) => {
    const writes: InboxWrite[] = []
    for (let i = 1; i <= 6; i++) writes.push(messageWrite(a, cid(i), { kind: 'user', userId: b }, [b, a], i * 100))
    writes.push(messageWrite(c, cid(1), { kind: 'user', userId: a }, [a, c], 700))
    await store.applyBatch(writes)
    // a: 1..7, b: 1..6, c: 1
    t.equal(await store.pruneInboxes({ nowMs: LATER, keepLastPerUser: 4 }), 3 + 2)
    t.same(versions(await readAll(store, a)), [4, 5, 6, 7])
    t.same(versions(await readAll(store, b)), [3, 4, 5, 6])
    t.same(versions(await readAll(store, c)), [1])
    // newest 3 of each inbox, and nothing older than 550: a keeps 6, 7; b keeps 6; c keeps 1
    t.equal(await store.pruneInboxes({ nowMs: LATER, keepLastPerUser: 3, olderThanMs: 550 }), 2 + 3)
    t.same(versions(await readAll(store, a)), [6, 7])
    t.same(versions(await readAll(store, b)), [6])
    t.same(versions(await readAll(store, c)), [1])
    t.equal(await store.pruneInboxes({ nowMs: LATER, keepLastPerUser: 0 }), 4, 'zero empties every inbox')
    t.same(await readAll(store, a), [])
    t.equal(await store.inboxHead(a), 7)
    const [r] = await store.applyBatch([messageWrite(b, cid(1), { kind: 'user', userId: a }, [a, b], 800)])
    t.same(versionsOf(r), [{ userId: a, version: 8 }, { userId: b, version: 7 }])
  })

  withStore('pruneInboxes: a duplicate of a partly pruned message returns the copies that remain', async ({ store, users: [a, b, c] }, t) => {
    const [m] = (await store.applyBatch([messageWrite(a, cid(1), { kind: 'user', userId: b }, [b, a], 100)])).map(asMessage)
    await store.applyBatch([messageWrite(c, cid(1), { kind: 'user', userId: b }, [b, c], 200)])
    await store.applyBatch([messageWrite(c, cid(2), { kind: 'user', userId: b }, [b, c], 250)])
    await store.applyBatch([{ kind: 'receipt', msgId: m.msgId, status: 'delivered', byUserId: b, nowMs: 300 }])
    // a: m, receipt; b: m, c1, c2; c: c1, c2
    t.equal(await store.pruneInboxes({ nowMs: LATER, keepLastPerUser: 2 }), 1, "only b's copy of m goes")
    const [dup] = (await store.applyBatch([messageWrite(a, cid(1), { kind: 'user', userId: b }, [b, a], 400)])).map(asMessage)
    t.same(dup, { kind: 'message', msgId: m.msgId, sentAtMs: 100, duplicate: true, versions: [{ userId: a, version: 1 }] })
    t.equal(await store.pruneInboxes({ nowMs: LATER, olderThanMs: 250 }), 3, "a's copy of m goes (and c1 from b and c); the receipt entry stays")
    t.equal(await store.getMessage(m.msgId), undefined)
    t.same((await readAll(store, a)).map((e) => e.kind), ['receipt'])
    const [receipt] = await store.applyBatch([{ kind: 'receipt', msgId: m.msgId, status: 'read', byUserId: b, nowMs: 500 }])
    t.same(receipt, { kind: 'receipt', added: false, versions: [] }, 'receipts for a forgotten message are not added')
    const [fresh] = (await store.applyBatch([messageWrite(a, cid(1), { kind: 'user', userId: b }, [b, a], 600)])).map(asMessage)
    t.equal(fresh.duplicate, false, 'once forgotten, the client id is new again')
    t.ok(fresh.msgId > m.msgId)
  })

  withStore('pruneInboxes: a message whose copies are all pruned still de-duplicates for MESSAGE_MEMORY_MS after it was stored', async ({ store, users: [a, b] }, t) => {
    const to: Peer = { kind: 'user', userId: b }
    const [m] = (await store.applyBatch([messageWrite(a, cid(1), to, [b, a], 1_000, 'secret')])).map(asMessage)
    await store.applyBatch([messageWrite(a, cid(2), to, [b, a], 2_000)])
    t.equal(await store.pruneInboxes({ nowMs: 3_000, keepLastPerUser: 1 }), 2, 'both copies of m go')
    t.same(versions(await readAll(store, b)), [2])
    t.equal(await store.hasInboxCopy({ userId: b, msgId: m.msgId }), false)
    const stored = await store.findByClientMsgId({ senderUserId: a, clientMsgId: cid(1) })
    t.equal(stored?.msgId, m.msgId, 'the client id is still remembered')
    const [retry] = (await store.applyBatch([messageWrite(a, cid(1), to, [b, a], 3_500, 'secret')])).map(asMessage)
    t.same(retry, { kind: 'message', msgId: m.msgId, sentAtMs: 1_000, duplicate: true, versions: [] }, 'a retried SEND is a duplicate, stored nowhere again')
    t.same(versions(await readAll(store, b)), [2], 'and delivered nowhere again')

    t.equal(await store.pruneInboxes({ nowMs: 1_000 + MESSAGE_MEMORY_MS, keepLastPerUser: 1 }), 0, 'remembered up to exactly MESSAGE_MEMORY_MS')
    t.ok(await store.findByClientMsgId({ senderUserId: a, clientMsgId: cid(1) }))
    t.equal(await store.pruneInboxes({ nowMs: 1_001 + MESSAGE_MEMORY_MS, keepLastPerUser: 1 }), 0)
    t.equal(await store.findByClientMsgId({ senderUserId: a, clientMsgId: cid(1) }), undefined, 'then forgotten')
    t.equal(await store.getMessage(m.msgId), undefined)
    t.ok(await store.getMessage((await store.findByClientMsgId({ senderUserId: a, clientMsgId: cid(2) }))!.msgId), 'a message with a copy stays')
  })

  withStore('pruneInboxes: by age, oldest first; an older entry behind a younger one waits for it', async ({ store, users: [a, b] }, t) => {
    const to: Peer = { kind: 'user', userId: b }
    for (const [i, atMs] of [[1, 100], [2, 500], [3, 200], [4, 600]]) await store.applyBatch([messageWrite(a, cid(i), to, [b], atMs)])
    t.equal(await store.pruneInboxes({ nowMs: LATER, olderThanMs: 300 }), 1, 'entry 3 (written at 200, after 500) waits behind entry 2')
    t.same(versions(await readAll(store, b)), [2, 3, 4])
    t.equal(await store.pruneInboxes({ nowMs: LATER, olderThanMs: 550 }), 2)
    t.same(versions(await readAll(store, b)), [4])
  })

  withStore('large ids, times and bodies round-trip', async ({ store, users: [a, b] }, t) => {
    const body = '🐦'.repeat(20_000)
    const big = 2 ** 52
    const [r] = (await store.applyBatch([messageWrite(a, cid(1), { kind: 'user', userId: b }, [b, a], big, body, 2 ** 40)])).map(asMessage)
    const [e] = await readAll(store, b)
    t.ok(e.kind === 'message' && e.body === body && e.sentAtMs === big && e.fromDeviceId === 2 ** 40)
    t.equal(r.sentAtMs, big)
    t.equal(await store.advanceCursor({ deviceId: 2 ** 40, version: 2 ** 50 }), 0)
    t.equal(await store.getCursor(2 ** 40), 2 ** 50)
  })

  withStore('applyBatch calls made together apply one after another in call order; close() waits for them', async ({ store, users: [a, b, c, d] }, t) => {
    await store.applyBatch([messageWrite(a, cid(1), { kind: 'user', userId: b }, [b, a], 1)])
    // d is new to the store (a store may look it up first); the later calls name only users seen
    const p1 = store.applyBatch([messageWrite(a, cid(2), { kind: 'user', userId: d }, [d, a], 2)])
    const p2 = store.applyBatch([messageWrite(a, cid(3), { kind: 'user', userId: b }, [b, a], 3)])
    const p3 = store.applyBatch([messageWrite(a, cid(4), { kind: 'user', userId: 9999 }, [9999, a], 4)])
    const p4 = store.applyBatch([messageWrite(b, cid(5), { kind: 'user', userId: a }, [a, b], 5)])
    const closing = store.close()
    await rejectsMessageCode(t, store.applyBatch([messageWrite(c, cid(6), { kind: 'user', userId: a }, [a, c], 6)]), 'STORE_CLOSED', 'called after close()')
    t.same(versionsOf((await p1)[0]), [{ userId: d, version: 1 }, { userId: a, version: 2 }])
    t.same(versionsOf((await p2)[0]), [{ userId: b, version: 2 }, { userId: a, version: 3 }])
    await rejectsMessageCode(t, p3, 'UNKNOWN_USER', 'a failing batch does not stop the ones after it')
    t.same(versionsOf((await p4)[0]), [{ userId: a, version: 4 }, { userId: b, version: 3 }])
    await closing
    await rejectsMessageCode(t, store.inboxHead(a), 'STORE_CLOSED')
  })

  withStore('hasInboxCopy: message entries only, per inbox; pruned copies count as absent', async ({ store, users: [a, b, c] }, t) => {
    const [m] = (await store.applyBatch([messageWrite(a, cid(1), { kind: 'user', userId: b }, [b], 100)])).map(asMessage) // no copy for the sender
    await store.applyBatch([{ kind: 'receipt', msgId: m.msgId, status: 'read', byUserId: b, nowMs: 110 }])
    t.equal(await store.hasInboxCopy({ userId: b, msgId: m.msgId }), true)
    t.equal(await store.hasInboxCopy({ userId: a, msgId: m.msgId }), false, "a receipt entry in the sender's inbox is not a copy")
    t.equal(await store.hasInboxCopy({ userId: c, msgId: m.msgId }), false, 'another inbox')
    t.equal(await store.hasInboxCopy({ userId: b, msgId: m.msgId + 1000 }), false, 'an unknown message')
    const [g] = (await store.applyBatch([messageWrite(c, cid(1), { kind: 'user', userId: b }, [b, c], 200)])).map(asMessage)
    await store.applyBatch([messageWrite(c, cid(2), { kind: 'user', userId: b }, [b, c], 300)])
    t.equal(await store.pruneInboxes({ nowMs: LATER, keepLastPerUser: 1 }), 3, "b keeps c2; c keeps c2 (a's receipt stays)")
    t.equal(await store.hasInboxCopy({ userId: b, msgId: g.msgId }), false, 'pruned from b')
    t.equal(await store.hasInboxCopy({ userId: c, msgId: g.msgId }), false, 'and from c')
    t.equal(await store.hasInboxCopy({ userId: b, msgId: m.msgId }), false, 'pruned, message forgotten')
    const [kept] = (await store.applyBatch([messageWrite(a, cid(9), { kind: 'user', userId: c }, [c, a], 400)])).map(asMessage)
    await store.pruneInboxes({ nowMs: LATER, keepLastPerUser: 1 }) // a keeps its copy; c keeps it too: nothing of kept goes
    await store.applyBatch([messageWrite(b, cid(9), { kind: 'user', userId: c }, [c, b], 500)])
    await store.pruneInboxes({ nowMs: LATER, keepLastPerUser: 1 }) // c's copy of kept goes, a's stays
    t.equal(await store.hasInboxCopy({ userId: c, msgId: kept.msgId }), false, "c's copy pruned")
    t.equal(await store.hasInboxCopy({ userId: a, msgId: kept.msgId }), true, "a's copy of the same message remains")
    await rejectsMessageCode(t, store.hasInboxCopy({ userId: 0, msgId: m.msgId }), 'INVALID_ARGUMENT')
    await rejectsMessageCode(t, store.hasInboxCopy({ userId: b, msgId: 1.5 }), 'INVALID_ARGUMENT')
  })

  withStore('closed store refuses calls', async ({ store, users: [a] }, t) => {
    await store.close()
    await rejectsMessageCode(t, store.listContacts(a), 'STORE_CLOSED')
    await rejectsMessageCode(t, store.applyBatch([]), 'STORE_CLOSED')
    await rejectsMessageCode(t, store.readInbox({ userId: a, afterVersion: 0, limit: 1 }), 'STORE_CLOSED')
    await rejectsMessageCode(t, store.hasInboxCopy({ userId: a, msgId: 1 }), 'STORE_CLOSED')
    await store.close()
  })
}
