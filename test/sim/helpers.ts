/** Shared statistics helpers for the simulator tests (not a test file itself). */
import type { Test } from 'tap'
import type { Rng } from '../../src/core/rng.js'

/** The few assertions the helpers use (any tap Test). */
export type Asserter = Pick<Test, 'ok' | 'equal' | 'match'>

/**
 * Asserts |observed - expected| <= k * sigma and says so with the numbers, the
 * bound and the seed, so a failure can be replayed.
 */
export function within(
  t: Asserter,
  opts: { observed: number; expected: number; sigma: number; k?: number; what: string; seed: number },
): void {
  const k = opts.k ?? 4
  const dev = Math.abs(opts.observed - opts.expected)
  t.ok(
    dev <= k * opts.sigma,
    `${opts.what}: observed ${opts.observed.toFixed(5)} vs expected ${opts.expected.toFixed(5)}, ` +
      `|dev| ${dev.toFixed(5)} <= ${k} sigma (${(k * opts.sigma).toFixed(5)}) [seed ${opts.seed}]`,
  )
}

/** Sigma of a proportion estimated from n independent trials. */
export const binomialSigma = (p: number, n: number): number => Math.sqrt((p * (1 - p)) / n)

/** Sample mean and (n-1) standard deviation. */
export function meanSd(xs: number[]): { mean: number; sd: number } {
  const n = xs.length
  let sum = 0
  for (const x of xs) sum += x
  const mean = sum / n
  let sq = 0
  for (const x of xs) sq += (x - mean) ** 2
  return { mean, sd: Math.sqrt(sq / (n - 1)) }
}

/** Fraction of samples <= x (empirical CDF). */
export const ecdf = (xs: number[], x: number): number => xs.filter((v) => v <= x).length / xs.length

/**
 * Sigma of the overall mean of a correlated 0/1 series by batch means: the series
 * is cut into `batches` consecutive batches much longer than its correlation time.
 */
export function batchMeansSigma(xs: number[], batches = 100): number {
  const size = Math.floor(xs.length / batches)
  const means: number[] = []
  for (let b = 0; b < batches; b++) {
    let s = 0
    for (let i = b * size; i < (b + 1) * size; i++) s += xs[i]
    means.push(s / size)
  }
  return meanSd(means).sd / Math.sqrt(batches)
}

/** Wraps an Rng and counts draws, to check the fixed-consumption promise. */
export class CountingRng implements Rng {
  draws = 0
  constructor(private readonly inner: Rng) {}
  nextU32(): number {
    this.draws++
    return this.inner.nextU32()
  }
  nextFloat(): number {
    this.draws++
    return this.inner.nextFloat()
  }
  fillBytes(out: Uint8Array): void {
    this.draws++
    this.inner.fillBytes(out)
  }
}

/** Asserts fn throws a ConfigError-like error with this field and message. */
export function expectConfigError(
  t: Asserter,
  fn: () => unknown,
  field: string,
  message: string | RegExp,
): void {
  let caught: unknown
  try {
    fn()
  } catch (err) {
    caught = err
  }
  t.ok(caught instanceof Error && caught.name === 'ConfigError', `throws ConfigError for ${field}`)
  const err = caught as { field?: string; message?: string }
  t.equal(err?.field, field, `field is ${field}`)
  if (typeof message === 'string') t.equal(err?.message, message)
  else t.match(err?.message, message)
}
