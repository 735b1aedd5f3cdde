/**
 * One-way delay with jitter: sample = max(0, baseMs + jitterMs * Z), where Z has
 * mean 0 for every distribution:
 *
 * - uniform (default, as netem without a table): Z uniform on [-1, 1], so jitterMs
 *   is the half-width (baseMs +- jitterMs);
 * - normal: Z standard normal (Box-Muller), jitterMs is the standard deviation;
 * - pareto: Pareto with shape 3 (the shape of netem's table), shifted and scaled to
 *   mean 0 / sd 1: Z >= -0.577, heavy right tail;
 * - paretonormal: 1/4 normal + 3/4 pareto (independent), rescaled to sd 1 -
 *   netem's mix, computed analytically instead of read from a table.
 *
 * Draws per sample are fixed: uniform 1, pareto 1, normal 2, paretonormal 3, even
 * when jitterMs is 0, so the stream stays aligned when the jitter is changed.
 */
import type { Rng } from '../../core/rng.js'
import { checkBoolean, checkNonNegative, checkObject, checkOneOf } from './config-error.js'

export interface DelayConfig {
  baseMs: number
  jitterMs?: number
  distribution?: 'uniform' | 'normal' | 'pareto' | 'paretonormal'
  /** true: copies may overtake each other; false (default): the link keeps FIFO order. */
  reorder?: boolean
}

export interface DelayModel {
  /** One delay in ms, >= 0. */
  sampleMs(rng: Rng): number
  readonly config: DelayConfig
}

export const DELAY_DISTRIBUTIONS = ['uniform', 'normal', 'pareto', 'paretonormal'] as const
export type DelayDistribution = (typeof DELAY_DISTRIBUTIONS)[number]

const PARETO_SHAPE = 3
const PARETO_MEAN = PARETO_SHAPE / (PARETO_SHAPE - 1) // 1.5
const PARETO_SD = Math.sqrt(PARETO_SHAPE / ((PARETO_SHAPE - 1) ** 2 * (PARETO_SHAPE - 2))) // sqrt(3)/2
const PARETONORMAL_SD = Math.sqrt(0.25 ** 2 + 0.75 ** 2)

/** A uniform in (0, 1], safe for log() and negative powers. */
const openUnit = (rng: Rng): number => 1 - rng.nextFloat()

const standardNormal = (rng: Rng): number => {
  const u1 = openUnit(rng)
  const u2 = rng.nextFloat()
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2)
}

const standardPareto = (rng: Rng): number => (openUnit(rng) ** (-1 / PARETO_SHAPE) - PARETO_MEAN) / PARETO_SD

/** Z with mean 0: sd 1, or half-width 1 for uniform (see the module comment). */
export function sampleStandard(distribution: DelayDistribution, rng: Rng): number {
  switch (distribution) {
    case 'uniform':
      return 2 * rng.nextFloat() - 1
    case 'normal':
      return standardNormal(rng)
    case 'pareto':
      return standardPareto(rng)
    case 'paretonormal':
      return (0.25 * standardNormal(rng) + 0.75 * standardPareto(rng)) / PARETONORMAL_SD
  }
}

/** Throws ConfigError on a bad config; returns a normalised copy (defaults filled in). */
export function validateDelayConfig(config: DelayConfig, field = 'delay'): DelayConfig {
  const raw = checkObject(field, config)
  return {
    baseMs: checkNonNegative(`${field}.baseMs`, raw.baseMs),
    jitterMs: checkNonNegative(`${field}.jitterMs`, raw.jitterMs ?? 0),
    distribution: checkOneOf(`${field}.distribution`, raw.distribution ?? 'uniform', DELAY_DISTRIBUTIONS),
    reorder: checkBoolean(`${field}.reorder`, raw.reorder ?? false),
  }
}

export function createDelayModel(config: DelayConfig): DelayModel {
  const c = validateDelayConfig(config)
  const baseMs = c.baseMs
  const jitterMs = c.jitterMs ?? 0
  const distribution = c.distribution ?? 'uniform'
  return {
    config: c,
    sampleMs(rng: Rng): number {
      const z = sampleStandard(distribution, rng)
      return Math.max(0, baseMs + jitterMs * z)
    },
  }
}
