/**
 * Every impairment measured against its configuration over >= 10,000 datagrams, on
 * virtual time, through the tool's own profile layer (profileFrom -> LossyLink) and
 * therefore the shared models. Bounds are 4.5 sigma; failures print the seed.
 */
import t from 'tap'
import { batchMeansSigma } from '../sim/helpers.js'
import { binomialSigma, drive, meanSd, quantile, within } from './helpers.js'

const dropRuns = (flags: boolean[], value: boolean): number[] => {
  const runs: number[] = []
  let n = 0
  for (const f of flags) {
    if (f === value) n++
    else if (n > 0) {
      runs.push(n)
      n = 0
    }
  }
  return runs
}

t.test('Bernoulli loss "5%": rate within bounds, counted as loss', async (t) => {
  const seed = 101
  const n = 20_000
  const { link, offered } = drive({ both: { loss: '5%' } }, { n, gapMs: 1, seed })
  const lost = offered.filter((o) => o.dropped === 'loss').length
  within(t, { observed: lost / n, expected: 0.05, sigma: binomialSigma(0.05, n), what: 'loss rate', seed })
  t.equal(link.stats.up.dropped.loss, lost, 'stats count every loss')
  t.equal(link.stats.up.forwarded, n - lost, 'the rest is forwarded')
  t.equal(link.stats.up.offered, n)
})

t.test('Gilbert-Elliott: loss rate, burst lengths and gaps', async (t) => {
  const seed = 102
  const n = 60_000
  const p = 0.02
  const r = 0.25
  const { offered } = drive({ up: { loss: { model: 'gilbert-elliott', p, r } } }, { n, gapMs: 1, seed })
  const lostFlags = offered.map((o) => o.dropped === 'loss')
  const series: number[] = lostFlags.map((f) => (f ? 1 : 0))
  const rate = series.reduce((a, b) => a + b, 0) / n
  within(t, { observed: rate, expected: p / (p + r), sigma: batchMeansSigma(series), what: 'GE loss rate p/(p+r)', seed })
  const bursts = dropRuns(lostFlags, true)
  const b = meanSd(bursts)
  t.ok(bursts.length > 500, `enough bursts (${bursts.length})`)
  within(t, { observed: b.mean, expected: 1 / r, sigma: Math.sqrt(1 - r) / r / Math.sqrt(bursts.length), what: 'mean burst length 1/r', seed })
  const ones = bursts.filter((x) => x === 1).length / bursts.length
  within(t, { observed: ones, expected: r, sigma: binomialSigma(r, bursts.length), what: 'P(burst = 1) = r (geometric)', seed })
  const gaps = dropRuns(lostFlags, false)
  within(t, { observed: meanSd(gaps).mean, expected: 1 / p, sigma: Math.sqrt(1 - p) / p / Math.sqrt(gaps.length), what: 'mean gap 1/p', seed })
})

t.test('4-state Markov (netem "loss state"): long-run loss rate', async (t) => {
  const seed = 103
  const n = 60_000
  const P = { p13: 0.02, p31: 0.4, p32: 0.2, p23: 0.6, p14: 0.01 }
  const { offered } = drive({ both: { loss: { model: 'markov4', ...P } } }, { n, gapMs: 1, seed })
  // Stationary distribution computed here independently (power iteration on the chain).
  let pi = [1, 0, 0, 0]
  for (let k = 0; k < 5000; k++) {
    const [a, b, c, d] = pi
    pi = [
      a * (1 - P.p13 - P.p14) + c * P.p31 + d,
      b * (1 - P.p23) + c * P.p32,
      a * P.p13 + b * P.p23 + c * (1 - P.p31 - P.p32),
      a * P.p14,
    ]
  }
  const series: number[] = offered.map((o) => (o.dropped === 'loss' ? 1 : 0))
  const rate = series.reduce((x, y) => x + y, 0) / n
  within(t, { observed: rate, expected: pi[2] + pi[3], sigma: batchMeansSigma(series), what: 'markov4 loss rate pi3 + pi4', seed })
})

const delays = (raw: unknown, seed: number, n = 20_000) => {
  const { offered } = drive(raw, { n, gapMs: 1, seed })
  return offered.map((o) => o.deliveries[0].atMs - o.atMs)
}

t.test('delay: uniform jitter is base ± jitter', async (t) => {
  const seed = 104
  const n = 20_000
  const d = delays({ both: { delay: { baseMs: '50ms', jitterMs: '10ms', distribution: 'uniform', reorder: true } } }, seed, n)
  within(t, { observed: meanSd(d).mean, expected: 50, sigma: 10 / Math.sqrt(3) / Math.sqrt(n), what: 'uniform mean', seed })
  t.ok(Math.min(...d) >= 40 && Math.max(...d) <= 60, 'every delay within [40, 60] ms')
  within(t, { observed: d.filter((x) => x <= 45).length / n, expected: 0.25, sigma: binomialSigma(0.25, n), what: 'P(d <= 45)', seed })
})

t.test('delay: normal jitter has the configured mean and sd', async (t) => {
  const seed = 105
  const n = 20_000
  const d = delays({ both: { delay: { baseMs: 50, jitterMs: 10, distribution: 'normal', reorder: true } } }, seed, n)
  const { mean, sd } = meanSd(d)
  within(t, { observed: mean, expected: 50, sigma: 10 / Math.sqrt(n), what: 'normal mean', seed })
  within(t, { observed: sd, expected: 10, sigma: 10 / Math.sqrt(2 * n), what: 'normal sd', seed })
  within(t, { observed: d.filter((x) => x <= 40).length / n, expected: 0.158655, sigma: binomialSigma(0.1587, n), what: 'P(d <= mean - sd)', seed })
})

t.test('delay: pareto jitter has the mean and the heavy right tail', async (t) => {
  const seed = 106
  const n = 20_000
  const d = delays({ both: { delay: { baseMs: 50, jitterMs: 10, distribution: 'pareto', reorder: true } } }, seed, n)
  within(t, { observed: meanSd(d).mean, expected: 50, sigma: 10 / Math.sqrt(n), what: 'pareto mean', seed })
  // Pareto shape 3 standardised: z = (U^(-1/3) - 1.5) / (sqrt(3)/2), so z >= -0.577.
  const z = (q: number) => ((1 - q) ** (-1 / 3) - 1.5) / (Math.sqrt(3) / 2)
  t.ok(Math.min(...d) >= 50 + 10 * z(0) - 1e-9, `no delay below base + jitter * z_min (${(50 + 10 * z(0)).toFixed(2)} ms)`)
  for (const q of [0.5, 0.9, 0.99]) {
    within(t, { observed: d.filter((x) => x <= 50 + 10 * z(q)).length / n, expected: q, sigma: binomialSigma(q, n), what: `pareto P(d <= q${q * 100})`, seed })
  }
  t.ok(quantile(d, 0.99) - 50 > 2 * (50 - quantile(d, 0.01)), 'right tail much longer than the left')
})

t.test('reordering: none without reorder, the expected share with it', async (t) => {
  const seed = 107
  const n = 20_000
  const cfg = (reorder: boolean) => ({ both: { delay: { baseMs: 50, jitterMs: 10, reorder } } })
  const inversions = (raw: unknown) => {
    const { offered } = drive(raw, { n, gapMs: 1, seed })
    const at = offered.map((o) => o.deliveries[0].atMs)
    let inv = 0
    for (let i = 1; i < n; i++) if (at[i] < at[i - 1]) inv++
    return inv / (n - 1)
  }
  t.equal(inversions(cfg(false)), 0, 'FIFO kept when reorder is off')
  // Adjacent datagrams 1 ms apart with uniform ±10 ms jitter: P(D > 1) for D triangular on
  // [-20, 20] is 19² / (2·20²) = 0.45125. Adjacent pairs overlap, so the sigma is doubled.
  within(t, { observed: inversions(cfg(true)), expected: 361 / 800, sigma: 2 * binomialSigma(0.45, n), what: 'adjacent inversions', seed })
})

t.test('duplication: rate, and the copy carries the same bytes', async (t) => {
  const seed = 108
  const n = 20_000
  const { link, offered } = drive({ both: { duplicateProbability: '3%' } }, { n, gapMs: 1, seed })
  const dup = offered.filter((o) => o.deliveries.length === 2)
  within(t, { observed: dup.length / n, expected: 0.03, sigma: binomialSigma(0.03, n), what: 'duplicate rate', seed })
  t.ok(dup.every((o) => o.deliveries[1].duplicate && Buffer.from(o.deliveries[1].bytes).equals(Buffer.from(o.bytes))), 'copies identical')
  t.equal(link.stats.up.duplicated, dup.length, 'counted')
})

t.test('corruption: rate, exactly one bit flipped', async (t) => {
  const seed = 109
  const n = 20_000
  const { link, offered } = drive({ both: { corruptProbability: '2%' } }, { n, gapMs: 1, seed })
  const bad = offered.filter((o) => o.deliveries[0].corrupted)
  within(t, { observed: bad.length / n, expected: 0.02, sigma: binomialSigma(0.02, n), what: 'corruption rate', seed })
  const bitsDiffer = (a: Uint8Array, b: Uint8Array) => {
    let bits = 0
    for (let i = 0; i < a.length; i++) for (let x = a[i] ^ b[i]; x; x &= x - 1) bits++
    return bits
  }
  t.ok(bad.every((o) => bitsDiffer(o.bytes, o.deliveries[0].bytes) === 1), 'one bit differs in every corrupted datagram')
  t.ok(offered.filter((o) => !o.deliveries[0].corrupted).every((o) => bitsDiffer(o.bytes, o.deliveries[0].bytes) === 0), 'others intact')
  t.equal(link.stats.up.corrupted, bad.length, 'counted')
})

t.test('rate limit: throughput equals the rate, drop-tail queue bounds the delay', async (t) => {
  const seed = 110
  const n = 10_000
  const size = 1000
  // Offered at 2 Mbit/s into 1 Mbit/s with a 10 kB queue.
  const { link, offered } = drive({ both: { rateBitsPerSecond: '1mbit', queueBytes: 10_000 } }, { n, gapMs: 4, seed, size: () => size })
  const delivered = offered.filter((o) => o.deliveries.length > 0)
  const first = delivered[0].atMs
  const last = delivered[delivered.length - 1].deliveries[0].atMs
  const bps = (delivered.length * size * 8) / ((last - first) / 1000)
  t.ok(Math.abs(bps - 1e6) / 1e6 < 0.01, `delivered throughput ${(bps / 1e6).toFixed(4)} Mbit/s ≈ 1 Mbit/s`)
  t.equal(link.stats.up.dropped.queue, n - delivered.length, 'the excess is dropped as queue')
  t.ok(Math.abs(delivered.length / n - 0.5) < 0.01, `about half delivered (${delivered.length})`)
  const maxDelay = Math.max(...delivered.map((o) => o.deliveries[0].atMs - o.atMs))
  t.ok(maxDelay <= ((10_000 + size) * 8) / 1e6 * 1000 + 1e-9, `queueing delay bounded by the queue (${maxDelay.toFixed(2)} ms <= 88 ms)`)

  const under = drive({ both: { rateBitsPerSecond: 1e6 } }, { n, gapMs: 16, seed, size: () => size })
  t.ok(under.offered.every((o) => o.deliveries.length === 1 && Math.abs(o.deliveries[0].atMs - o.atMs - 8) < 1e-9), 'under the rate: no drop, exactly the 8 ms serialisation')
})

t.test('MTU: exactly the oversized datagrams vanish', async (t) => {
  const seed = 111
  const n = 10_000
  const size = (i: number) => 500 + ((i * 7919) % 1001)
  const { link, offered } = drive({ both: { mtuBytes: 1200 } }, { n, gapMs: 1, seed, size })
  const wrong = offered.filter((o) => (o.bytes.length > 1200) !== (o.dropped === 'mtu'))
  t.equal(wrong.length, 0, 'dropped iff larger than 1200 bytes')
  t.equal(link.stats.up.dropped.mtu, offered.filter((o) => o.bytes.length > 1200).length, 'counted as mtu')
})

t.test('blackouts on a schedule: total loss exactly inside the windows', async (t) => {
  const seed = 112
  const n = 10_000
  const { link, offered } = drive({ both: { blackoutEvery: '1s/200ms' } }, { n, gapMs: 1, seed })
  t.equal(offered.filter((o) => (o.atMs % 1000 < 200) !== (o.dropped === 'blackout')).length, 0, 'dropped iff inside a window')
  t.equal(link.stats.up.dropped.blackout, 2000)
})

t.test('UDP blocked on a schedule and on demand', async (t) => {
  const seed = 113
  const n = 10_000
  const { link, offered } = drive({ udpBlock: { every: '500ms/100ms@50ms' } }, { n, gapMs: 1, seed })
  const inWindow = (ms: number) => ms >= 50 && (ms - 50) % 500 < 100
  t.equal(offered.filter((o) => inWindow(o.atMs) !== (o.dropped === 'blocked')).length, 0, 'blocked iff inside a window')
  t.equal(link.stats.up.dropped.blocked, 2000)
  link.setBlocked(['down'], true)
  t.equal(link.process('down', 20, new Uint8Array(10)).dropped, 'blocked', 'on demand, down only')
  t.equal(link.process('up', 20, new Uint8Array(10)).dropped, undefined, 'up still open')
  link.setBlocked(['down'], false)
  t.equal(link.process('down', 21, new Uint8Array(10)).dropped, undefined, 'unblocked')
})
