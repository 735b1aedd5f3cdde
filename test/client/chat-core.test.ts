import fc from 'fast-check'
import t from 'tap'
import { ChatError, type SentInfo } from '../../src/client/chat-core.js'
import { MemoryClientState } from '../../src/client/client-state.js'
import { encodeChatMessage } from '../../src/protocol/chat-codec.js'
import { BOB, harness, hex, msg, sendOk, TEAM } from './core-harness.js'
import { fcSeed } from '../wire/helpers.js'

fc.configureGlobal({ seed: fcSeed() }) // reproducible; PIGEON_FC_SEED explores

t.test('send: the outbox entry is stored before the message is transmitted; SEND_OK removes it', async (t) => {
  const h = harness()
  h.core.onConnected()
  h.take() // SYNC
  h.log.length = 0
  const p = h.core.send(BOB, 'hello')
  const [send] = h.take()
  t.match(send, { type: 'SEND', to: BOB, body: 'hello' })
  if (send.type !== 'SEND') throw new Error()
  const id = hex(send.clientMsgId)
  t.same(h.log, [`add ${id}`, `send SEND ${id}`], 'persisted, then sent')
  t.equal(h.core.outboxSize, 1)
  t.equal(h.state.load().outbox.length, 1)

  h.feed(sendOk(send, 55))
  const info = await p
  t.match(info, { msgId: 55, body: 'hello', to: BOB })
  t.equal(hex(info.clientMsgId), id)
  t.equal(h.core.outboxSize, 0)
  t.same(h.state.load().outbox, [], 'removed from the stored outbox')
  t.same(h.log.slice(-1), [`remove ${id}`])
  t.ok(h.events.includes('sent 55'))

  // A second SEND_OK for the same message (e.g. a resend crossed the first reply) is ignored.
  h.feed(sendOk(send, 55))
  t.equal(h.events.filter((e) => e === 'sent 55').length, 1)
  t.equal(h.core.protocolErrors, 0)
})

t.test('offline sends wait in the outbox; a reconnect resends every entry in order with the same clientMsgId, then syncs', async (t) => {
  const h = harness()
  const settled: string[] = []
  const a = h.core.send(BOB, 'a').then((i) => settled.push(`a ${i.msgId}`))
  const b = h.core.send(TEAM, 'b').then((i) => settled.push(`b ${i.msgId}`))
  t.same(h.take(), [], 'nothing sent while disconnected')
  t.equal(h.core.outboxSize, 2)

  h.core.onConnected()
  const first = h.take()
  t.same(first.map((m) => m.type), ['SEND', 'SEND', 'SYNC'])
  t.match(first[0], { body: 'a', to: BOB })
  t.match(first[1], { body: 'b', to: TEAM })
  t.match(first[2], { afterVersion: 0, maxEntries: 50 })

  // The link dies before any reply; the next session sends the same two again.
  h.core.onDisconnected()
  h.core.onConnected()
  const second = h.take()
  t.same(second.map((m) => m.type), ['SEND', 'SEND', 'SYNC'])
  for (const i of [0, 1]) {
    const x = first[i]
    const y = second[i]
    if (x.type !== 'SEND' || y.type !== 'SEND') throw new Error()
    t.equal(hex(y.clientMsgId), hex(x.clientMsgId), 'same clientMsgId on resend')
  }
  h.feed(sendOk(second[0], 1))
  h.feed(sendOk(second[1], 2))
  await Promise.all([a, b])
  t.same(settled, ['a 1', 'b 2'])
  t.equal(h.core.outboxSize, 0)
})

t.test('a restarted client (new core over the same stored state) resends the stored outbox', async (t) => {
  const stored = new MemoryClientState()
  const h1 = harness({ state: stored })
  void h1.core.send(BOB, 'survives').catch(() => {})
  h1.core.shutdown()
  t.equal(stored.load().outbox.length, 1, 'shutdown keeps the outbox')

  const h2 = harness({ state: stored })
  t.equal(h2.core.outboxSize, 1)
  const sent: SentInfo[] = []
  h2.core.on('sent', (i) => sent.push(i))
  h2.core.onConnected()
  const [send, sync] = h2.take()
  t.match(send, { type: 'SEND', body: 'survives' })
  t.match(sync, { type: 'SYNC' })
  h2.feed(sendOk(send, 9))
  t.equal(sent.length, 1, "'sent' for a message of an earlier run")
  t.same(stored.load().outbox, [])
})

t.test('SEND_FAILED rejects with a typed ChatError and drops the entry; RATE_LIMITED can be retried instead', async (t) => {
  const h = harness()
  h.core.onConnected()
  h.take()
  const failed: string[] = []
  h.core.on('send_failed', (e, err) => failed.push(`${e.body} ${err.code}`))
  const p = h.core.send(BOB, 'nope')
  const [send] = h.take()
  if (send.type !== 'SEND') throw new Error()
  h.feed({ type: 'SEND_FAILED', clientMsgId: send.clientMsgId, code: 'UNKNOWN_USER' })
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  t.ok(err instanceof ChatError)
  t.equal((err as ChatError).code, 'UNKNOWN_USER')
  t.same(failed, ['nope UNKNOWN_USER'])
  t.equal(h.core.outboxSize, 0)
  t.same(h.state.load().outbox, [])

  const r = harness({ retryRateLimited: true })
  r.core.onConnected()
  r.take()
  const q = r.core.send(BOB, 'slow down')
  const [s1] = r.take()
  if (s1.type !== 'SEND') throw new Error()
  r.feed({ type: 'SEND_FAILED', clientMsgId: s1.clientMsgId, code: 'RATE_LIMITED', retryAfterMs: 300 })
  t.equal(r.core.outboxSize, 1, 'kept')
  r.advance(299)
  t.same(r.take(), [])
  r.advance(1)
  const [s2] = r.take()
  t.match(s2, { type: 'SEND', body: 'slow down' })
  if (s2.type !== 'SEND') throw new Error()
  t.equal(hex(s2.clientMsgId), hex(s1.clientMsgId))
  r.feed(sendOk(s2, 3))
  t.match(await q, { msgId: 3 })

  // Without the option, RATE_LIMITED rejects like any refusal.
  const n = harness()
  n.core.onConnected()
  n.take()
  const np = n.core.send(BOB, 'x')
  const [ns] = n.take()
  if (ns.type !== 'SEND') throw new Error()
  n.feed({ type: 'SEND_FAILED', clientMsgId: ns.clientMsgId, code: 'RATE_LIMITED', retryAfterMs: 50 })
  await t.rejects(np, { code: 'RATE_LIMITED', retryAfterMs: 50 })
})

t.test('a message too large is refused before it reaches the outbox', async (t) => {
  const h = harness()
  await t.rejects(h.core.send(BOB, 'x'.repeat(64 * 1024 + 1)), { code: 'MESSAGE_TOO_LARGE' })
  t.equal(h.core.outboxSize, 0)
  t.same(h.log, [])
})

t.test('push -> sync -> batch -> fin, paging while latestVersion is ahead, nothing emitted twice', async (t) => {
  const h = harness({ syncBatchSize: 3 })
  h.core.onConnected()
  t.same(h.take(), [{ type: 'SYNC', afterVersion: 0, maxEntries: 3 }])

  h.feed({ type: 'PUSH', latestVersion: 5 })
  t.same(h.take(), [], 'no second SYNC while one is in flight')

  h.feed({ type: 'SYNC_BATCH', afterVersion: 0, latestVersion: 5, entries: [msg(1), msg(2), msg(3)] })
  t.same(h.events, ['message 1', 'message 2', 'message 3'])
  t.equal(h.core.cursor, 3)
  t.equal(h.state.load().cursor, 3, 'cursor persisted')
  t.same(h.take(), [
    { type: 'FIN', version: 3 },
    { type: 'SYNC', afterVersion: 3, maxEntries: 3 },
  ])

  // An overlapping batch (entries at or below the cursor) emits only what is new.
  h.events.length = 0
  h.feed({ type: 'SYNC_BATCH', afterVersion: 2, latestVersion: 5, entries: [msg(3), msg(4), msg(5)] })
  t.same(h.events, ['message 4', 'message 5', 'synced 5'])
  t.same(h.take(), [{ type: 'FIN', version: 5 }], 'caught up: FIN, no more SYNC')

  // Old PUSH: nothing. New PUSH: SYNC from the cursor.
  h.feed({ type: 'PUSH', latestVersion: 5 })
  t.same(h.take(), [])
  h.feed({ type: 'PUSH', latestVersion: 6 })
  t.same(h.take(), [{ type: 'SYNC', afterVersion: 5, maxEntries: 3 }])
  h.events.length = 0
  h.feed({
    type: 'SYNC_BATCH',
    afterVersion: 5,
    latestVersion: 8,
    entries: [
      { kind: 'receipt', version: 6, msgId: 42, status: 'delivered', byUserId: 2, atMs: 1 },
      { kind: 'group', version: 8, groupId: 9, event: 'created', actorUserId: 1, subjectUserId: 1, name: 'team', atMs: 2 },
    ],
  })
  t.same(h.events, ['receipt 6', 'group 8', 'synced 8'])
  t.same(h.take(), [{ type: 'FIN', version: 8 }])

  // A replayed batch changes nothing.
  h.events.length = 0
  h.feed({ type: 'SYNC_BATCH', afterVersion: 0, latestVersion: 8, entries: [msg(1), msg(2)] })
  t.same(h.events.filter((e) => e.startsWith('message')), [])
  t.equal(h.core.cursor, 8)
})

t.test('a PUSH that arrives during a SYNC triggers another round; pruned history (a gap) is accepted', async (t) => {
  const h = harness()
  h.state.inner.saveCursor(4)
  const g = harness({ state: h.state.inner })
  g.core.onConnected()
  t.same(g.take(), [{ type: 'SYNC', afterVersion: 4, maxEntries: 50 }])
  g.feed({ type: 'PUSH', latestVersion: 20 })
  g.feed({ type: 'SYNC_BATCH', afterVersion: 4, latestVersion: 12, entries: [msg(10), msg(12)] })
  t.same(g.events, ['message 10', 'message 12'])
  t.same(g.take(), [
    { type: 'FIN', version: 12 },
    { type: 'SYNC', afterVersion: 12, maxEntries: 50 },
  ])
})

t.test('an empty batch while latestVersion is ahead does not spin: the device holds latestVersion', async (t) => {
  const h = harness()
  h.core.onConnected()
  h.take()
  h.feed({ type: 'SYNC_BATCH', afterVersion: 0, latestVersion: 3, entries: [] })
  t.same(h.take(), [{ type: 'FIN', version: 3 }], 'holds 3 (nothing below is left to receive), reports it, no SYNC loop')
  h.feed({ type: 'PUSH', latestVersion: 4 })
  t.same(h.take(), [{ type: 'SYNC', afterVersion: 3, maxEntries: 50 }], 'a later PUSH syncs from there')
})

t.test('an unanswered SYNC does not block sync forever: a later PUSH retries', async (t) => {
  const h = harness()
  h.core.onConnected()
  h.take()
  h.feed({ type: 'PUSH', latestVersion: 2 })
  t.same(h.take(), [])
  h.advance(5_000)
  h.feed({ type: 'PUSH', latestVersion: 3 })
  t.same(h.take(), [{ type: 'SYNC', afterVersion: 0, maxEntries: 50 }])
})

t.test('after a reconnect the first batch reports the cursor with FIN even when empty', async (t) => {
  const h = harness()
  h.core.onConnected()
  h.take()
  h.feed({ type: 'SYNC_BATCH', afterVersion: 0, latestVersion: 2, entries: [msg(1), msg(2)] })
  h.take()
  h.core.onDisconnected()
  h.core.onConnected()
  t.same(h.take(), [{ type: 'SYNC', afterVersion: 2, maxEntries: 50 }])
  h.feed({ type: 'SYNC_BATCH', afterVersion: 2, latestVersion: 2, entries: [] })
  t.same(h.take(), [{ type: 'FIN', version: 2 }])
})

t.test('property: any sequence of (overlapping, replayed) batches emits each version once, in order', async (t) => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 8 }), fc.boolean()), { maxLength: 25 }), (batches) => {
      const h = harness()
      h.core.onConnected()
      for (const [after, count, reconnect] of batches) {
        const entries = Array.from({ length: count }, (_, i) => msg(after + 1 + i))
        h.feed({ type: 'SYNC_BATCH', afterVersion: after, latestVersion: after + count, entries })
        if (reconnect) {
          h.core.onDisconnected()
          h.core.onConnected()
        }
      }
      const versions = h.messages.map((m) => m.version)
      for (let i = 1; i < versions.length; i++) if (versions[i] <= versions[i - 1]) return false
      return versions.length === 0 || h.core.cursor === versions[versions.length - 1]
    }),
  )
  t.pass()
})

t.test('markRead batches ids into one READ after the delay; queued reads wait for a session', async (t) => {
  const h = harness()
  h.core.onConnected()
  h.take()
  h.core.markRead([3, 1])
  h.core.markRead([2, 3])
  t.same(h.take(), [], 'not yet')
  h.advance(249)
  t.same(h.take(), [])
  h.advance(1)
  t.same(h.take(), [{ type: 'READ', msgIds: [1, 2, 3] }])
  h.advance(1_000)
  t.same(h.take(), [], 'once')

  h.core.onDisconnected()
  h.core.markRead([7])
  h.advance(1_000)
  t.same(h.take(), [], 'offline: kept')
  h.core.onConnected()
  t.same(h.take(), [
    { type: 'SYNC', afterVersion: 0, maxEntries: 50 },
    { type: 'READ', msgIds: [7] },
  ])
  t.ok(h.core.idle === false, 'a SYNC is in flight')
})

t.test('requests are matched by requestId; ERROR rejects with its code; a disconnect rejects what is pending', async (t) => {
  const h = harness()
  await t.rejects(h.core.contactList(), { code: 'NOT_CONNECTED' })
  h.core.onConnected()
  h.take()

  const contacts = h.core.contactList()
  const lookup = h.core.userLookup([2, 3])
  const add = h.core.contactAdd('mallory')
  const [c, l, a] = h.take()
  t.match(c, { type: 'CONTACT_LIST' })
  t.match(l, { type: 'USER_LOOKUP', userIds: [2, 3] })
  t.match(a, { type: 'CONTACT_ADD', username: 'mallory' })
  if (c.type !== 'CONTACT_LIST' || l.type !== 'USER_LOOKUP' || a.type !== 'CONTACT_ADD') throw new Error()
  t.not(c.requestId, l.requestId)

  // Replies in another order than the requests.
  h.feed({ type: 'USERS', requestId: l.requestId, users: [{ userId: 2, username: 'bob' }] })
  h.feed({ type: 'ERROR', requestId: a.requestId, code: 'UNKNOWN_USER', message: 'no user named "mallory"' })
  h.feed({ type: 'CONTACTS', requestId: c.requestId, contacts: [{ userId: 2, username: 'bob', online: true }] })
  t.same(await lookup, [{ userId: 2, username: 'bob' }])
  t.same(await contacts, [{ userId: 2, username: 'bob', online: true }])
  await t.rejects(add, { name: 'ChatError', code: 'UNKNOWN_USER' })

  const create = h.core.groupCreate('team', ['bob'])
  const [gc] = h.take()
  if (gc.type !== 'GROUP_CREATE') throw new Error()
  h.feed({ type: 'GROUP', requestId: gc.requestId, groupId: 9, name: 'team', members: [{ userId: 1, username: 'alice' }] })
  t.same(await create, { groupId: 9, name: 'team', members: [{ userId: 1, username: 'alice' }] })

  // A reply of the wrong kind.
  const list = h.core.groupList()
  const [gl] = h.take()
  if (gl.type !== 'GROUP_LIST') throw new Error()
  h.feed({ type: 'OK', requestId: gl.requestId })
  await t.rejects(list, { code: 'UNEXPECTED_REPLY' })

  // A reply nobody asked for is a protocol error.
  h.feed({ type: 'OK', requestId: 9999 })
  t.equal(h.core.protocolErrors, 1)

  const leave = h.core.groupLeave(9)
  const rename = h.core.groupRename(9, 'x')
  t.equal(h.take().length, 2)
  h.core.onDisconnected()
  await t.rejects(leave, { code: 'DISCONNECTED' })
  await t.rejects(rename, { code: 'DISCONNECTED' })
})

t.test('a transport that refuses to send fails the request, keeps the outbox', async (t) => {
  const h = harness()
  h.core.onConnected()
  h.take()
  h.setTransportDown(true)
  await t.rejects(h.core.groupMembers(1), { code: 'DISCONNECTED' })
  const p = h.core.send(BOB, 'later')
  t.equal(h.core.outboxSize, 1)
  h.setTransportDown(false)
  h.core.onDisconnected()
  h.core.onConnected()
  const [send] = h.take()
  t.match(send, { type: 'SEND', body: 'later' })
  h.feed(sendOk(send, 4))
  t.match(await p, { msgId: 4 })
})

t.test('malformed or misdirected input is counted, reported and ignored', async (t) => {
  const h = harness()
  h.core.onConnected()
  h.take()
  const errors: Error[] = []
  h.core.on('protocol_error', (e) => errors.push(e))
  h.core.handleMessage(new Uint8Array([]))
  h.core.handleMessage(new Uint8Array([0xff, 1, 2]))
  h.core.handleMessage(encodeChatMessage({ type: 'PUSH', latestVersion: 3 }).slice(0, 1))
  h.feed({ type: 'SYNC', afterVersion: 0, maxEntries: 1 }) // a client message from the server
  t.equal(h.core.protocolErrors, 4)
  t.equal(errors.length, 4)
  // Still works.
  h.feed({ type: 'PRESENCE', userId: 2, online: true })
  t.ok(h.events.includes('presence 2 true'))
})

t.test('shutdown rejects waiting sends with CLOSED but keeps them stored', async (t) => {
  const h = harness()
  const p = h.core.send(BOB, 'kept')
  h.core.shutdown()
  await t.rejects(p, { code: 'CLOSED' })
  t.equal(h.state.load().outbox.length, 1)
  await t.rejects(h.core.send(BOB, 'after'), { code: 'CLOSED' })
})

t.test('own copy: SEND_OK at the next version stands in for syncing it; a gap syncs', async (t) => {
  const h = harness()
  h.core.onConnected({ userId: 1, deviceId: 3 })
  t.same(h.take().map((m) => m.type), ['SYNC'])
  h.feed({ type: 'SYNC_BATCH', afterVersion: 0, latestVersion: 2, entries: [msg(1), msg(2)] })
  t.same(h.take().map((m) => m.type), ['FIN'], 'messages from others are reported')
  void h.core.send(BOB, 'mine')
  const send = h.take()[0]
  h.events.length = 0
  h.feed({ type: 'SEND_OK', clientMsgId: send.type === 'SEND' ? send.clientMsgId : new Uint8Array(), msgId: 77, version: 3, sentAtMs: 7_000 })
  t.same(h.events, ['sent 77', 'message 3'])
  t.same(h.take(), [], 'no SYNC and no FIN for the own copy')
  t.equal(h.core.cursor, 3)
  t.match(h.messages.at(-1), { version: 3, msgId: 77, fromUserId: 1, fromDeviceId: 3, to: BOB, body: 'mine', sentAtMs: 7_000 })
  t.same(h.state.inner.load().cursor, 3, 'cursor persisted')

  void h.core.send(BOB, 'second')
  const send2 = h.take()[0]
  h.feed({ type: 'SEND_OK', clientMsgId: send2.type === 'SEND' ? send2.clientMsgId : new Uint8Array(), msgId: 78, version: 5, sentAtMs: 7_001 })
  t.match(h.take(), [{ type: 'SYNC', afterVersion: 3 }], 'version 4 is missing: sync')
  h.feed({ type: 'SYNC_BATCH', afterVersion: 3, latestVersion: 5, entries: [{ kind: 'receipt', version: 4, msgId: 77, status: 'delivered', byUserId: 2, atMs: 1 }, { ...msg(5), fromUserId: 1, msgId: 78 }] })
  t.same(h.take(), [], 'receipts and own copies: FIN waits for the next message from someone else')
  t.equal(h.core.cursor, 5)
  h.feed({ type: 'PUSH', latestVersion: 6 })
  h.take()
  h.feed({ type: 'SYNC_BATCH', afterVersion: 5, latestVersion: 6, entries: [msg(6)] })
  t.match(h.take(), [{ type: 'FIN', version: 6 }])
})

t.test('own copy: without knowing who it is, the core syncs and FINs every batch', async (t) => {
  const h = harness()
  h.core.onConnected()
  h.take()
  h.feed({ type: 'SYNC_BATCH', afterVersion: 0, latestVersion: 0, entries: [] })
  void h.core.send(BOB, 'mine')
  const send = h.take()[0]
  h.feed({ type: 'SEND_OK', clientMsgId: send.type === 'SEND' ? send.clientMsgId : new Uint8Array(), msgId: 77, version: 1, sentAtMs: 7_000 })
  t.match(h.take(), [{ type: 'SYNC', afterVersion: 0 }])
  h.feed({ type: 'SYNC_BATCH', afterVersion: 0, latestVersion: 1, entries: [{ ...msg(1), fromUserId: 1 }] })
  t.match(h.take(), [{ type: 'FIN', version: 1 }])
})
