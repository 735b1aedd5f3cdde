import { resolveSessionConfig } from '../../src/core/session/config.js'
/**
 * Session edge cases on the simulated network: expiry, realtime deadlines, dead links,
 * idle timeout and keep-alive, graceful close, send() errors, small flow-control
 * windows, stream priorities, garbage datagrams and NAT rebinding. Every scenario is
 * deterministic (seeded); failing assertions name their seed.
 */
import t from 'tap'
import { Endpoint } from '../../src/core/endpoint.js'
import { ErrorCode, UsageError } from '../../src/core/errors.js'
import { checksumProtection } from '../../src/core/protection.js'
import { SeededRng } from '../../src/core/rng.js'
import type { SessionConfig } from '../../src/core/session/config.js'
import type { Session } from '../../src/core/session/session.js'
import { EndpointNode } from '../../src/sim/endpoint-node.js'
import type { ImpairmentConfig } from '../../src/sim/models/index.js'
import { SimNetwork } from '../../src/sim/network.js'
import { SimPair } from '../helpers/sim-pair.js'

const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
const dec = (b: Uint8Array): string => new TextDecoder().decode(b)
const LINK: ImpairmentConfig = { delay: { baseMs: 25 } }
const RTT_MS = 50

const connected = (seed: number, sessionConfig?: Partial<SessionConfig>, up: ImpairmentConfig = LINK, down: ImpairmentConfig = LINK): SimPair => {
  const pair = new SimPair({ seed, up, down, sessionConfig })
  if (!pair.connect()) throw new Error(`seed ${seed}: no connection`)
  return pair
}

/** Queue from the client when it no longer lives at 'client' (after a rebinding). */
const clientSendFrom = (pair: SimPair, address: string, streamId: number, data: Uint8Array): number => {
  const seq = pair.clientSession.send(pair.net.nowMs, streamId, data)
  pair.client.wake(pair.clientSession)
  pair.net.nodeWake(address)
  return seq
}

const recvConsumed = (s: Session, streamId: number): number => s.recvStreams?.get(streamId)?.credit?.consumedBytes ?? -1
const sendCharged = (s: Session, streamId: number): number => s.sendStream(streamId).credit?.chargedBytes ?? -1

t.test('an expired message is reported and skipped; later messages on the ordered stream still arrive', async (t) => {
  const seed = 1
  const pair = connected(seed)
  const t0 = pair.net.nowMs
  pair.net.setLink('client', 'server', { ...LINK, blocked: true })
  pair.clientSend(0, enc('doomed'), t0 + 200)
  pair.clientSend(0, enc('later'))
  pair.net.at(t0 + 500, () => pair.net.setLink('client', 'server', LINK))
  pair.net.runUntil({ untilMs: t0 + 10_000, predicate: () => pair.atServer.length === 1 })
  const expired = pair.eventsOf('client', 'message_expired')
  t.equal(expired.length, 1, `seed ${seed}: one message_expired`)
  t.same(expired[0]?.event, { type: 'message_expired', streamId: 0, seq: 0 })
  t.equal(expired[0]?.atMs, t0 + 200, 'reported at its expiry time')
  t.same(pair.atServer.map((m) => [m.seq, dec(m.data)]), [[1, 'later']], 'the receiver skipped seq 0')
  t.equal(pair.clientSession.stats.messagesExpired, 1)
  pair.net.runUntil({ untilMs: pair.net.nowMs + 2000 })
  t.equal(recvConsumed(pair.serverSession!, 0), sendCharged(pair.clientSession, 0), 'flow-control books balance after the ABANDON')
  t.equal(pair.clientSession.debugSizes().liveSendMessages, 0)
})

t.test('a message that expires before it was ever sent is skipped; its ABANDON costs nothing', async (t) => {
  const seed = 2
  const link: ImpairmentConfig = { ...LINK, rateBitsPerSecond: 1_000_000 }
  const pair = connected(seed, undefined, link, link)
  const t0 = pair.net.nowMs
  pair.clientSend(0, new Uint8Array(200_000)) // 1.6 s on this link: the next message waits behind it
  pair.clientSend(0, enc('short-lived'), t0 + 100)
  pair.clientSend(0, enc('patient'))
  pair.net.runUntil({ untilMs: t0 + 30_000, predicate: () => pair.atServer.length === 2 })
  t.same(pair.atServer.map((m) => [m.seq, m.data.length]), [[0, 200_000], [2, 7]], `seed ${seed}: seq 1 skipped`)
  t.same(pair.eventsOf('client', 'message_expired').map((e) => e.atMs - t0), [100])
  pair.net.runUntil({ untilMs: pair.net.nowMs + 2000 })
  t.equal(sendCharged(pair.clientSession, 0), 200_000 + 7 + 2 * 32, 'the never-sent message was never charged')
  t.equal(recvConsumed(pair.serverSession!, 0), sendCharged(pair.clientSession, 0), 'books balance')
})

t.test('realtime messages past their deadline are not retransmitted', async (t) => {
  const seed = 3
  const pair = connected(seed)
  const t0 = pair.net.nowMs
  const deadlineMs = pair.clientSession.config.realtimeDeadlineMs
  pair.net.setLink('client', 'server', { ...LINK, blocked: true })
  pair.clientSend(2, new Uint8Array(300).fill(9))
  let retxAtDeadline = -1
  pair.net.at(t0 + deadlineMs, () => {
    retxAtDeadline = pair.clientSession.stats.fragmentsRetransmitted
  })
  pair.net.at(t0 + 1000, () => pair.net.setLink('client', 'server', LINK))
  pair.net.runUntil({ untilMs: t0 + 4000 })
  t.same(
    pair.eventsOf('client', 'message_expired').map((e) => [e.atMs - t0, (e.event as { streamId: number }).streamId]),
    [[deadlineMs, 2]],
    `seed ${seed}: expired at the realtime deadline`,
  )
  t.ok(retxAtDeadline >= 0)
  t.equal(pair.clientSession.stats.fragmentsRetransmitted, retxAtDeadline, 'no retransmission after the deadline')
  t.equal(pair.atServer.length, 0, 'the late voice frame never arrives')
  t.equal(pair.clientSession.isEstablished, true)
})

t.test('dead link: both sides report dead_link and close when the link is cut', async (t) => {
  for (const deadLinkTimeoutMs of [5000, 20_000]) {
    const seed = 4
    const pair = connected(seed, { deadLinkTimeoutMs })
    const t0 = pair.net.nowMs
    pair.net.setLink('client', 'server', { blocked: true })
    pair.net.setLink('server', 'client', { blocked: true })
    pair.clientSend(0, enc('into the void'))
    pair.serverSend(0, enc('into the void too'))
    const maxPtoMs = pair.clientSession.config.maxPtoMs
    pair.net.runUntil({ untilMs: t0 + deadLinkTimeoutMs + maxPtoMs + 30_000 })
    for (const side of ['client', 'server'] as const) {
      const dead = pair.eventsOf(side, 'dead_link')
      const closed = pair.eventsOf(side, 'closed')
      const where = `seed ${seed} ${side} deadLinkTimeoutMs=${deadLinkTimeoutMs}`
      t.equal(dead.length, 1, `${where}: dead_link once`)
      t.equal(closed.length, 1, `${where}: closed once`)
      if (dead.length === 0 || closed.length === 0) continue
      const silentMs = (dead[0].event as { silentMs: number }).silentMs
      t.ok(silentMs >= deadLinkTimeoutMs, `${where}: not before the timeout (silent ${silentMs.toFixed(0)} ms)`)
      t.ok(dead[0].atMs - t0 <= deadLinkTimeoutMs + maxPtoMs, `${where}: within timeout + one maximal PTO (at ${(dead[0].atMs - t0).toFixed(0)} ms)`)
      t.ok(silentMs <= deadLinkTimeoutMs + 1000, `${where}: detected within 1 s of the timeout (silent ${silentMs.toFixed(0)} ms)`)
      const c = closed[0].event as { code: number; byPeer: boolean }
      t.equal(c.code, ErrorCode.DEAD_LINK)
      t.equal(c.byPeer, false)
    }
    t.equal(pair.clientSession.isClosed, true)
    t.equal(pair.serverSession!.isClosed, true)
    t.equal(pair.client.sessionCount + pair.server.sessionCount, 0, 'endpoints forget closed sessions')
  }
})

t.test('idle timeout closes a silent session on both sides', async (t) => {
  const seed = 5
  const pair = connected(seed, { idleTimeoutMs: 3000 })
  const t0 = pair.net.nowMs
  pair.net.runUntil({ untilMs: t0 + 10_000 })
  for (const side of ['client', 'server'] as const) {
    const closed = pair.eventsOf(side, 'closed')
    t.equal(closed.length, 1, `seed ${seed} ${side}: closed`)
    t.same(closed[0]?.event, { type: 'closed', code: ErrorCode.IDLE_TIMEOUT, reason: 'idle timeout', byPeer: false })
    t.ok(closed[0].atMs - t0 <= 3000 + RTT_MS && closed[0].atMs - t0 >= 3000 - RTT_MS, `${side}: after ~3 s of silence (${closed[0].atMs - t0})`)
  }
  t.equal(pair.client.sessionCount + pair.server.sessionCount, 0)
})

t.test('the smaller idle timeout of the two sides wins', async (t) => {
  const net = new SimNetwork({ seed: 6 })
  const closedAt: Record<string, number> = {}
  const server = new Endpoint<string>({ rng: net.rngFor('server'), server: true, sessionConfig: { idleTimeoutMs: 2000 } })
  const client = new Endpoint<string>({ rng: net.rngFor('client'), server: false, sessionConfig: { idleTimeoutMs: 60_000 } })
  net.addNode('server', new EndpointNode(server, (at, e) => e.event.type === 'closed' && (closedAt.server = at)))
  net.addNode('client', new EndpointNode(client, (at, e) => e.event.type === 'closed' && (closedAt.client = at)))
  net.setDuplexLink('client', 'server', LINK)
  client.connect(0, 'server')
  net.nodeWake('client')
  net.runUntil({ untilMs: 10_000 })
  t.ok(closedAt.server !== undefined && closedAt.server < 3000, `server closed at ${closedAt.server}`)
  t.ok(closedAt.client !== undefined && closedAt.client < 3000, `client closed at ${closedAt.client} (peer advertised 2 s)`)
})

t.test('keepAliveIntervalMs keeps an otherwise idle session alive past the idle timeout', async (t) => {
  const seed = 7
  const pair = connected(seed, { idleTimeoutMs: 3000, keepAliveIntervalMs: 1000 })
  const t0 = pair.net.nowMs
  pair.net.runUntil({ untilMs: t0 + 30_000 })
  t.equal(pair.clientSession.isEstablished, true, `seed ${seed}: client alive after 30 s`)
  t.equal(pair.serverSession!.isEstablished, true, 'server alive after 30 s')
  t.same(pair.eventsOf('client', 'closed'), [])
  t.same(pair.eventsOf('server', 'closed'), [])
  t.ok(pair.clientSession.stats.packetsSent < 200, `keep-alive traffic is modest (${pair.clientSession.stats.packetsSent} packets in 30 s)`)
  pair.clientSend(0, enc('still here'))
  pair.net.runUntil({ untilMs: pair.net.nowMs + 1000, predicate: () => pair.atServer.length === 1 })
  t.equal(pair.atServer.length, 1)
})

t.test('graceful close: the peer gets closed{byPeer: true, code, reason}', async (t) => {
  const seed = 8
  const pair = connected(seed)
  const t0 = pair.net.nowMs
  pair.clientSession.close(pair.net.nowMs, 0x42, 'bye')
  pair.client.wake(pair.clientSession)
  pair.net.nodeWake('client')
  pair.net.runUntil({ untilMs: t0 + 5000 })
  t.same(pair.eventsOf('client', 'closed').map((e) => e.event), [{ type: 'closed', code: 0x42, reason: 'bye', byPeer: false }])
  t.same(pair.eventsOf('server', 'closed').map((e) => e.event), [{ type: 'closed', code: 0x42, reason: 'bye', byPeer: true }])
  t.ok(pair.eventsOf('server', 'closed')[0].atMs - t0 <= RTT_MS, 'within one-way delay (+ slack)')
  t.equal(pair.clientSession.isClosed, true)
  t.equal(pair.serverSession!.isClosed, true)
  t.equal(pair.client.sessionCount + pair.server.sessionCount, 0)
})

t.test('graceful close with the CLOSE lost: the closer answers the peer with CLOSE again', async (t) => {
  const seed = 9
  const pair = connected(seed)
  const t0 = pair.net.nowMs
  pair.net.setLink('client', 'server', { ...LINK, blocked: true })
  pair.clientSession.close(pair.net.nowMs, ErrorCode.NO_ERROR, 'done')
  pair.client.wake(pair.clientSession)
  pair.net.nodeWake('client')
  pair.net.runUntil({ untilMs: t0 + 5 })
  pair.net.setLink('client', 'server', LINK)
  pair.serverSend(0, enc('are you there?'))
  pair.net.runUntil({ untilMs: t0 + 5000 })
  const closed = pair.eventsOf('server', 'closed')
  t.equal(closed.length, 1, `seed ${seed}: server learns of the close`)
  t.same(closed[0]?.event, { type: 'closed', code: ErrorCode.NO_ERROR, reason: 'done', byPeer: true })
})

t.test('send() errors are UsageErrors with the right codes', async (t) => {
  const pair = connected(10, { maxMessageBytes: 10_000, streamWindowBytes: 20_100, sessionWindowBytes: 40_000, maxSendBufferBytes: 25_000 })
  const s = pair.clientSession
  const now = pair.net.nowMs
  const expectCode = (fn: () => unknown, code: number, what: string): void => {
    try {
      fn()
      t.fail(`${what}: no error`)
    } catch (err) {
      t.ok(err instanceof UsageError, `${what}: UsageError`)
      t.equal((err as UsageError).code, code, `${what}: code ${code}`)
    }
  }
  expectCode(() => s.send(now, 0, new Uint8Array(10_001)), ErrorCode.MESSAGE_TOO_LARGE, 'too large')
  t.doesNotThrow(() => s.send(now, 0, new Uint8Array(10_000)), 'exactly the limit is fine')
  for (const id of [3, 7, 63]) expectCode(() => s.send(now, id, enc('x')), ErrorCode.STREAM_LIMIT_ERROR, `stream ${id} (kind 3)`)
  for (const id of [-4, 1.5, Number.NaN]) expectCode(() => s.send(now, id, enc('x')), ErrorCode.STREAM_LIMIT_ERROR, `stream ${id}`)
  expectCode(() => s.send(now, 64, enc('x')), ErrorCode.STREAM_LIMIT_ERROR, 'stream >= peer maxStreams')
  s.send(now, 4, new Uint8Array(10_000))
  expectCode(() => s.send(now, 1, new Uint8Array(5001)), ErrorCode.FLOW_CONTROL_ERROR, 'send buffer full')
  t.doesNotThrow(() => s.send(now, 1, new Uint8Array(5000)), 'up to the buffer size is fine')
  pair.client.wake(s)
  pair.net.nodeWake('client')
  pair.net.runUntil({ untilMs: now + 3000, predicate: () => pair.eventsOf('client', 'message_acked').length === 3 })
  t.doesNotThrow(() => s.send(pair.net.nowMs, 1, new Uint8Array(10_000)), 'acknowledged messages free the send buffer')
  s.close(pair.net.nowMs)
  expectCode(() => s.send(pair.net.nowMs, 0, enc('x')), ErrorCode.APPLICATION_CLOSE, 'closed session')
})

/** 200 messages of 0..10,000 bytes (about 1 MB) alternating between streams 0 and 5. */
const bulkOfMessages = (pair: SimPair): number[] => {
  const sizes: number[] = []
  for (let i = 0; i < 200; i++) {
    const n = (i * 7919) % 10_001
    sizes.push(n)
    pair.clientSend(i % 2 === 0 ? 0 : 5, new Uint8Array(n).fill(i & 0xff))
  }
  return sizes
}

t.test('stream windows much smaller than the data volume still deliver everything, with loss', async (t) => {
  for (const seed of [11, 12]) {
    // The session window equals the transport-parameter default (see the next test for why).
    const cfg = { maxMessageBytes: 10_000, streamWindowBytes: 20_100, sessionWindowBytes: 1 << 20 }
    const pair = connected(seed, cfg, { ...LINK, loss: { model: 'bernoulli', probability: 0.02 } })
    const t0 = pair.net.nowMs
    const sizes = bulkOfMessages(pair)
    const ok = pair.net.runUntil({ untilMs: t0 + 120_000, predicate: () => pair.atServer.length === 200 })
    const total = sizes.reduce((a, b) => a + b, 0)
    t.ok(ok, `seed ${seed}: all 200 messages (${total} bytes, ${(total / 2 / cfg.streamWindowBytes).toFixed(0)}x each stream window) delivered`)
    t.ok(pair.atServer.every((m) => m.data.length === sizes[2 * m.seq + (m.streamId === 5 ? 1 : 0)] && m.data.every((b) => b === m.data[0])), 'intact')
    pair.net.runUntil({ untilMs: pair.net.nowMs + 2000 })
    for (const id of [0, 5]) {
      t.equal(recvConsumed(pair.serverSession!, id), sendCharged(pair.clientSession, id), `seed ${seed}: stream ${id} books balance`)
      t.ok(pair.clientSession.sendStream(id).credit!.maxBytes > 10 * cfg.streamWindowBytes, `seed ${seed}: stream ${id} credit was raised many times`)
    }
  }
})

t.test("the peer's advertised initial credit is obeyed even when smaller than the defaults", async (t) => {
  const cfg = { maxMessageBytes: 10_000, streamWindowBytes: 20_100, sessionWindowBytes: 30_000 }
  const pair = new SimPair({ seed: 20, up: LINK, down: LINK, sessionConfig: cfg })
  pair.clientSession.send(pair.net.nowMs, 0, enc('queued while connecting'))
  t.ok(pair.connect())
  t.equal(pair.clientSession.sessionSendCredit.maxBytes, 30_000, 'client session credit = server sessionWindowBytes')
  t.equal(pair.serverSession!.sessionSendCredit.maxBytes, 30_000, 'server session credit = client sessionWindowBytes')
  t.equal(pair.clientSession.sendStream(0).credit!.maxBytes, 20_100, 'stream opened before the HELLO')
  t.equal(pair.clientSession.sendStream(4).credit!.maxBytes, 20_100, 'stream opened after the HELLO')
})

t.test('a session window much smaller than the data volume, with loss', async (t) => {
  const seed = 11
  const cfg = { maxMessageBytes: 10_000, streamWindowBytes: 20_100, sessionWindowBytes: 30_000 }
  const pair = connected(seed, cfg, { ...LINK, loss: { model: 'bernoulli', probability: 0.02 } })
  const t0 = pair.net.nowMs
  bulkOfMessages(pair)
  pair.net.runUntil({ untilMs: t0 + 120_000, predicate: () => pair.atServer.length === 200 || pair.serverSession!.isClosed })
  t.same(pair.eventsOf('server', 'closed').map((e) => (e.event as { code: number }).code), [], `seed ${seed}: no FLOW_CONTROL_ERROR close`)
  t.equal(pair.atServer.length, 200, 'everything delivered')
})

t.test('flow control: a window must hold two maximal messages', async (t) => {
  t.throws(() => resolveSessionConfig({ maxMessageBytes: 10_000, streamWindowBytes: 10_032, sessionWindowBytes: 10_032 }), /two maxMessageBytes/)
})

t.test('flow control: a maximal message after a small one with the smallest allowed window', async (t) => {
  // resolveSessionConfig accepts streamWindowBytes = 2 * (maxMessageBytes + 32).
  const seed = 12
  const pair = connected(seed, { maxMessageBytes: 10_000, streamWindowBytes: 20_064, sessionWindowBytes: 20_064 })
  const t0 = pair.net.nowMs
  pair.clientSend(0, new Uint8Array(100))
  pair.clientSend(0, new Uint8Array(10_000))
  pair.net.runUntil({ untilMs: t0 + 30_000, predicate: () => pair.atServer.length === 2 })
  t.equal(pair.atServer.length, 2, `seed ${seed}: both delivered`)
})

t.test('a bulk transfer on an unordered stream does not delay chat on stream 0 much', async (t) => {
  // 10 Mbit/s each way, 50 ms RTT, a little jitter (FIFO) so the seeds differ.
  const link: ImpairmentConfig = { delay: { baseMs: RTT_MS / 2 - 2, jitterMs: 4, distribution: 'uniform' }, rateBitsPerSecond: 10_000_000 }
  const measure = (seed: number, bulk: boolean) => {
    const pair = connected(seed, undefined, link, link)
    const t0 = pair.net.nowMs
    if (bulk) for (let i = 0; i < 40; i++) pair.clientSend(1, new Uint8Array(100_000).fill(i))
    const sentAt = new Map<number, number>()
    for (let i = 0; i < 50; i++) {
      pair.net.at(t0 + 50 + i * 60, (now) => sentAt.set(pair.clientSend(0, new Uint8Array(100).fill(i)), now))
    }
    pair.net.runUntil({ untilMs: t0 + 60_000, predicate: () => pair.atServer.length === 50 + (bulk ? 40 : 0) })
    const chat = pair.atServer.filter((m) => m.streamId === 0)
    const latencies = chat.map((m) => m.atMs - sentAt.get(m.seq)!).sort((a, b) => a - b)
    const bulkDoneMs = Math.max(0, ...pair.atServer.filter((m) => m.streamId === 1).map((m) => m.atMs - t0))
    return { latencies, p99: latencies[Math.ceil(latencies.length * 0.99) - 1], bulkDoneMs, chatCount: chat.length }
  }
  for (const seed of [13, 14, 15]) {
    const quiet = measure(seed, false)
    const busy = measure(seed, true)
    t.equal(busy.chatCount, 50, `seed ${seed}: all chat delivered`)
    t.ok(busy.bulkDoneMs > 50 + 49 * 60, `seed ${seed}: bulk (4 MB) still running during the whole chat (done at ${busy.bulkDoneMs.toFixed(0)} ms)`)
    t.ok(quiet.p99 < 3 * RTT_MS, `seed ${seed}: chat p99 alone ${quiet.p99.toFixed(1)} ms`)
    t.ok(busy.p99 < 3 * RTT_MS, `seed ${seed}: chat p99 with bulk ${busy.p99.toFixed(1)} ms < ${3 * RTT_MS} ms`)
  }
})

t.test('garbage datagrams are dropped and counted without closing the session', async (t) => {
  const seed = 15
  const pair = connected(seed)
  const t0 = pair.net.nowMs
  const session = pair.serverSession!
  const rng = new SeededRng(seed)
  const COUNT = 300
  for (let i = 0; i < COUNT; i++) {
    const b = new Uint8Array(1 + (rng.nextU32() % 1400))
    rng.fillBytes(b)
    if (i % 3 === 1 && b.length > 12) {
      b[0] = 0x40 | (b[0] & 0x3f) // short header aimed at the live session
      b.set(session.localCid, 1)
    } else if (i % 3 === 2) b[0] |= 0xc0 // long header form
    pair.net.inject(i % 2 === 0 ? 'client' : 'mallory', 'server', b)
  }
  pair.net.runUntil({ untilMs: t0 + 100 })
  const e = pair.server.stats
  const endpointDrops = e.droppedNotPigeon + e.droppedUnknownSession + e.droppedMalformed + e.droppedTooSmallInitial + e.droppedUnauthenticatedInitial
  const sessionDrops = session.stats.droppedMalformed + session.stats.droppedUndecryptable + session.stats.droppedUnknownConnection
  t.ok(endpointDrops + sessionDrops + e.versionNegotiationsSent >= COUNT, `seed ${seed}: every datagram accounted (${endpointDrops} endpoint, ${sessionDrops} session, ${e.versionNegotiationsSent} VN)`)
  t.ok(session.stats.droppedUndecryptable > 0, 'garbage to the session CID fails the integrity check')
  t.equal(e.sessionsAccepted, 1, 'no session created from garbage')
  t.equal(session.isEstablished, true)
  t.same(pair.eventsOf('server', 'closed'), [])
  pair.clientSend(0, enc('after the storm'))
  pair.serverSend(0, enc('reply'))
  pair.net.runUntil({ untilMs: pair.net.nowMs + 2000, predicate: () => pair.atServer.length === 1 && pair.atClient.length === 1 })
  t.same([pair.atServer.map((m) => dec(m.data)), pair.atClient.map((m) => dec(m.data))], [['after the storm'], ['reply']])
  t.equal(pair.server.stats.addressChanges, 0, 'garbage from another address moves nothing')
})

t.test('NAT rebinding mid-session: the server follows the new address', async (t) => {
  const seed = 16
  const pair = connected(seed)
  const t0 = pair.net.nowMs
  for (let i = 0; i < 5; i++) pair.clientSend(0, enc(`a${i}`))
  pair.net.runUntil({ untilMs: t0 + 500 })
  pair.net.rebind('client', 'client2')
  pair.net.setLink('client2', 'server', LINK)
  pair.net.setLink('server', 'client2', LINK)
  for (let i = 0; i < 5; i++) pair.serverSend(0, enc(`b${i}`)) // first replies go to the old address
  clientSendFrom(pair, 'client2', 0, enc('from the new address'))
  pair.net.runUntil({ untilMs: t0 + 10_000, predicate: () => pair.atClient.length === 5 && pair.atServer.length === 6 })
  t.equal(pair.atServer.length, 6, `seed ${seed}: all client messages arrive`)
  t.same(pair.atClient.map((m) => dec(m.data)), ['b0', 'b1', 'b2', 'b3', 'b4'], 'replies reach the client at its new address')
  t.equal(pair.server.stats.addressChanges, 1)
  t.equal(pair.clientSession.isEstablished && pair.serverSession!.isEstablished, true)
})

t.test('a replayed old packet from another address does not hijack the session', async (t) => {
  const seed = 17
  const pair = connected(seed)
  const captured = pair.captureClientDatagrams()
  // Traffic both ways, so the server's ACKs ride on acknowledged packets and it prunes its ACK ranges.
  for (let i = 0; i < 10; i++) {
    pair.clientSend(0, enc(`a${i}`))
    pair.serverSend(0, enc(`b${i}`))
    pair.net.runUntil({ untilMs: pair.net.nowMs + 100 })
  }
  pair.net.runUntil({ untilMs: pair.net.nowMs + 1000 })
  const old = captured.filter((b) => (b[0] & 0x80) === 0)[3]
  const delivered = pair.atServer.length
  pair.net.inject('mallory', 'server', old) // an attacker replays a packet it saw earlier
  pair.net.runUntil({ untilMs: pair.net.nowMs + 1 })
  t.equal(pair.atServer.length, delivered, 'nothing delivered twice')
  pair.serverSend(0, enc('to the real client'))
  pair.net.runUntil({ untilMs: pair.net.nowMs + 3000, predicate: () => pair.atClient.length === 11 })
  t.equal(pair.server.stats.addressChanges, 0, 'no address change')
  t.equal(pair.atClient.length, 11, 'the real client still gets the reply')
})

t.test('a late packet from the old address after a rebinding does not move the session back', async (t) => {
  const seed = 18
  // The old path is slow, the new one fast: a packet sent just before the rebinding arrives after newer ones.
  const pair = connected(seed, undefined, { delay: { baseMs: 100 } }, LINK)
  pair.net.runUntil({ untilMs: pair.net.nowMs + 500 })
  pair.clientSend(0, enc('old address, slow path'))
  pair.net.runUntil({ untilMs: pair.net.nowMs + 1 })
  pair.net.rebind('client', 'client2')
  pair.net.setLink('client2', 'server', { delay: { baseMs: 5 } })
  pair.net.setLink('server', 'client2', LINK)
  clientSendFrom(pair, 'client2', 0, enc('new address, fast path'))
  pair.net.runUntil({ untilMs: pair.net.nowMs + 3000 })
  t.equal(pair.atServer.length, 2, `seed ${seed}: both messages arrive`)
  t.equal(pair.server.stats.addressChanges, 1, 'one change, to the new address')
})

t.test('messages queued before the handshake when the peer allows smaller datagrams', async (t) => {
  const net = new SimNetwork({ seed: 19 })
  const delivered: number[] = []
  const server = new Endpoint<string>({ rng: net.rngFor('server'), server: true, sessionConfig: { maxDatagramBytes: 1200 }, protection: () => checksumProtection })
  const client = new Endpoint<string>({ rng: net.rngFor('client'), server: false, sessionConfig: { maxDatagramBytes: 1400 }, protection: () => checksumProtection })
  net.addNode('server', new EndpointNode(server, (_at, e) => e.event.type === 'message' && delivered.push(e.event.data.length)))
  net.addNode('client', new EndpointNode(client, () => {}))
  net.setDuplexLink('client', 'server', LINK)
  const s = client.connect(0, 'server')
  s.send(0, 0, new Uint8Array(5000)) // fragments sized for 1400-byte datagrams
  s.send(0, 0, new Uint8Array(1300))
  client.wake(s)
  net.nodeWake('client')
  net.runUntil({ untilMs: 20_000 })
  t.equal(s.isEstablished, true)
  t.same(delivered, [5000, 1300], 'both messages delivered')
})

t.test('realtime messages are capped at what a realtime receiver buffers', async (t) => {
  const pair = connected(21)
  t.throws(() => pair.clientSession.send(pair.net.nowMs, 2, new Uint8Array(300 * 1024)), { code: ErrorCode.MESSAGE_TOO_LARGE })
})
