/**
 * Packet loss models, netem-compatible in meaning (tc-netem `loss random`,
 * `loss gemodel`, `loss state`) but with probabilities in [0,1], not percent.
 *
 * Pure: no clock, no Math.random. Every model draws a FIXED number of values from
 * the rng per packet whatever the outcome (bernoulli 1, gilbert-elliott 2,
 * markov4 1), so two runs with the same stream stay aligned when one
 * probability is changed.
 */
import type { Rng } from '../../core/rng.js'
import { ConfigError, checkObject, checkOneOf, checkProbability } from './config-error.js'

export { ConfigError } from './config-error.js'

export type LossConfig =
  | { model: 'bernoulli'; probability: number }
  | {
      model: 'gilbert-elliott'
      /** P(Good -> Bad) per packet. */
      p: number
      /** P(Bad -> Good) per packet; mean time in Bad (mean loss burst when lossInBad = 1) is 1/r packets. */
      r: number
      /** Loss probability while Bad (netem's 1-h). Default 1. */
      lossInBad?: number
      /** Loss probability while Good (netem's 1-k). Default 0. */
      lossInGood?: number
    }
  | {
      model: 'markov4'
      p13: number
      p31: number
      /** Default 0 (state 2 unused: plain burst/gap model). */
      p32?: number
      /** Default 1. */
      p23?: number
      /** Default 0 (no isolated losses in the gap period). */
      p14?: number
    }

export interface LossModel {
  shouldDrop(rng: Rng): boolean
  readonly config: LossConfig
}

export const LOSS_MODELS = ['bernoulli', 'gilbert-elliott', 'markov4'] as const
export type LossModelName = (typeof LOSS_MODELS)[number]

/** Throws ConfigError on a bad config; returns a normalised copy (defaults filled in). */
export function validateLossConfig(config: LossConfig, field = 'loss'): LossConfig {
  const raw = checkObject(field, config)
  const model = checkOneOf(`${field}.model`, raw.model, LOSS_MODELS)
  switch (model) {
    case 'bernoulli':
      return { model, probability: checkProbability(`${field}.probability`, raw.probability) }
    case 'gilbert-elliott':
      return {
        model,
        p: checkProbability(`${field}.p`, raw.p),
        r: checkProbability(`${field}.r`, raw.r),
        lossInBad: checkProbability(`${field}.lossInBad`, raw.lossInBad ?? 1),
        lossInGood: checkProbability(`${field}.lossInGood`, raw.lossInGood ?? 0),
      }
    case 'markov4': {
      const p13 = checkProbability(`${field}.p13`, raw.p13)
      const p31 = checkProbability(`${field}.p31`, raw.p31)
      const p32 = checkProbability(`${field}.p32`, raw.p32 ?? 0)
      const p23 = checkProbability(`${field}.p23`, raw.p23 ?? 1)
      const p14 = checkProbability(`${field}.p14`, raw.p14 ?? 0)
      // Outgoing probabilities of one state must not exceed 1 (the rest is "stay").
      if (p13 + p14 > 1) {
        throw new ConfigError(`${field}.p14`, `${field}.p13 + ${field}.p14 must be <= 1, got ${p13} + ${p14}`)
      }
      if (p31 + p32 > 1) {
        throw new ConfigError(`${field}.p32`, `${field}.p31 + ${field}.p32 must be <= 1, got ${p31} + ${p32}`)
      }
      return { model, p13, p31, p32, p23, p14 }
    }
  }
}

class BernoulliLoss implements LossModel {
  constructor(readonly config: Extract<LossConfig, { model: 'bernoulli' }>) {}
  shouldDrop(rng: Rng): boolean {
    return rng.nextFloat() < this.config.probability
  }
}

/**
 * Two states. The packet's fate is drawn in the CURRENT state, then the state
 * moves (as netem's gemodel does): with lossInBad = 1 and lossInGood = 0 a loss
 * burst is exactly one stay in Bad, geometric with mean 1/r.
 */
class GilbertElliottLoss implements LossModel {
  private bad = false
  private readonly p: number
  private readonly r: number
  private readonly lossInBad: number
  private readonly lossInGood: number
  constructor(readonly config: Extract<LossConfig, { model: 'gilbert-elliott' }>) {
    this.p = config.p
    this.r = config.r
    this.lossInBad = config.lossInBad ?? 1
    this.lossInGood = config.lossInGood ?? 0
  }
  shouldDrop(rng: Rng): boolean {
    const uLoss = rng.nextFloat()
    const uMove = rng.nextFloat()
    const drop = uLoss < (this.bad ? this.lossInBad : this.lossInGood)
    if (this.bad ? uMove < this.r : uMove < this.p) this.bad = !this.bad
    return drop
  }
}

/**
 * netem's `loss state` model (Salsano et al., "Definition of a general and
 * intuitive loss model for packet networks"). States, numbered as in netem:
 *   1 packet received, gap period (good)      2 packet received within a burst
 *   3 packet lost within a burst              4 isolated loss within the gap period
 * Transitions: 1->3 p13, 1->4 p14, 3->1 p31, 3->2 p32, 2->3 p23, 4->1 always;
 * otherwise stay. Each packet makes one transition and is lost iff the state it
 * lands in is 3 or 4. Starts in state 1.
 */
class Markov4Loss implements LossModel {
  private state: 1 | 2 | 3 | 4 = 1
  private readonly p13: number
  private readonly p31: number
  private readonly p32: number
  private readonly p23: number
  private readonly p14: number
  constructor(readonly config: Extract<LossConfig, { model: 'markov4' }>) {
    this.p13 = config.p13
    this.p31 = config.p31
    this.p32 = config.p32 ?? 0
    this.p23 = config.p23 ?? 1
    this.p14 = config.p14 ?? 0
  }
  shouldDrop(rng: Rng): boolean {
    const u = rng.nextFloat()
    switch (this.state) {
      case 1:
        if (u < this.p14) this.state = 4
        else if (u < this.p14 + this.p13) this.state = 3
        break
      case 2:
        if (u < this.p23) this.state = 3
        break
      case 3:
        if (u < this.p32) this.state = 2
        else if (u < this.p32 + this.p31) this.state = 1
        break
      case 4:
        this.state = 1
        break
    }
    return this.state === 3 || this.state === 4
  }
}

/** Validates (ConfigError on bad values) and returns a fresh model in its initial state. */
export function createLossModel(config: LossConfig): LossModel {
  const c = validateLossConfig(config)
  switch (c.model) {
    case 'bernoulli':
      return new BernoulliLoss(c)
    case 'gilbert-elliott':
      return new GilbertElliottLoss(c)
    case 'markov4':
      return new Markov4Loss(c)
  }
}

/**
 * Long-run fraction of packets dropped by a model started in its initial state
 * (for display in tools and for tests). Absorbing corner cases are resolved the
 * way the chain, started in Good / state 1, actually ends up.
 */
export function stationaryLossRate(config: LossConfig): number {
  const c = validateLossConfig(config)
  switch (c.model) {
    case 'bernoulli':
      return c.probability
    case 'gilbert-elliott': {
      const lossInBad = c.lossInBad ?? 1
      const lossInGood = c.lossInGood ?? 0
      if (c.p + c.r === 0) return lossInGood
      const piBad = c.p / (c.p + c.r)
      return piBad * lossInBad + (1 - piBad) * lossInGood
    }
    case 'markov4': {
      const p32 = c.p32 ?? 0
      const p23 = c.p23 ?? 1
      const p14 = c.p14 ?? 0
      if (c.p13 === 0) return p14 / (1 + p14)
      // Balance equations scaled by p13: pi1 = p31, pi3 = p13, pi4 = p14*pi1, pi2*p23 = pi3*p32.
      if (p32 > 0 && p23 === 0) return 0 // absorbed in state 2
      const pi1 = c.p31
      const pi3 = c.p13
      const pi4 = p14 * pi1
      const pi2 = p32 === 0 ? 0 : (pi3 * p32) / p23
      return (pi3 + pi4) / (pi1 + pi2 + pi3 + pi4)
    }
  }
}
