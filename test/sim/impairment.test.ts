import t from 'tap'
import { SeededRng } from '../../src/core/rng.js'
import {
  LinkImpairment,
  type Delivery,
  type ImpairmentConfig,
  type ImpairmentStats,
  type OfferResult,
} from '../../src/sim/models/impairment.js'
import { binomialSigma, expectConfigError, within } from './helpers.js'

const packet = (i: number, size = 100): Uint8Array => {
  const b = new Uint8Array(size)
  for (let j = 0; j < size; j++) b[j] = (i * 31 + j * 7) & 0xff
  return b
}

/** Offers n packets, one every intervalMs; returns the results with their offer times. */
function run(link: LinkImpairment, n: number, opts: { intervalMs?: number; size?: (i: number) => number } = {}) {
  const out: { nowMs: number; input: Uint8Array; result: OfferResult }[] = []
  for (let i = 0; i < n; i++) {
    const nowMs = i * (opts.intervalMs ?? 1)
    const input = packet(i, opts.size ? opts.size(i) : 100)
    out.push({ nowMs, input, result: link.offer(nowMs, input) })
  }
  return out
}

const deliveriesOf = (results: { result: OfferResult }[]): Delivery[] =>
  results.flatMap(({ result }) => (result.dropped === undefined ? result.deliveries : []))

/** A compact, exact fingerprint of a run (tap's deep compare is slow on 10k buffers). */
const fingerprint = (results: { nowMs: number; result: OfferResult }[]): string =>
  results
    .map(({ nowMs, result }) =>
      result.dropped !== undefined
        ? `${nowMs}:${result.dropped}`
        : `${nowMs}:` +
          result.deliveries.map((d) => `${d.atMs}/${d.duplicate ? 'D' : ''}${d.corrupted ? 'C' : ''}/${Buffer.from(d.bytes).toString('hex')}`).join(','),
    )
    .join('\n')

const dropTotal = (s: ImpairmentStats): number => Object.values(s.dropped).reduce((a, b) => a + b, 0)

const popcount = (x: number): number => {
  let c = 0
  for (; x; x &= x - 1) c++
  return c
}

t.test('no config: lossless, zero delay, fresh buffers', async (t) => {
  const link = new LinkImpairment({}, new SeededRng(1))
  const input = packet(1)
  const r = link.offer(5, input)
  t.equal(r.dropped, undefined)
  if (r.dropped !== undefined) return
  t.equal(r.deliveries.length, 1)
  t.same(r.deliveries[0], { atMs: 5, bytes: input, duplicate: false, corrupted: false })
  t.not(r.deliveries[0].bytes, input, 'a copy, not the caller buffer')
})

t.test('bernoulli loss through the pipeline', async (t) => {
  const seed = 2
  const n = 20_000
  const link = new LinkImpairment({ loss: { model: 'bernoulli', probability: 0.2 } }, new SeededRng(seed))
  run(link, n)
  within(t, { observed: link.stats.dropped.loss / n, expected: 0.2, sigma: binomialSigma(0.2, n), what: 'loss rate', seed })
})

t.test('FIFO with reorder false, reordering with reorder true', async (t) => {
  const n = 10_000
  const delay = { baseMs: 50, jitterMs: 20, distribution: 'normal' } as const
  const fifo = deliveriesOf(run(new LinkImpairment({ delay }, new SeededRng(3)), n))
  t.equal(fifo.length, n)
  t.ok(fifo.every((d, i) => i === 0 || d.atMs >= fifo[i - 1].atMs), 'deliveries never overtake (FIFO)')
  const free = deliveriesOf(run(new LinkImpairment({ delay: { ...delay, reorder: true } }, new SeededRng(3)), n))
  let inversions = 0
  for (let i = 1; i < free.length; i++) if (free[i].atMs < free[i - 1].atMs) inversions++
  t.ok(inversions > n / 10, `reorder true: ${inversions} adjacent inversions`)
})

t.test('duplication rate and duplicate copies', async (t) => {
  const seed = 4
  const n = 20_000
  const link = new LinkImpairment({ duplicateProbability: 0.05 }, new SeededRng(seed))
  const results = run(link, n)
  within(t, { observed: link.stats.duplicated / n, expected: 0.05, sigma: binomialSigma(0.05, n), what: 'duplicate rate', seed })
  let checked = 0
  for (const { input, result } of results) {
    if (result.dropped !== undefined || result.deliveries.length < 2) continue
    const [a, b] = result.deliveries
    t.ok(!a.duplicate && b.duplicate, 'second copy flagged')
    t.same(b.bytes, input)
    t.not(a.bytes, b.bytes, 'independent buffers')
    if (++checked >= 5) break
  }
  t.equal(link.stats.forwarded, n + link.stats.duplicated)
})

t.test('corruption flips exactly one bit of a copy', async (t) => {
  const seed = 5
  const n = 20_000
  const link = new LinkImpairment({ corruptProbability: 0.1 }, new SeededRng(seed))
  const results = run(link, n, { size: (i) => 1 + (i % 64) })
  within(t, { observed: link.stats.corrupted / n, expected: 0.1, sigma: binomialSigma(0.1, n), what: 'corrupt rate', seed })
  let bad = 0
  const positions = new Set<string>()
  for (const { input, nowMs, result } of results) {
    if (result.dropped !== undefined) continue
    const d = result.deliveries[0]
    let bits = 0
    for (let j = 0; j < input.length; j++) {
      bits += popcount(input[j] ^ d.bytes[j])
      if (input[j] !== d.bytes[j]) positions.add(j === input.length - 1 ? 'last' : j === 0 ? 'first' : 'mid')
    }
    if (bits !== (d.corrupted ? 1 : 0)) bad++
    if (!input.every((v, j) => v === packet(nowMs, input.length)[j])) bad++ // caller buffer untouched
  }
  t.equal(bad, 0, 'corrupted copies differ by exactly one bit, others not at all, inputs intact')
  t.same([...positions].sort(), ['first', 'last', 'mid'], 'bit positions cover the whole datagram')
})

t.test('rate limit: throughput at the configured rate, drop-tail when full', async (t) => {
  // 1000-byte datagrams every 1 ms (8 Mbit/s) into 1 Mbit/s: 8 ms each on the wire.
  const link = new LinkImpairment({ rateBitsPerSecond: 1_000_000, queueBytes: 65_536 }, new SeededRng(6))
  const n = 10_000
  const results = run(link, n, { size: () => 1000 })
  const d = deliveriesOf(results)
  const gaps = d.slice(1).map((x, i) => x.atMs - d[i].atMs)
  t.ok(gaps.every((g) => Math.abs(g - 8) < 1e-9), 'back-to-back departures exactly 8 ms apart')
  const spanMs = d[d.length - 1].atMs - d[0].atMs
  const throughput = ((d.length - 1) * 1000 * 8) / (spanMs / 1000)
  t.ok(Math.abs(throughput - 1e6) < 1, `throughput ${throughput} bit/s`)
  // Forwarded = what the link serialises during the run + the 65 datagrams the queue holds.
  const expected = Math.floor(n / 8) + 65
  t.ok(Math.abs(d.length - expected) <= 2, `forwarded ${d.length} ~ ${expected}`)
  t.equal(link.stats.dropped.queue, n - d.length, 'the rest dropped at the tail')
  t.ok(link.queuedBytesAt(n) <= 65_536, 'queue never exceeds its capacity')
  const firstDrop = results.findIndex((r) => r.result.dropped === 'queue')
  t.ok(firstDrop > 60 && firstDrop < 80, `first tail drop at packet ${firstDrop} (queue full)`)

  const under = new LinkImpairment({ rateBitsPerSecond: 1_000_000 }, new SeededRng(6))
  const slow = run(under, 1000, { intervalMs: 10, size: () => 1000 })
  t.equal(under.stats.dropped.queue, 0, 'below the rate nothing is dropped')
  t.ok(deliveriesOf(slow).every((x, i) => Math.abs(x.atMs - (i * 10 + 8)) < 1e-9), 'delay = serialization time only')

  const tooBig = new LinkImpairment({ rateBitsPerSecond: 1e6, queueBytes: 500 }, new SeededRng(6))
  t.same(tooBig.offer(0, packet(0, 501)), { dropped: 'queue' }, 'a datagram larger than the queue never fits')
})

t.test('MTU black hole', async (t) => {
  const link = new LinkImpairment({ mtuBytes: 1200 }, new SeededRng(7))
  const results = run(link, 10_000, { size: (i) => 1 + ((i * 37) % 2000) })
  const wrong = results.filter(({ input, result }) => (result.dropped === 'mtu') !== input.length > 1200)
  t.equal(wrong.length, 0, 'dropped exactly the datagrams larger than 1200 bytes')
  t.ok(link.stats.dropped.mtu > 3000)
})

t.test('blackouts are exact', async (t) => {
  const config: ImpairmentConfig = {
    blackouts: [
      { startMs: 1000, durationMs: 500 },
      { startMs: 3000.5, durationMs: 0.5 },
    ],
    blackoutEvery: { periodMs: 2000, durationMs: 100, offsetMs: 4000 },
  }
  const link = new LinkImpairment(config, new SeededRng(8))
  const n = 20_000
  const results = []
  for (let i = 0; i < n; i++) {
    const nowMs = i * 0.5
    results.push({ nowMs, result: link.offer(nowMs, packet(i)) })
  }
  const expectedDark = (ms: number): boolean =>
    (ms >= 1000 && ms < 1500) || ms === 3000.5 || (ms >= 4000 && (ms - 4000) % 2000 < 100)
  const wrong = results.filter(({ nowMs, result }) => (result.dropped === 'blackout') !== expectedDark(nowMs))
  t.equal(wrong.length, 0, 'dropped exactly inside the windows')
  t.equal(link.stats.dropped.blackout, 1000 + 1 + 3 * 200)
  t.same(link.offer(999.999, packet(0)).dropped, undefined, 'just before a window passes')
})

t.test('blocked drops everything; reconfigure lifts it', async (t) => {
  const link = new LinkImpairment({ blocked: true }, new SeededRng(9))
  run(link, 1000)
  t.equal(link.stats.dropped.blocked, 1000)
  t.equal(link.stats.forwarded, 0)
  link.reconfigure({})
  t.equal(link.offer(2000, packet(0)).dropped, undefined)
})

t.test('pipeline order: blocked > blackout > mtu > loss', async (t) => {
  const all: ImpairmentConfig = {
    blocked: true,
    blackouts: [{ startMs: 0, durationMs: 10 }],
    mtuBytes: 10,
    loss: { model: 'bernoulli', probability: 1 },
  }
  const link = new LinkImpairment(all, new SeededRng(10))
  t.equal(link.offer(0, packet(0)).dropped, 'blocked')
  link.reconfigure({ ...all, blocked: false })
  t.equal(link.offer(0, packet(0)).dropped, 'blackout')
  t.equal(link.offer(20, packet(0)).dropped, 'mtu')
  t.equal(link.offer(20, packet(0, 5)).dropped, 'loss')
})

const everything: ImpairmentConfig = {
  loss: { model: 'gilbert-elliott', p: 0.05, r: 0.3 },
  delay: { baseMs: 40, jitterMs: 15, distribution: 'paretonormal' },
  duplicateProbability: 0.05,
  corruptProbability: 0.05,
  rateBitsPerSecond: 2_000_000,
  queueBytes: 20_000,
  mtuBytes: 1400,
  blackoutEvery: { periodMs: 1000, durationMs: 50 },
}

t.test('determinism: same seed and offers => identical decisions', async (t) => {
  const go = (seed: number) => run(new LinkImpairment(everything, new SeededRng(seed)), 5000, { size: (i) => 50 + ((i * 97) % 1500) })
  const a = fingerprint(go(42))
  t.ok(a === fingerprint(go(42)), 'same seed, byte-identical outcome')
  t.ok(a !== fingerprint(go(43)), 'different seed, different outcome')
})

t.test('changing one probability does not reshuffle the other stages', async (t) => {
  const base: ImpairmentConfig = { loss: { model: 'bernoulli', probability: 0.1 }, delay: { baseMs: 30, jitterMs: 10, reorder: true } }
  const a = run(new LinkImpairment({ ...base, duplicateProbability: 0 }, new SeededRng(11)), 5000)
  const b = run(new LinkImpairment({ ...base, duplicateProbability: 0.3, corruptProbability: 0.2 }, new SeededRng(11)), 5000)
  const fate = (rs: typeof a) => rs.map(({ result }) => (result.dropped === undefined ? result.deliveries[0].atMs : result.dropped))
  t.same(fate(a), fate(b), 'same losses and same delays for the originals')
})

t.test('stats add up and reset', async (t) => {
  const link = new LinkImpairment(everything, new SeededRng(12))
  const results = run(link, 10_000, { intervalMs: 0.5, size: (i) => 50 + ((i * 97) % 1500) })
  const s = link.stats
  t.equal(s.offered, 10_000)
  t.equal(s.offered + s.duplicated, s.forwarded + dropTotal(s), 'offered + duplicated = forwarded + dropped')
  t.equal(s.forwarded, deliveriesOf(results).length)
  t.ok(Object.values(s.dropped).every((v) => v >= 0) && s.dropped.queue > 0 && s.dropped.loss > 0 && s.dropped.blackout > 0)
  t.equal(s.bytesOffered, results.reduce((a, r) => a + r.input.length, 0))
  t.equal(s.bytesForwarded, deliveriesOf(results).reduce((a, d) => a + d.bytes.length, 0))
  const dropped = s.dropped
  link.resetStats()
  t.same(link.stats, {
    offered: 0,
    forwarded: 0,
    dropped: { loss: 0, queue: 0, mtu: 0, blackout: 0, blocked: 0 },
    duplicated: 0,
    corrupted: 0,
    bytesOffered: 0,
    bytesForwarded: 0,
  })
  t.equal(link.stats.dropped, dropped, 'reset in place')
})

t.test('reconfigure keeps queue state; config is a frozen copy', async (t) => {
  const input: ImpairmentConfig = { rateBitsPerSecond: 8000, delay: { baseMs: 10 } }
  const link = new LinkImpairment(input, new SeededRng(13))
  const first = link.offer(0, packet(0, 1000)) // 1 s on the wire
  t.same(first.dropped === undefined && first.deliveries[0].atMs, 1010)
  link.reconfigure({ rateBitsPerSecond: 8000, delay: { baseMs: 20 } })
  const second = link.offer(0, packet(1, 1000))
  t.same(second.dropped === undefined && second.deliveries[0].atMs, 2020, 'queued behind the first, new delay')
  t.same(link.config, { rateBitsPerSecond: 8000, delay: { baseMs: 20 } })
  t.ok(Object.isFrozen(link.config))
  input.rateBitsPerSecond = 1
  t.throws(() => link.reconfigure({ duplicateProbability: 3 }))
  t.same(link.config, { rateBitsPerSecond: 8000, delay: { baseMs: 20 } }, 'a rejected config changes nothing')
})

t.test('bad impairment configs throw ConfigError', async (t) => {
  const bad = (config: unknown, field: string, message: string | RegExp) =>
    expectConfigError(t, () => new LinkImpairment(config as ImpairmentConfig, new SeededRng(1)), field, message)
  bad({ duplicateProbability: 2 }, 'duplicateProbability', 'duplicateProbability must be in [0,1], got 2')
  bad({ corruptProbability: -1 }, 'corruptProbability', 'corruptProbability must be in [0,1], got -1')
  bad({ rateBitsPerSecond: 0 }, 'rateBitsPerSecond', 'rateBitsPerSecond must be a finite number > 0, got 0')
  bad({ rateBitsPerSecond: 1e6, queueBytes: -5 }, 'queueBytes', 'queueBytes must be a finite number > 0, got -5')
  bad({ mtuBytes: 'big' }, 'mtuBytes', 'mtuBytes must be a finite number > 0, got "big"')
  bad({ loss: { model: 'bernoulli', probability: 1.5 } }, 'loss.probability', 'loss.probability must be in [0,1], got 1.5')
  bad({ delay: { baseMs: -3 } }, 'delay.baseMs', 'delay.baseMs must be a finite number >= 0, got -3')
  bad(
    { blackouts: [{ startMs: 0, durationMs: 1 }, { startMs: 5, durationMs: -1 }] },
    'blackouts[1].durationMs',
    'blackouts[1].durationMs must be a finite number >= 0, got -1',
  )
  bad({ blackouts: 'often' }, 'blackouts', /blackouts must be an array/)
  bad({ blackoutEvery: { periodMs: 100, durationMs: 200 } }, 'blackoutEvery.durationMs', /must be <= blackoutEvery.periodMs \(100\), got 200/)
  bad({ blackoutEvery: { periodMs: 0, durationMs: 0 } }, 'blackoutEvery.periodMs', /periodMs must be a finite number > 0/)
  bad({ blocked: 1 }, 'blocked', 'blocked must be true or false, got 1')
})
