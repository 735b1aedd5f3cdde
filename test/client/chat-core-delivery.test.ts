/**
 * ChatClientCore: what must reach the server even across lost sessions, restarts and
 * refusals for now — the FIN that makes "delivered", messages refused with
 * INTERNAL_ERROR or RATE_LIMITED (kept, and in order), read receipts — and the order of
 * 'applied' and the saved cursor.
 */
import t from 'tap'
import { MemoryClientState } from '../../src/client/client-state.js'
import { MAX_INTERNAL_ERROR_RETRY_MS } from '../../src/client/outbox.js'
import type { ChatMessage } from '../../src/protocol/chat-types.js'
import { BOB, TEAM, harness, hex, msg, sendOk } from './core-harness.js'

const SELF = { userId: 1, deviceId: 3 }

const bodies = (ms: ChatMessage[]): string[] => ms.map((m) => (m.type === 'SEND' ? m.body : m.type))
const refuse = (m: ChatMessage, code: 'RATE_LIMITED' | 'INTERNAL_ERROR', retryAfterMs?: number): ChatMessage => {
  if (m.type !== 'SEND') throw new Error(`expected SEND, got ${m.type}`)
  return { type: 'SEND_FAILED', clientMsgId: m.clientMsgId, code, retryAfterMs }
}

t.test('with self known, the first batch of every session sends FIN (even empty): the last one may have been lost', async (t) => {
  const stored = new MemoryClientState()
  const h = harness({ state: stored })
  h.core.onConnected(SELF)
  h.take()
  h.feed({ type: 'SYNC_BATCH', afterVersion: 0, latestVersion: 2, entries: [msg(1), msg(2)] })
  t.same(h.take(), [{ type: 'FIN', version: 2 }])

  // That FIN died with the session: the next session reports the cursor again.
  h.core.onDisconnected()
  h.core.onConnected(SELF)
  t.same(h.take(), [{ type: 'SYNC', afterVersion: 2, maxEntries: 50 }])
  h.feed({ type: 'SYNC_BATCH', afterVersion: 2, latestVersion: 2, entries: [] })
  t.same(h.take(), [{ type: 'FIN', version: 2 }], 'after a reconnect')

  // Later batches of the same session without a message from someone else still wait.
  h.feed({ type: 'PUSH', latestVersion: 3 })
  h.take()
  h.feed({ type: 'SYNC_BATCH', afterVersion: 2, latestVersion: 3, entries: [{ kind: 'receipt', version: 3, msgId: 9, status: 'read', byUserId: 2, atMs: 1 }] })
  t.same(h.take(), [], 'no FIN for a receipt later in the session')

  // The process died after saving the cursor, before its FIN: a restart reports it.
  h.core.shutdown()
  const r = harness({ state: stored })
  r.core.onConnected(SELF)
  t.same(r.take(), [{ type: 'SYNC', afterVersion: 3, maxEntries: 50 }])
  r.feed({ type: 'SYNC_BATCH', afterVersion: 3, latestVersion: 4, entries: [{ kind: 'receipt', version: 4, msgId: 9, status: 'delivered', byUserId: 2, atMs: 1 }] })
  t.same(r.take(), [{ type: 'FIN', version: 4 }], 'after a restart, also when the batch holds no message from others')

  // A device that holds nothing has nothing to report.
  const n = harness()
  n.core.onConnected(SELF)
  n.take()
  n.feed({ type: 'SYNC_BATCH', afterVersion: 0, latestVersion: 0, entries: [] })
  t.same(n.take(), [])
})

t.test('INTERNAL_ERROR keeps the message and sends it again with the same clientMsgId, with a bounded backoff', async (t) => {
  const h = harness() // no retryRateLimited: INTERNAL_ERROR is retried regardless
  h.core.onConnected(SELF)
  h.take()
  const failed: string[] = []
  h.core.on('send_failed', (_e, err) => failed.push(err.code))
  let settled = false
  const p = h.core.send(BOB, 'important').finally(() => (settled = true))
  let [send] = h.take()
  const id = send.type === 'SEND' ? hex(send.clientMsgId) : ''
  const delays: number[] = []
  for (let attempt = 0; attempt < 7; attempt++) {
    h.feed(refuse(send, 'INTERNAL_ERROR'))
    t.equal(h.core.outboxSize, 1, 'kept')
    t.equal(h.state.load().outbox.length, 1, 'still stored')
    let waited = 0
    while (h.sent.length === 0 && waited < 60_000) {
      h.advance(500)
      waited += 500
    }
    delays.push(waited)
    ;[send] = h.take()
    t.match(send, { type: 'SEND', body: 'important' })
    t.equal(send.type === 'SEND' ? hex(send.clientMsgId) : '', id, 'same clientMsgId')
  }
  t.same(delays, [1_000, 2_000, 4_000, 8_000, 16_000, MAX_INTERNAL_ERROR_RETRY_MS, MAX_INTERNAL_ERROR_RETRY_MS])
  await Promise.resolve()
  t.notOk(settled, 'the send promise waits')
  t.same(failed, [])
  h.feed(sendOk(send, 31))
  t.match(await p, { msgId: 31 })
  h.take() // the SYNC for the own copy's version

  // A SEND_OK resets the backoff; a retryAfterMs from the server is followed.
  void h.core.send(BOB, 'next')
  const [next] = h.take()
  h.feed(refuse(next, 'INTERNAL_ERROR'))
  h.advance(999)
  t.same(h.take(), [])
  h.advance(1)
  const [again] = h.take()
  h.feed(refuse(again, 'INTERNAL_ERROR', 300))
  h.advance(300)
  t.same(bodies(h.take()), ['next'])
})

t.test('a message to be retried holds back every later one; after the retry time they go again in their original order', async (t) => {
  const h = harness({ retryRateLimited: true })
  h.core.onConnected(SELF)
  h.take()
  void h.core.send(BOB, 'first')
  const [first] = h.take()
  h.feed(refuse(first, 'RATE_LIMITED', 50))
  h.advance(30)
  void h.core.send(BOB, 'second')
  void h.core.send(TEAM, 'third')
  t.same(h.take(), [], 'nothing overtakes the refused message')
  h.advance(19)
  t.same(h.take(), [])
  h.advance(1)
  const retry = h.take()
  t.same(bodies(retry), ['first'], 'the oldest first, alone')
  h.feed(sendOk(retry[0], 1))
  const rest = h.take()
  t.same(bodies(rest), ['second', 'third'], 'then the rest, in order')
  // 'third' is refused again while 'second' is stored: nothing after it goes ahead.
  h.feed(sendOk(rest[0], 2))
  h.feed(refuse(rest[1], 'RATE_LIMITED', 20))
  void h.core.send(BOB, 'fourth')
  t.same(h.take(), [])
  h.advance(20)
  const [third] = h.take()
  t.same(bodies([third]), ['third'])
  h.feed(sendOk(third, 3))
  t.same(bodies(h.take()), ['fourth'])
  t.equal(h.core.outboxSize, 1)
})

t.test('refusals of SENDs already in flight: all of them go again, in order, after the latest retry time; a reconnect does not jump the hold', async (t) => {
  const h = harness({ retryRateLimited: true })
  h.core.onConnected(SELF)
  h.take()
  for (const body of ['a', 'b', 'c']) void h.core.send(BOB, body)
  const [a, b, c] = h.take()
  h.feed(refuse(a, 'INTERNAL_ERROR')) // 1 s backoff
  h.feed(sendOk(b, 7)) // the server had stored b: out of the client's hands
  h.feed(refuse(c, 'RATE_LIMITED', 1_500)) // a later retry time wins
  h.core.onDisconnected()
  h.core.onConnected(SELF)
  t.same(bodies(h.take()), ['SYNC'], 'the new session waits for the hold too')
  h.advance(1_499)
  t.same(h.take(), [])
  h.advance(1)
  const [ra] = h.take()
  t.same(bodies([ra]), ['a'])
  h.feed(sendOk(ra, 8))
  t.same(bodies(h.take()), ['c'])
})

t.test('read receipts are stored until a READ carries them on a live session; a restart sends them', async (t) => {
  const stored = new MemoryClientState()
  const h = harness({ state: stored })
  h.core.markRead([101, 102])
  t.same(h.log, ['reads 101,102'], 'stored at once')
  h.core.markRead([102])
  t.same(h.log, ['reads 101,102'], 'once')
  h.core.shutdown()
  t.same(stored.load().reads, [101, 102], 'kept by shutdown')

  const r = harness({ state: stored })
  r.core.onConnected(SELF)
  t.same(r.take(), [
    { type: 'SYNC', afterVersion: 0, maxEntries: 50 },
    { type: 'READ', msgIds: [101, 102] },
  ])
  t.same(stored.load().reads, [], 'forgotten once sent')

  // A READ the transport refuses stays stored.
  r.core.markRead([103])
  r.setTransportDown(true)
  r.core.flushReads()
  t.same(stored.load().reads, [103])
  r.setTransportDown(false)
  r.core.onDisconnected()
  r.core.onConnected(SELF)
  t.match(r.take(), [{ type: 'SYNC' }, { type: 'READ', msgIds: [103] }])
  t.same(stored.load().reads, [])
})

t.test("'applied' comes after the entries it covers and before the cursor is saved (sync batches and own copies)", async (t) => {
  const h = harness()
  h.core.on('message', (e) => h.log.push(`message ${e.version}`))
  h.core.on('applied', (cursor) => h.log.push(`applied ${cursor}`))
  h.core.onConnected(SELF)
  h.take()
  h.log.length = 0
  h.feed({ type: 'SYNC_BATCH', afterVersion: 0, latestVersion: 2, entries: [msg(1), msg(2)] })
  t.same(h.log, ['message 1', 'message 2', 'applied 2', 'cursor 2', 'send FIN'])
  h.take()

  void h.core.send(BOB, 'mine')
  const [send] = h.take()
  h.log.length = 0
  h.feed({ type: 'SEND_OK', clientMsgId: send.type === 'SEND' ? send.clientMsgId : new Uint8Array(), msgId: 77, version: 3, sentAtMs: 7_000 })
  t.same(h.log.slice(1), ['message 3', 'applied 3', 'cursor 3'], 'own copy')

  h.log.length = 0
  h.feed({ type: 'SYNC_BATCH', afterVersion: 0, latestVersion: 3, entries: [msg(1)] })
  t.notOk(h.log.some((l) => l.startsWith('applied')), 'nothing new: no event')
})

t.test('an empty batch answering the SYNC from the cursor moves the device to its latestVersion', async (t) => {
  const h = harness()
  h.core.onConnected(SELF)
  t.same(h.take(), [{ type: 'SYNC', afterVersion: 0, maxEntries: 50 }])
  h.feed({ type: 'SYNC_BATCH', afterVersion: 0, latestVersion: 1, entries: [msg(1)] })
  h.take()
  h.feed({ type: 'PUSH', latestVersion: 5 })
  t.same(h.take(), [{ type: 'SYNC', afterVersion: 1, maxEntries: 50 }])
  // Entries 2-4 were pruned (or are too large for this device): nothing but the version.
  h.feed({ type: 'SYNC_BATCH', afterVersion: 1, latestVersion: 4, entries: [] })
  t.equal(h.state.inner.load().cursor, 4, 'holds 4')
  t.same(h.take(), [{ type: 'SYNC', afterVersion: 4, maxEntries: 50 }], 'and syncs on towards the pushed 5')
  h.feed({ type: 'SYNC_BATCH', afterVersion: 4, latestVersion: 5, entries: [msg(5)] })
  t.same(h.take(), [{ type: 'FIN', version: 5 }])
  // An empty batch for another cursor (a stale reply) moves nothing.
  h.feed({ type: 'PUSH', latestVersion: 9 })
  h.take()
  h.feed({ type: 'SYNC_BATCH', afterVersion: 2, latestVersion: 9, entries: [] })
  t.equal(h.state.inner.load().cursor, 5)
})
