import t from 'tap'
import { SeededRng } from '../../src/core/rng.js'
import { createLossModel, stationaryLossRate, type LossConfig } from '../../src/sim/models/loss.js'
import { CountingRng, batchMeansSigma, binomialSigma, expectConfigError, within } from './helpers.js'

/** Runs a model over n packets; returns the 0/1 drop series. */
function series(config: LossConfig, seed: number, n: number): number[] {
  const model = createLossModel(config)
  const rng = new SeededRng(seed)
  const out = new Array<number>(n)
  for (let i = 0; i < n; i++) out[i] = model.shouldDrop(rng) ? 1 : 0
  return out
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length

/** Lengths of the runs of consecutive drops. */
function bursts(xs: number[]): number[] {
  const out: number[] = []
  let run = 0
  for (const x of xs) {
    if (x) run++
    else if (run > 0) {
      out.push(run)
      run = 0
    }
  }
  if (run > 0) out.push(run)
  return out
}

t.test('bernoulli: loss rate within 4 sigma over 100k packets', async (t) => {
  for (const [seed, p] of [
    [1, 0.01],
    [2, 0.1],
    [3, 0.5],
  ] as const) {
    const n = 100_000
    const xs = series({ model: 'bernoulli', probability: p }, seed, n)
    within(t, { observed: mean(xs), expected: p, sigma: binomialSigma(p, n), what: `bernoulli p=${p}`, seed })
  }
  t.equal(mean(series({ model: 'bernoulli', probability: 0 }, 4, 10_000)), 0, 'p=0 never drops')
  t.equal(mean(series({ model: 'bernoulli', probability: 1 }, 5, 10_000)), 1, 'p=1 always drops')
})

t.test('gilbert-elliott: mean loss and mean burst length 1/r', async (t) => {
  const seed = 11
  const n = 200_000
  const p = 0.01
  const r = 0.2
  const xs = series({ model: 'gilbert-elliott', p, r }, seed, n)
  const piBad = p / (p + r)
  // Loss indicator = 1{Bad}: asymptotic variance of the mean of a 2-state chain is
  // piBad*piGood*(1+lambda)/(1-lambda)/n with lambda = 1-p-r.
  const lambda = 1 - p - r
  const sigma = Math.sqrt((piBad * (1 - piBad) * (1 + lambda)) / (1 - lambda) / n)
  within(t, { observed: mean(xs), expected: piBad, sigma, what: 'GE mean loss', seed })
  t.equal(stationaryLossRate({ model: 'gilbert-elliott', p, r }), piBad)
  // A burst is one stay in Bad: geometric, mean 1/r, sd sqrt(1-r)/r.
  const b = bursts(xs)
  t.ok(b.length > 1000, `enough bursts (${b.length})`)
  within(t, { observed: mean(b), expected: 1 / r, sigma: Math.sqrt(1 - r) / r / Math.sqrt(b.length), what: 'GE mean burst', seed })
})

t.test('gilbert-elliott with partial loss in both states', async (t) => {
  const seed = 12
  const n = 200_000
  const cfg = { model: 'gilbert-elliott', p: 0.05, r: 0.3, lossInBad: 0.6, lossInGood: 0.02 } as const
  const xs = series(cfg, seed, n)
  const piBad = cfg.p / (cfg.p + cfg.r)
  const expected = piBad * cfg.lossInBad + (1 - piBad) * cfg.lossInGood
  const lambda = 1 - cfg.p - cfg.r
  // Var(X) + 2*sum of autocovariances piBad*piGood*(h-k)^2*lambda^k.
  const asym = expected * (1 - expected) + (2 * piBad * (1 - piBad) * (cfg.lossInBad - cfg.lossInGood) ** 2 * lambda) / (1 - lambda)
  within(t, { observed: mean(xs), expected, sigma: Math.sqrt(asym / n), what: 'GE partial mean loss', seed })
  t.ok(Math.abs(stationaryLossRate(cfg) - expected) < 1e-12)
})

t.test('markov4: stationary loss (netem loss state)', async (t) => {
  const seed = 21
  const n = 200_000
  const cfg = { model: 'markov4', p13: 0.02, p31: 0.3, p32: 0.3, p23: 0.2, p14: 0.01 } as const
  // Balance equations with pi3 = 1: pi1 = p31/p13 = 15, pi2 = p32/p23 = 1.5, pi4 = p14*pi1 = 0.15.
  const expected = (1 + 0.15) / (15 + 1.5 + 1 + 0.15)
  t.ok(Math.abs(stationaryLossRate(cfg) - expected) < 1e-12, 'stationaryLossRate matches hand computation')
  const xs = series(cfg, seed, n)
  within(t, { observed: mean(xs), expected, sigma: batchMeansSigma(xs), what: 'markov4 loss (batch-means sigma)', seed })

  // Defaults p32=0, p23=1, p14=0: a plain burst model, bursts geometric with mean 1/p31.
  const simple = series({ model: 'markov4', p13: 0.05, p31: 0.5 }, seed + 1, n)
  within(t, { observed: mean(simple), expected: 1 / 11, sigma: batchMeansSigma(simple), what: 'markov4 defaults loss', seed: seed + 1 })
  const b = bursts(simple)
  within(t, { observed: mean(b), expected: 2, sigma: Math.sqrt(0.5) / 0.5 / Math.sqrt(b.length), what: 'markov4 burst', seed: seed + 1 })

  // Only isolated losses (state 4): every loss is followed by a reception.
  const iso = series({ model: 'markov4', p13: 0, p31: 1, p14: 0.05 }, seed + 2, n)
  within(t, { observed: mean(iso), expected: 0.05 / 1.05, sigma: batchMeansSigma(iso), what: 'markov4 isolated', seed: seed + 2 })
  t.equal(Math.max(...bursts(iso)), 1, 'isolated losses never come in bursts')
})

t.test('stationaryLossRate corner cases', async (t) => {
  t.equal(stationaryLossRate({ model: 'markov4', p13: 0.1, p31: 0, p32: 0 }), 1, 'absorbing burst')
  t.equal(stationaryLossRate({ model: 'markov4', p13: 0.1, p31: 0, p32: 0.5, p23: 0 }), 0, 'absorbing state 2')
  t.equal(stationaryLossRate({ model: 'gilbert-elliott', p: 0, r: 0, lossInGood: 0.3 }), 0.3, 'stays good')
})

t.test('fixed rng consumption per packet', async (t) => {
  const cases: [LossConfig, number][] = [
    [{ model: 'bernoulli', probability: 0.3 }, 1],
    [{ model: 'gilbert-elliott', p: 0.3, r: 0.3 }, 2],
    [{ model: 'markov4', p13: 0.3, p31: 0.3, p32: 0.2, p14: 0.1 }, 1],
  ]
  for (const [cfg, perPacket] of cases) {
    const rng = new CountingRng(new SeededRng(5))
    const model = createLossModel(cfg)
    for (let i = 0; i < 1000; i++) model.shouldDrop(rng)
    t.equal(rng.draws, 1000 * perPacket, `${cfg.model}: ${perPacket} draw(s) per packet whatever the outcome`)
  }
})

t.test('determinism: same seed same decisions, different seed different', async (t) => {
  const cfg: LossConfig = { model: 'gilbert-elliott', p: 0.05, r: 0.3 }
  t.same(series(cfg, 77, 5000), series(cfg, 77, 5000))
  t.notSame(series(cfg, 77, 5000), series(cfg, 78, 5000))
})

t.test('bad configs throw ConfigError with clear messages', async (t) => {
  const bad = (config: unknown, field: string, message: RegExp | string) =>
    expectConfigError(t, () => createLossModel(config as LossConfig), field, message)
  bad({ model: 'bernoulli', probability: 1.5 }, 'loss.probability', 'loss.probability must be in [0,1], got 1.5')
  bad({ model: 'bernoulli', probability: -0.1 }, 'loss.probability', 'loss.probability must be in [0,1], got -0.1')
  bad({ model: 'bernoulli', probability: Number.NaN }, 'loss.probability', 'loss.probability must be in [0,1], got NaN')
  bad({ model: 'bernoulli' }, 'loss.probability', 'loss.probability must be in [0,1], got undefined')
  bad({ model: 'gilbert-elliott', p: 0.1 }, 'loss.r', 'loss.r must be in [0,1], got undefined')
  bad({ model: 'gilbert-elliott', p: 0.1, r: 0.2, lossInBad: 2 }, 'loss.lossInBad', /lossInBad must be in \[0,1\], got 2/)
  bad({ model: 'markov4', p13: 0.6, p31: 0.1, p14: 0.6 }, 'loss.p14', 'loss.p13 + loss.p14 must be <= 1, got 0.6 + 0.6')
  bad({ model: 'markov4', p13: 0.1, p31: 0.7, p32: 0.7 }, 'loss.p32', /p31 \+ loss.p32 must be <= 1/)
  bad({ model: 'random', probability: 0.1 }, 'loss.model', `loss.model must be one of 'bernoulli', 'gilbert-elliott', 'markov4', got "random"`)
  bad(null, 'loss', 'loss must be an object, got null')
})
