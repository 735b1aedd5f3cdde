import t from 'tap'
import { SimLivelockError, SimNetwork, type SimAddress, type SimNode, type SimTraceEvent } from '../../src/sim/network.js'
import { binomialSigma, within } from './helpers.js'

type Outgoing = { bytes: Uint8Array; to: SimAddress }

/** Encodes (seq, sentAtMs) in a 64-byte datagram. */
const ping = (seq: number, sentAtMs: number): Uint8Array => {
  const b = new Uint8Array(64)
  const v = new DataView(b.buffer)
  v.setUint32(0, seq)
  v.setFloat64(4, sentAtMs)
  return b
}
const readPing = (b: Uint8Array) => {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength)
  return { seq: v.getUint32(0), sentAtMs: v.getFloat64(4) }
}

/** Timer-driven client: one ping every intervalMs, records the echoes. */
class Pinger implements SimNode {
  sent = 0
  echoes: { seq: number; rttMs: number; atMs: number; from: SimAddress }[] = []
  timeoutsAt: number[] = []
  private nextAtMs: number
  private outbox: Outgoing[] = []
  constructor(private readonly opts: { peer: SimAddress; count: number; intervalMs: number; startMs: number }) {
    this.nextAtMs = opts.startMs
  }
  handleDatagram(nowMs: number, bytes: Uint8Array, from: SimAddress): void {
    const { seq, sentAtMs } = readPing(bytes)
    this.echoes.push({ seq, rttMs: nowMs - sentAtMs, atMs: nowMs, from })
  }
  handleTimeout(nowMs: number): void {
    this.timeoutsAt.push(nowMs)
    this.outbox.push({ bytes: ping(this.sent++, nowMs), to: this.opts.peer })
    this.nextAtMs += this.opts.intervalMs
  }
  pollTransmit(): Outgoing | undefined {
    return this.outbox.shift()
  }
  pollTimeout(): number | undefined {
    return this.sent < this.opts.count ? this.nextAtMs : undefined
  }
}

/** Sends every datagram back where it came from. */
class Echo implements SimNode {
  received: { atMs: number; from: SimAddress; seq: number }[] = []
  private outbox: Outgoing[] = []
  handleDatagram(nowMs: number, bytes: Uint8Array, from: SimAddress): void {
    this.received.push({ atMs: nowMs, from, seq: readPing(bytes).seq })
    this.outbox.push({ bytes, to: from })
  }
  handleTimeout(): void {}
  pollTransmit(): Outgoing | undefined {
    return this.outbox.shift()
  }
  pollTimeout(): undefined {
    return undefined
  }
}

/** Sends only when the test tells it to (app-driven), then needs nodeWake. */
class Manual implements SimNode {
  received: { atMs: number; from: SimAddress; bytes: Uint8Array }[] = []
  deadlineMs: number | undefined
  timeoutsAt: number[] = []
  private outbox: Outgoing[] = []
  send(to: SimAddress, bytes: Uint8Array): void {
    this.outbox.push({ to, bytes })
  }
  handleDatagram(nowMs: number, bytes: Uint8Array, from: SimAddress): void {
    this.received.push({ atMs: nowMs, from, bytes })
  }
  handleTimeout(nowMs: number): void {
    this.timeoutsAt.push(nowMs)
    this.deadlineMs = undefined
  }
  pollTransmit(): Outgoing | undefined {
    return this.outbox.shift()
  }
  pollTimeout(): number | undefined {
    return this.deadlineMs
  }
}

t.test('two echo nodes over lossy links: loss rate, exact virtual RTT, timers on time', async (t) => {
  const seed = 101
  const sim = new SimNetwork({ seed })
  const count = 4000
  const client = new Pinger({ peer: 'server', count, intervalMs: 10, startMs: 0 })
  const server = new Echo()
  sim.setDuplexLink('client', 'server', { loss: { model: 'bernoulli', probability: 0.1 }, delay: { baseMs: 20 } })
  sim.addNode('client', client)
  sim.addNode('server', server)
  t.equal(sim.runUntil({}), true, 'runs until nothing is scheduled')
  t.equal(client.sent, count)
  t.same(client.timeoutsAt, Array.from({ length: count }, (_, i) => i * 10), 'each timeout fires exactly at its deadline')
  within(t, { observed: client.echoes.length / count, expected: 0.81, sigma: binomialSigma(0.81, count), what: 'round-trip success', seed })
  t.ok(client.echoes.every((e) => e.rttMs === 40 && e.from === 'server'), 'every echo took exactly 2 x 20 ms of virtual time')
  const lastEcho = client.echoes[client.echoes.length - 1]
  t.equal(sim.nowMs, lastEcho.atMs, 'the clock stopped at the last event')
  const s = sim.stats
  t.equal(s.sent, count + server.received.length)
  t.equal(s.delivered, server.received.length + client.echoes.length)
  t.equal(s.dropped, s.droppedByReason.loss)
  t.equal(s.sent, s.delivered + s.dropped)
  t.equal(s.timeouts, count)
})

t.test('virtual time: untilMs, fractional deadlines, past deadlines, startMs', async (t) => {
  const sim = new SimNetwork({ seed: 1, startMs: 1000 })
  t.equal(sim.nowMs, 1000)
  t.equal(sim.runUntil({ untilMs: 5000 }), true)
  t.equal(sim.nowMs, 5000, 'an idle network still advances to untilMs')
  const node = new Manual()
  node.deadlineMs = 6234.5
  sim.addNode('n', node)
  sim.runUntil({ untilMs: 6000 })
  t.same(node.timeoutsAt, [], 'not yet')
  t.equal(sim.nowMs, 6000)
  sim.runUntil({ untilMs: 7000 })
  t.same(node.timeoutsAt, [6234.5], 'fired at the fractional deadline')
  t.equal(sim.nowMs, 7000)
  node.deadlineMs = 10 // in the past
  sim.nodeWake('n')
  sim.runUntil({})
  t.same(node.timeoutsAt, [6234.5, 7000], 'a past deadline fires at the current time')
  t.equal(sim.step(), false, 'nothing left')
})

t.test('nodeWake drains app-queued datagrams; ties run in insertion order', async (t) => {
  const sim = new SimNetwork({ seed: 2 })
  const a = new Manual()
  const b = new Manual()
  sim.addNode('a', a)
  sim.addNode('b', b)
  sim.setLink('a', 'b', { delay: { baseMs: 25 } })
  const order: string[] = []
  sim.at(100, (now) => {
    order.push(`first@${now}`)
    a.send('b', new Uint8Array([1]))
    a.send('b', new Uint8Array([2]))
    sim.nodeWake('a')
  })
  sim.at(100, () => order.push('second'))
  sim.at(50, () => {
    a.send('b', new Uint8Array([0])) // no wake: stays queued until the node is serviced
  })
  sim.runUntil({})
  t.same(order, ['first@100', 'second'])
  t.same(
    b.received.map((r) => [r.atMs, r.bytes[0]]),
    [
      [125, 0],
      [125, 1],
      [125, 2],
    ],
    'drained at t=100 in queue order, 25 ms link',
  )
  b.send('a', new Uint8Array([9]))
  sim.nodeWake('b')
  const before = sim.nowMs
  sim.runUntil({})
  t.same(a.received.map((r) => [r.atMs, r.from]), [[before, 'b']], 'an unlinked direction is a zero-delay wire')
})

t.test('runUntil predicate', async (t) => {
  const sim = new SimNetwork({ seed: 3 })
  const client = new Pinger({ peer: 'server', count: 100, intervalMs: 10, startMs: 0 })
  sim.addNode('client', client)
  sim.addNode('server', new Echo())
  sim.setDuplexLink('client', 'server', { delay: { baseMs: 15 } })
  t.equal(sim.runUntil({ predicate: () => client.echoes.length >= 10 }), true)
  t.equal(client.echoes.length, 10, 'stopped right at the 10th echo')
  t.equal(sim.nowMs, 9 * 10 + 30)
  t.equal(sim.runUntil({ predicate: () => client.echoes.length >= 1000, untilMs: 500 }), false, 'not reached by untilMs')
  t.equal(sim.nowMs, 500)
  t.equal(sim.runUntil({ predicate: () => client.echoes.length >= 1000 }), false, 'never reached, network quiescent')
  t.equal(client.echoes.length, 100)
})

t.test('maxEvents guard names the seed', async (t) => {
  const seed = 4242
  const sim = new SimNetwork({ seed })
  const spinner = new Manual()
  spinner.pollTimeout = () => 0 // always due: a livelock
  sim.addNode('spin', spinner)
  let caught: unknown
  try {
    sim.runUntil({ maxEvents: 1000 })
  } catch (err) {
    caught = err
  }
  t.ok(caught instanceof SimLivelockError)
  t.match((caught as Error).message, /seed=4242/)
  t.match((caught as Error).message, /maxEvents=1000/)
  t.equal((caught as SimLivelockError).seed, seed)
})

/** A full run with every impairment; returns its trace as JSON lines. */
function tracedRun(seed: number): { trace: string; echoes: number } {
  const lines: string[] = []
  const sim = new SimNetwork({ seed, onEvent: (e: SimTraceEvent) => lines.push(JSON.stringify(e)) })
  const client = new Pinger({ peer: 'server', count: 2000, intervalMs: 5, startMs: 0 })
  sim.setDuplexLink('client', 'server', {
    loss: { model: 'gilbert-elliott', p: 0.02, r: 0.3 },
    delay: { baseMs: 30, jitterMs: 10, distribution: 'normal', reorder: true },
    duplicateProbability: 0.02,
    corruptProbability: 0.01,
    rateBitsPerSecond: 90_000, // a little below the offered 102 kbit/s: the queue fills
    queueBytes: 2000,
  })
  sim.addNode('client', client)
  sim.addNode('server', new Echo())
  sim.runUntil({})
  return { trace: lines.join('\n'), echoes: client.echoes.length }
}

t.test('determinism of a whole run', async (t) => {
  const a = tracedRun(7)
  const b = tracedRun(7)
  t.ok(a.trace.length > 100_000, 'a substantial trace')
  t.ok(a.trace === b.trace, 'same seed: identical traces')
  t.equal(a.echoes, b.echoes)
  t.ok(a.trace !== tracedRun(8).trace, 'different seed: different trace')
  for (const name of ['sim:packet_sent', 'sim:packet_delivered', 'sim:packet_dropped', '"duplicate":true', '"corrupted":true', '"reason":"queue"', '"reason":"loss"']) {
    t.ok(a.trace.includes(name), `trace has ${name}`)
  }
})

t.test('trace events', async (t) => {
  const events: SimTraceEvent[] = []
  const sim = new SimNetwork({ seed: 5, onEvent: (e) => events.push(e) })
  const a = new Manual()
  sim.addNode('a', a)
  sim.addNode('b', new Manual())
  sim.setLink('a', 'b', { delay: { baseMs: 10 }, mtuBytes: 3 })
  a.send('b', new Uint8Array(3))
  a.send('b', new Uint8Array(4))
  sim.nodeWake('a')
  sim.runUntil({})
  t.same(events, [
    { time: 0, name: 'sim:packet_sent', data: { id: 0, from: 'a', to: 'b', size: 3, sentAtMs: 0 } },
    { time: 0, name: 'sim:packet_sent', data: { id: 1, from: 'a', to: 'b', size: 4, sentAtMs: 0 } },
    { time: 0, name: 'sim:packet_dropped', data: { id: 1, from: 'a', to: 'b', size: 4, sentAtMs: 0, reason: 'mtu' } },
    { time: 10, name: 'sim:packet_delivered', data: { id: 0, from: 'a', to: 'b', size: 3, sentAtMs: 0 } },
  ])
})

t.test('NAT rebinding: new source address, old address unreachable', async (t) => {
  const sim = new SimNetwork({ seed: 6 })
  const client = new Manual()
  const server = new Echo()
  sim.addNode('client-1', client)
  sim.addNode('server', server)
  sim.setDuplexLink('client-1', 'server', { delay: { baseMs: 20 } })
  client.send('server', ping(1, 0))
  sim.nodeWake('client-1')
  sim.runUntil({ untilMs: 30 }) // the echo is now in flight towards client-1
  sim.rebind('client-1', 'client-2')
  t.ok(sim.hasNode('client-2') && !sim.hasNode('client-1'))
  sim.runUntil({})
  t.equal(client.received.length, 0, 'the in-flight reply to the old address is lost')
  t.equal(sim.stats.droppedByReason.no_route, 1)
  client.send('server', ping(2, sim.nowMs))
  sim.nodeWake('client-2')
  sim.runUntil({})
  t.same(
    server.received.map((r) => [r.from, r.seq]),
    [
      ['client-1', 1],
      ['client-2', 2],
    ],
    'the server sees the new address',
  )
  t.equal(client.received.length, 1, 'replies to the new address arrive (unlinked: zero delay)')
  t.throws(() => sim.rebind('nobody', 'x'), /no node at 'nobody'/)
  t.throws(() => sim.addNode('server', new Echo()), /already has a node/)
})

t.test('setLink reconfigures in place; removeNode; node errors carry the seed', async (t) => {
  const sim = new SimNetwork({ seed: 9 })
  const l1 = sim.setLink('a', 'b', { delay: { baseMs: 5 } })
  const l2 = sim.setLink('a', 'b', { blocked: true })
  t.equal(l1, l2, 'same LinkImpairment')
  t.equal(sim.getLink('a', 'b'), l1)
  t.equal(sim.getLink('b', 'a'), undefined)
  t.same(l1.config, { blocked: true })

  const a = new Manual()
  sim.addNode('a', a)
  sim.addNode('b', new Manual())
  a.deadlineMs = 50
  sim.removeNode('a')
  sim.runUntil({ untilMs: 100 })
  t.same(a.timeoutsAt, [], 'a removed node gets no timeouts')

  const boom = new Manual()
  boom.handleDatagram = () => {
    throw new Error('bad frame')
  }
  sim.addNode('boom', boom)
  sim.inject('x', 'boom', new Uint8Array(1))
  t.throws(() => sim.runUntil({}), /seed=9: node 'boom' threw at t=100 ms: bad frame/)
})

t.test('links draw from streams derived per (seed, from, to)', async (t) => {
  const outcome = (extraLink: boolean): string => {
    const sim = new SimNetwork({ seed: 10 })
    if (extraLink) sim.setLink('c', 'd', { loss: { model: 'bernoulli', probability: 0.5 } })
    const link = sim.setLink('a', 'b', { loss: { model: 'bernoulli', probability: 0.5 } })
    return Array.from({ length: 200 }, (_, i) => link.offer(i, new Uint8Array(1)).dropped ?? '-').join(',')
  }
  t.equal(outcome(false), outcome(true), 'adding another link does not change this one')
  const r1 = new SimNetwork({ seed: 10 }).rngFor('client')
  const r2 = new SimNetwork({ seed: 10 }).rngFor('client')
  t.equal(r1.nextU32(), r2.nextU32(), 'rngFor is stable per label and seed')
})
