/**
 * ImpairmentConfig: what one direction of a link does to datagrams, and its
 * validation. The pipeline that applies it lives in impairment.ts.
 */
import { ConfigError, checkBoolean, checkFinite, checkNonNegative, checkObject, checkPositive, checkProbability } from './config-error.js'
import { validateDelayConfig, type DelayConfig } from './delay.js'
import { validateLossConfig, type LossConfig } from './loss.js'

export interface BlackoutWindow {
  startMs: number
  durationMs: number
}

export interface ImpairmentConfig {
  loss?: LossConfig
  /** reorder false (default): deliveries on this link stay FIFO (time = max(sampled, previous delivery)). */
  delay?: DelayConfig
  duplicateProbability?: number
  /** Flips one random bit of a copy; the caller's buffer is never mutated. */
  corruptProbability?: number
  /** Serialization at this rate behind a drop-tail queue. */
  rateBitsPerSecond?: number
  /** Queue capacity; default DEFAULT_QUEUE_BYTES (64 KiB) when a rate is set; ignored without a rate. */
  queueBytes?: number
  /** Larger datagrams are silently dropped (PMTU black hole). */
  mtuBytes?: number
  /** Total loss for datagrams offered in [startMs, startMs + durationMs) (caller's clock). */
  blackouts?: BlackoutWindow[]
  /** Periodic blackouts: [offset + k*period, offset + k*period + duration) for k >= 0 (tunnels). */
  blackoutEvery?: { periodMs: number; durationMs: number; offsetMs?: number }
  /** Drop everything (UDP blocked). */
  blocked?: boolean
}

export const DEFAULT_QUEUE_BYTES = 64 * 1024

export const IMPAIRMENT_FIELDS = [
  'loss',
  'delay',
  'duplicateProbability',
  'corruptProbability',
  'rateBitsPerSecond',
  'queueBytes',
  'mtuBytes',
  'blackouts',
  'blackoutEvery',
  'blocked',
] as const

/** The validated, defaulted form the pipeline runs on. */
export interface NormalizedImpairment {
  loss?: LossConfig
  delay?: DelayConfig
  duplicateProbability: number
  corruptProbability: number
  rateBitsPerSecond?: number
  queueBytes: number
  mtuBytes?: number
  blackouts: BlackoutWindow[]
  blackoutEvery?: { periodMs: number; durationMs: number; offsetMs: number }
  blocked: boolean
}

export interface ValidateOptions {
  /** Also reject fields this version does not know (catches typos such as `dealy` in preset files). */
  strict?: boolean
}

/** Throws ConfigError naming the first bad field; returns the normalised form. */
export function validateImpairmentConfig(config: ImpairmentConfig, opts: ValidateOptions = {}): NormalizedImpairment {
  const raw = checkObject('config', config)
  if (opts.strict) {
    for (const key of Object.keys(raw)) {
      if (!(IMPAIRMENT_FIELDS as readonly string[]).includes(key)) {
        throw new ConfigError(key, `unknown impairment field '${key}' (known: ${IMPAIRMENT_FIELDS.join(', ')})`)
      }
    }
  }
  const out: NormalizedImpairment = {
    duplicateProbability: checkProbability('duplicateProbability', raw.duplicateProbability ?? 0),
    corruptProbability: checkProbability('corruptProbability', raw.corruptProbability ?? 0),
    queueBytes: DEFAULT_QUEUE_BYTES,
    blackouts: [],
    blocked: checkBoolean('blocked', raw.blocked ?? false),
  }
  if (raw.loss !== undefined) out.loss = validateLossConfig(raw.loss as LossConfig, 'loss')
  if (raw.delay !== undefined) out.delay = validateDelayConfig(raw.delay as DelayConfig, 'delay')
  if (raw.rateBitsPerSecond !== undefined) out.rateBitsPerSecond = checkPositive('rateBitsPerSecond', raw.rateBitsPerSecond)
  if (raw.queueBytes !== undefined) out.queueBytes = checkPositive('queueBytes', raw.queueBytes)
  if (raw.mtuBytes !== undefined) out.mtuBytes = checkPositive('mtuBytes', raw.mtuBytes)
  if (raw.blackouts !== undefined) {
    if (!Array.isArray(raw.blackouts)) {
      throw new ConfigError('blackouts', `blackouts must be an array of {startMs, durationMs}, got ${JSON.stringify(raw.blackouts)}`)
    }
    out.blackouts = raw.blackouts.map((w: unknown, i: number) => {
      const field = `blackouts[${i}]`
      const win = checkObject(field, w)
      return {
        startMs: checkFinite(`${field}.startMs`, win.startMs),
        durationMs: checkNonNegative(`${field}.durationMs`, win.durationMs),
      }
    })
  }
  if (raw.blackoutEvery !== undefined) {
    const every = checkObject('blackoutEvery', raw.blackoutEvery)
    const periodMs = checkPositive('blackoutEvery.periodMs', every.periodMs)
    const durationMs = checkNonNegative('blackoutEvery.durationMs', every.durationMs)
    if (durationMs > periodMs) {
      throw new ConfigError(
        'blackoutEvery.durationMs',
        `blackoutEvery.durationMs must be <= blackoutEvery.periodMs (${periodMs}), got ${durationMs}`,
      )
    }
    out.blackoutEvery = { periodMs, durationMs, offsetMs: checkFinite('blackoutEvery.offsetMs', every.offsetMs ?? 0) }
  }
  return out
}

/** Deep copy, so later changes to the caller's object do not leak into a running link. */
export function cloneImpairmentConfig(config: ImpairmentConfig): ImpairmentConfig {
  const copy: ImpairmentConfig = { ...config }
  if (config.loss) copy.loss = { ...config.loss }
  if (config.delay) copy.delay = { ...config.delay }
  if (config.blackouts) copy.blackouts = config.blackouts.map((w) => ({ ...w }))
  if (config.blackoutEvery) copy.blackoutEvery = { ...config.blackoutEvery }
  return copy
}

/** Whether `nowMs` falls in a blackout of this config. */
export function inBlackout(config: NormalizedImpairment, nowMs: number): boolean {
  for (const w of config.blackouts) {
    if (nowMs >= w.startMs && nowMs < w.startMs + w.durationMs) return true
  }
  const every = config.blackoutEvery
  if (every && every.durationMs > 0 && nowMs >= every.offsetMs) {
    if ((nowMs - every.offsetMs) % every.periodMs < every.durationMs) return true
  }
  return false
}
