/**
 * Keepalives at scale, on the simulated network (virtual clock, seeded): each keepalive
 * comes a random fraction of the interval early so sessions do not move in step; a
 * lost keepalive PING is probed no sooner than keepAliveProbeMinMs, one probe at a time,
 * so a stalled server is not answered with a retransmission storm; dead links are still
 * detected, data still gets the usual prompt probes.
 */
import t from 'tap'
import { Endpoint } from '../../src/core/endpoint.js'
import { ErrorCode } from '../../src/core/errors.js'
import type { SessionConfig } from '../../src/core/session/config.js'
import { TraceName, type TraceEvent } from '../../src/core/trace.js'
import { EndpointNode } from '../../src/sim/endpoint-node.js'
import type { ImpairmentConfig } from '../../src/sim/models/index.js'
import { SimNetwork } from '../../src/sim/network.js'
import { SimPair } from '../helpers/sim-pair.js'

const LINK: ImpairmentConfig = { delay: { baseMs: 25 } }
const BLOCKED: ImpairmentConfig = { ...LINK, blocked: true }
const enc = (s: string): Uint8Array => new TextEncoder().encode(s)

/** Times of the ack-eliciting packets each session sent, by trace id. */
const ackElicitingSends = (): { sink: (e: TraceEvent) => void; times: Map<string, number[]> } => {
  const times = new Map<string, number[]>()
  const sink = (e: TraceEvent): void => {
    if (e.name !== TraceName.packetSent || (e.data as { ack_eliciting?: boolean }).ack_eliciting !== true || e.session === undefined) return
    let list = times.get(e.session)
    if (list === undefined) times.set(e.session, (list = []))
    list.push(e.time)
  }
  return { sink, times }
}

const pairWith = (seed: number, sessionConfig: Partial<SessionConfig>): { pair: SimPair; sends: () => number[] } => {
  const rec = ackElicitingSends()
  const pair = new SimPair({ seed, up: LINK, down: LINK, sessionConfig, trace: rec.sink })
  if (!pair.connect()) throw new Error(`seed ${seed}: no connection`)
  return { pair, sends: () => rec.times.get(pair.clientSession.traceId) ?? [] }
}

const gapsAfter = (times: number[], fromMs: number): number[] => {
  const after = times.filter((x) => x >= fromMs)
  return after.slice(1).map((x, i) => x - after[i])
}

t.test('keepalives come a random fraction of the interval early, never late', async (t) => {
  const seed = 31
  const { pair, sends } = pairWith(seed, { keepAliveIntervalMs: 1000, keepAliveJitterFraction: 0.2 })
  const t0 = pair.net.nowMs
  pair.net.runUntil({ untilMs: t0 + 30_000 })
  const gaps = gapsAfter(sends(), t0)
  t.ok(gaps.length >= 25, `seed ${seed}: ${gaps.length} keepalives in 30 s`)
  t.ok(
    gaps.every((g) => g >= 800 && g <= 1000),
    `seed ${seed}: every gap within [800, 1000] ms (${Math.min(...gaps)}..${Math.max(...gaps)})`,
  )
  t.ok(new Set(gaps).size >= 10, `seed ${seed}: the gaps vary (${new Set(gaps).size} distinct)`)
  t.equal(pair.clientSession.isEstablished, true)

  const fixed = pairWith(seed, { keepAliveIntervalMs: 1000, keepAliveJitterFraction: 0 })
  const f0 = fixed.pair.net.nowMs
  fixed.pair.net.runUntil({ untilMs: f0 + 10_000 })
  t.same([...new Set(gapsAfter(fixed.sends(), f0))], [1000], 'keepAliveJitterFraction 0: exactly on the interval')
})

/** `count` clients that connect to one server at the same instant. */
const crowd = (seed: number, count: number, sessionConfig: Partial<SessionConfig>) => {
  const net = new SimNetwork({ seed })
  const rec = ackElicitingSends()
  const server = new Endpoint<string>({ rng: net.rngFor('server'), server: true, sessionConfig })
  net.addNode('server', new EndpointNode(server, () => {}))
  const clients: Array<{ address: string; endpoint: Endpoint<string>; session: ReturnType<Endpoint<string>['connect']>; deadLinks: number }> = []
  for (let i = 0; i < count; i++) {
    const address = `c${i}`
    const endpoint = new Endpoint<string>({ rng: net.rngFor(address), server: false, sessionConfig, trace: rec.sink })
    const client = { address, endpoint, session: endpoint.connect(net.nowMs, 'server'), deadLinks: 0 }
    net.addNode(address, new EndpointNode(endpoint, (_at, e) => e.event.type === 'dead_link' && client.deadLinks++))
    net.setDuplexLink(address, 'server', LINK)
    net.nodeWake(address)
    clients.push(client)
  }
  net.runUntil({ untilMs: 5_000, predicate: () => clients.every((c) => c.session.isEstablished) })
  const sendsBetween = (fromMs: number, toMs: number): number[] => {
    const all: number[] = []
    for (const list of rec.times.values()) for (const x of list) if (x >= fromMs && x < toMs) all.push(x)
    return all.sort((a, b) => a - b)
  }
  return { net, server, clients, sendsBetween }
}

t.test('sessions that started together drift apart instead of sending keepalives in step', async (t) => {
  const seed = 32
  const config = { keepAliveIntervalMs: 1000 }
  const inStep = crowd(seed, 50, { ...config, keepAliveJitterFraction: 0 })
  const jittered = crowd(seed, 50, config)
  for (const c of [inStep, jittered]) c.net.runUntil({ untilMs: 20_000 })
  // The busiest 20 ms of the last second: all 50 at once without jitter.
  const busiest = (c: typeof inStep): number => {
    const sends = c.sendsBetween(19_000, 20_000)
    let max = 0
    for (let i = 0, j = 0; i < sends.length; i++) {
      while (sends[i] - sends[j] >= 20) j++
      max = Math.max(max, i - j + 1)
    }
    return max
  }
  t.equal(busiest(inStep), 50, 'without jitter every session pings in the same instant')
  t.ok(busiest(jittered) <= 10, `seed ${seed}: with jitter at most ${busiest(jittered)} of 50 in any 20 ms`)
  t.ok(jittered.clients.every((c) => c.session.isEstablished), 'all alive')
})

t.test('a lost keepalive is probed after keepAliveProbeMinMs, one probe at a time, with back-off', async (t) => {
  const seed = 33
  const { pair, sends } = pairWith(seed, { keepAliveIntervalMs: 1000, keepAliveJitterFraction: 0, keepAliveProbeMinMs: 1000 })
  const t0 = pair.net.nowMs
  pair.net.runUntil({ untilMs: t0 + 3500 })
  pair.net.setLink('client', 'server', BLOCKED)
  const blockedAt = pair.net.nowMs
  pair.net.runUntil({ untilMs: blockedAt + 10_000 })
  const during = sends().filter((x) => x >= blockedAt)
  const gaps = during.slice(1).map((x, i) => x - during[i])
  t.ok(during.length >= 3, `seed ${seed}: the keepalive and its probes (${during.length})`)
  t.ok(gaps.length > 0 && gaps[0] >= 1000, `first probe no sooner than 1 s after the lost keepalive (${gaps[0]} ms)`)
  t.ok(gaps.every((g, i) => i === 0 || g > gaps[i - 1]), `probes back off (${gaps.join(', ')} ms)`)
  t.ok(during.length <= 6, `at most 6 packets in 10 s of silence (${during.length})`)
  // The link comes back: the next probe gets through, nothing died.
  pair.net.setLink('client', 'server', LINK)
  pair.net.runUntil({ untilMs: pair.net.nowMs + 6000 })
  t.equal(pair.clientSession.isEstablished, true, 'still established after the outage')
  t.same(pair.eventsOf('client', 'dead_link'), [])
  t.equal(pair.clientSession.keepAliveProbing, false, 'the probe was acknowledged')
})

t.test('the floor is capped by the dead-link timeout: a short dead-link timeout still gets probes first', async (t) => {
  const seed = 34
  const { pair, sends } = pairWith(seed, { keepAliveIntervalMs: 300, keepAliveJitterFraction: 0, deadLinkTimeoutMs: 1000, maxPtoMs: 250 })
  pair.net.runUntil({ untilMs: pair.net.nowMs + 1000 })
  pair.net.setLink('client', 'server', BLOCKED)
  pair.net.setLink('server', 'client', BLOCKED)
  const blockedAt = pair.net.nowMs
  pair.net.runUntil({ untilMs: blockedAt + 2000 })
  const during = sends().filter((x) => x >= blockedAt)
  const gaps = during.slice(1).map((x, i) => x - during[i])
  t.ok(gaps.length >= 2, `seed ${seed}: ${gaps.length} probes before the link is declared dead`)
  t.ok(gaps[0] >= 125, `first probe after the floor of deadLinkTimeoutMs / 8 (${gaps[0]} ms)`)
  t.equal(pair.eventsOf('client', 'dead_link').length, 1, 'then dead_link')
})

t.test('dead link: a client with only keepalives in flight still detects a cut link in time', async (t) => {
  const seed = 35
  const deadLinkTimeoutMs = 10_000
  const { pair } = pairWith(seed, { keepAliveIntervalMs: 5000, deadLinkTimeoutMs })
  pair.net.runUntil({ untilMs: pair.net.nowMs + 2000 })
  pair.net.setLink('client', 'server', BLOCKED)
  pair.net.setLink('server', 'client', BLOCKED)
  const t0 = pair.net.nowMs
  pair.net.runUntil({ untilMs: t0 + 30_000 })
  const dead = pair.eventsOf('client', 'dead_link')
  t.equal(dead.length, 1, `seed ${seed}: dead_link once`)
  const silentMs = (dead[0]?.event as { silentMs: number } | undefined)?.silentMs ?? -1
  t.ok(silentMs >= deadLinkTimeoutMs && silentMs <= deadLinkTimeoutMs + 1000, `after ${silentMs} ms of silence`)
  t.same(pair.eventsOf('client', 'closed').map((e) => (e.event as { code: number }).code), [ErrorCode.DEAD_LINK])
})

t.test('data sent while a keepalive is outstanding is probed promptly again', async (t) => {
  const seed = 36
  const { pair, sends } = pairWith(seed, { keepAliveIntervalMs: 1000, keepAliveJitterFraction: 0, keepAliveProbeMinMs: 2000 })
  // Block just before the next keepalive: it is lost and the session is in keepalive probing.
  const keepAliveAt = sends()[sends().length - 1] + 1000
  pair.net.runUntil({ untilMs: keepAliveAt - 10 })
  pair.net.setLink('client', 'server', BLOCKED)
  pair.net.runUntil({ untilMs: keepAliveAt + 100 })
  t.equal(pair.clientSession.keepAliveProbing, true, 'the keepalive is in flight')
  pair.clientSend(0, enc('hello'))
  const sentAt = pair.net.nowMs
  pair.net.runUntil({ untilMs: sentAt + 1 })
  t.equal(pair.clientSession.keepAliveProbing, false, 'a message in flight ends keepalive probing')
  pair.net.runUntil({ untilMs: sentAt + 1000 })
  const after = sends().filter((x) => x > sentAt)
  t.ok(after.length >= 2 && after[0] - sentAt < 500, `seed ${seed}: the message is probed within the usual PTO (${after[0] - sentAt} ms)`)
  pair.net.setLink('client', 'server', LINK)
  pair.net.runUntil({ untilMs: pair.net.nowMs + 10_000, predicate: () => pair.atServer.length === 1 })
  t.equal(pair.atServer.length, 1, 'delivered once the link is back')
})

t.test('a 2 s server stall costs each idle client at most two datagrams, not a storm', async (t) => {
  const seed = 37
  const count = 100
  const c = crowd(seed, count, { keepAliveIntervalMs: 1000, deadLinkTimeoutMs: 10_000 })
  c.net.runUntil({ untilMs: 10_000 })
  // The server stops reading (a long GC, an fsync): everything sent to it is lost.
  for (const cl of c.clients) c.net.setLink(cl.address, 'server', BLOCKED)
  c.net.runUntil({ untilMs: 12_000 })
  for (const cl of c.clients) c.net.setLink(cl.address, 'server', LINK)
  const duringStall = c.sendsBetween(10_000, 12_000).length
  t.ok(duringStall <= 2 * count, `seed ${seed}: ${duringStall} datagrams from ${count} clients during the stall`)
  c.net.runUntil({ untilMs: 30_000 })
  t.ok(c.clients.every((cl) => cl.session.isEstablished && cl.deadLinks === 0), 'every session survives the stall')
  t.equal(c.server.sessionCount, count)
})
