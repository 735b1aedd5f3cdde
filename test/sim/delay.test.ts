import t from 'tap'
import { SeededRng } from '../../src/core/rng.js'
import { createDelayModel, type DelayConfig } from '../../src/sim/models/delay.js'
import { CountingRng, type Asserter, binomialSigma, ecdf, expectConfigError, meanSd, within } from './helpers.js'

const N = 40_000

function samples(config: DelayConfig, seed: number, n = N): number[] {
  const model = createDelayModel(config)
  const rng = new SeededRng(seed)
  const out = new Array<number>(n)
  for (let i = 0; i < n; i++) out[i] = model.sampleMs(rng)
  return out
}

/** Empirical CDF at analytic quantiles, each within 4 binomial sigma of q. */
function checkQuantiles(t: Asserter, xs: number[], quantiles: [q: number, x: number][], what: string, seed: number): void {
  for (const [q, x] of quantiles) {
    within(t, { observed: ecdf(xs, x), expected: q, sigma: binomialSigma(q, xs.length), what: `${what} P(d <= ${x.toFixed(2)})`, seed })
  }
}

const normalCdfPoints: [number, number][] = [
  [0.158655, -1],
  [0.5, 0],
  [0.841345, 1],
  [0.97725, 2],
]

t.test('uniform (default): baseMs +- jitterMs', async (t) => {
  const seed = 31
  const xs = samples({ baseMs: 100, jitterMs: 10 }, seed)
  const { mean } = meanSd(xs)
  within(t, { observed: mean, expected: 100, sigma: 10 / Math.sqrt(3) / Math.sqrt(N), what: 'uniform mean', seed })
  t.ok(Math.min(...xs) >= 90 && Math.max(...xs) <= 110, 'all samples within [90, 110]')
  checkQuantiles(t, xs, [[0.1, 92], [0.5, 100], [0.9, 108]], 'uniform', seed)
})

t.test('normal: mean, sd and percentiles', async (t) => {
  const seed = 32
  const xs = samples({ baseMs: 100, jitterMs: 10, distribution: 'normal' }, seed)
  const { mean, sd } = meanSd(xs)
  within(t, { observed: mean, expected: 100, sigma: 10 / Math.sqrt(N), what: 'normal mean', seed })
  // sd of the sample sd of a normal: sigma / sqrt(2(n-1)).
  within(t, { observed: sd, expected: 10, sigma: 10 / Math.sqrt(2 * (N - 1)), what: 'normal sd', seed })
  checkQuantiles(t, xs, normalCdfPoints.map(([q, z]) => [q, 100 + 10 * z]), 'normal', seed)
})

t.test('pareto: shape-3 tail, mean base, floor at base - 0.577 jitter', async (t) => {
  const seed = 33
  const xs = samples({ baseMs: 100, jitterMs: 10, distribution: 'pareto' }, seed)
  // Z = (X - 1.5) / (sqrt(3)/2) with P(X > x) = x^-3, x >= 1.
  const sdX = Math.sqrt(3) / 2
  const quantile = (q: number): number => 100 + (10 * ((1 - q) ** (-1 / 3) - 1.5)) / sdX
  checkQuantiles(t, xs, [0.1, 0.5, 0.9, 0.99, 0.999].map((q) => [q, quantile(q)]), 'pareto', seed)
  t.ok(Math.min(...xs) >= 100 - (10 * 0.5) / sdX - 1e-9, 'no sample below the Pareto floor')
  // Finite variance but infinite 4th moment: the mean converges slowly, so 6 sigma.
  within(t, { observed: meanSd(xs).mean, expected: 100, sigma: 10 / Math.sqrt(N), k: 6, what: 'pareto mean', seed })
})

t.test('paretonormal: mean base, sd jitter, right-skewed', async (t) => {
  const seed = 34
  const xs = samples({ baseMs: 100, jitterMs: 10, distribution: 'paretonormal' }, seed)
  const { mean, sd } = meanSd(xs)
  within(t, { observed: mean, expected: 100, sigma: 10 / Math.sqrt(N), k: 6, what: 'paretonormal mean (heavy tail: 6 sigma)', seed })
  t.ok(Math.abs(sd - 10) < 1, `sd ${sd.toFixed(3)} within 10% of jitter`)
  const sorted = [...xs].sort((a, b) => a - b)
  const median = sorted[N >> 1]
  t.ok(median < mean, `right-skewed: median ${median.toFixed(2)} < mean ${mean.toFixed(2)}`)
  t.ok(sorted[Math.floor(N * 0.999)] - 100 > 100 - sorted[Math.floor(N * 0.001)], 'right tail longer than left')
})

t.test('never negative, jitter 0 is exact', async (t) => {
  for (const distribution of ['uniform', 'normal', 'pareto', 'paretonormal'] as const) {
    const xs = samples({ baseMs: 5, jitterMs: 50, distribution }, 35, 10_000)
    t.ok(Math.min(...xs) >= 0, `${distribution}: min ${Math.min(...xs)} >= 0`)
    t.same(samples({ baseMs: 42, distribution }, 36, 100), new Array(100).fill(42), `${distribution}: no jitter`)
  }
})

t.test('fixed draws per sample, determinism', async (t) => {
  const perSample = { uniform: 1, normal: 2, pareto: 1, paretonormal: 3 } as const
  for (const [distribution, draws] of Object.entries(perSample)) {
    const rng = new CountingRng(new SeededRng(1))
    const model = createDelayModel({ baseMs: 1, jitterMs: 0, distribution: distribution as DelayConfig['distribution'] })
    for (let i = 0; i < 100; i++) model.sampleMs(rng)
    t.equal(rng.draws, 100 * draws, `${distribution}: ${draws} draws even with zero jitter`)
  }
  const cfg: DelayConfig = { baseMs: 50, jitterMs: 20, distribution: 'normal' }
  t.same(samples(cfg, 9, 1000), samples(cfg, 9, 1000), 'same seed, same samples')
  t.notSame(samples(cfg, 9, 1000), samples(cfg, 10, 1000), 'different seed, different samples')
})

t.test('bad configs throw ConfigError', async (t) => {
  const bad = (config: unknown, field: string, message: string | RegExp) =>
    expectConfigError(t, () => createDelayModel(config as DelayConfig), field, message)
  bad({ baseMs: -1 }, 'delay.baseMs', 'delay.baseMs must be a finite number >= 0, got -1')
  bad({ baseMs: Infinity }, 'delay.baseMs', 'delay.baseMs must be a finite number >= 0, got Infinity')
  bad({ baseMs: 10, jitterMs: -2 }, 'delay.jitterMs', 'delay.jitterMs must be a finite number >= 0, got -2')
  bad(
    { baseMs: 10, distribution: 'gaussian' },
    'delay.distribution',
    `delay.distribution must be one of 'uniform', 'normal', 'pareto', 'paretonormal', got "gaussian"`,
  )
  bad({ baseMs: 10, reorder: 'yes' }, 'delay.reorder', 'delay.reorder must be true or false, got "yes"')
})
