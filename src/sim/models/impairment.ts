/**
 * LinkImpairment: one direction of a link, netem-like. Pure (no clock, no timers):
 * the caller says when a datagram is offered, and gets back when (if ever) each
 * copy comes out; scheduling the delivery is the caller's job (the simulator's
 * event queue, or the lossy-link proxy's timer).
 *
 * Pipeline, in this order (first matching stage decides a drop):
 *   1. blocked        -> drop 'blocked'
 *   2. blackout       -> drop 'blackout' (offer time inside a window; copies
 *                        already in flight are still delivered)
 *   3. mtu            -> drop 'mtu' when bytes.length > mtuBytes
 *   4. loss model     -> drop 'loss'
 *   5. corruption     -> one random bit of a fresh copy flipped
 *   6. duplication    -> a second copy (of the possibly corrupted bytes)
 *   7. rate + queue   -> each copy serialises at rateBitsPerSecond behind a
 *                        drop-tail queue: leaves at max(now, linkFreeAt) + size*8/rate;
 *                        dropped 'queue' if the bytes not yet serialised plus this
 *                        copy would exceed queueBytes
 *   8. delay + jitter -> atMs = departure + sampled delay; reorder false (default)
 *                        keeps FIFO: atMs = max(atMs, previous delivery)
 *
 * Randomness: four independent streams are derived from the constructor's rng
 * (loss, corruption, duplication, delay), and EVERY offer() consumes a fixed
 * number of draws from each, whatever the outcome (loss model: its own fixed count,
 * and Markov models advance for every offered datagram; corruption 2; duplication 1;
 * delay 2 samples, one per possible copy). So changing one probability (say the
 * duplication rate) does not reshuffle the decisions of the other stages.
 *
 * Stats count datagram copies: offered + duplicated = forwarded + sum(dropped).
 */
import { SeededRng, type Rng } from '../../core/rng.js'
import { createDelayModel, type DelayModel } from './delay.js'
import { createLossModel, type LossModel } from './loss.js'
import {
  cloneImpairmentConfig,
  inBlackout,
  validateImpairmentConfig,
  type ImpairmentConfig,
  type NormalizedImpairment,
} from './impairment-config.js'

export { ConfigError } from './config-error.js'
export {
  DEFAULT_QUEUE_BYTES,
  IMPAIRMENT_FIELDS,
  cloneImpairmentConfig,
  inBlackout,
  validateImpairmentConfig,
  type BlackoutWindow,
  type ImpairmentConfig,
  type NormalizedImpairment,
  type ValidateOptions,
} from './impairment-config.js'

export type DropReason = 'loss' | 'queue' | 'mtu' | 'blackout' | 'blocked'
export const DROP_REASONS: readonly DropReason[] = ['loss', 'queue', 'mtu', 'blackout', 'blocked']

export interface Delivery {
  /** Absolute time (caller's clock) at which this copy arrives. */
  atMs: number
  /** A fresh buffer, never the caller's. */
  bytes: Uint8Array
  duplicate: boolean
  corrupted: boolean
}

export type OfferResult = { dropped: DropReason } | { dropped?: undefined; deliveries: Delivery[] }

export interface ImpairmentStats {
  offered: number
  forwarded: number
  dropped: Record<DropReason, number>
  duplicated: number
  corrupted: number
  bytesOffered: number
  bytesForwarded: number
}

const zeroDrops = (): Record<DropReason, number> => ({ loss: 0, queue: 0, mtu: 0, blackout: 0, blocked: 0 })

export class LinkImpairment {
  private current: ImpairmentConfig
  private norm: NormalizedImpairment
  private lossModel: LossModel | undefined
  private delayModel: DelayModel | undefined
  private readonly lossRng: Rng
  private readonly corruptRng: Rng
  private readonly duplicateRng: Rng
  private readonly delayRng: Rng
  /** When the serializer finishes the last accepted copy. */
  private linkFreeAtMs = -Infinity
  /** Copies not yet fully serialised, in departure order. */
  private queue: { doneAtMs: number; size: number }[] = []
  private queueHead = 0
  private queued = 0
  /** Latest delivery time handed out (FIFO floor). */
  private lastDeliveryAtMs = -Infinity
  readonly stats: ImpairmentStats = {
    offered: 0,
    forwarded: 0,
    dropped: zeroDrops(),
    duplicated: 0,
    corrupted: 0,
    bytesOffered: 0,
    bytesForwarded: 0,
  }

  /** Throws ConfigError on a bad config. `rng` is read only here, to derive the stage streams. */
  constructor(config: ImpairmentConfig, rng: Rng) {
    this.norm = validateImpairmentConfig(config)
    this.current = Object.freeze(cloneImpairmentConfig(config))
    this.lossRng = new SeededRng(rng.nextU32())
    this.corruptRng = new SeededRng(rng.nextU32())
    this.duplicateRng = new SeededRng(rng.nextU32())
    this.delayRng = new SeededRng(rng.nextU32())
    this.lossModel = this.norm.loss && createLossModel(this.norm.loss)
    this.delayModel = this.norm.delay && createDelayModel(this.norm.delay)
  }

  /** The config as last given (a frozen copy). */
  get config(): ImpairmentConfig {
    return this.current
  }

  /**
   * Live change. Keeps the serializer/queue state (unless the rate is removed),
   * the FIFO floor, the random streams, and the loss model's Markov state when
   * the loss config is unchanged. Throws ConfigError and changes nothing on a bad config.
   */
  reconfigure(config: ImpairmentConfig): void {
    const norm = validateImpairmentConfig(config)
    if (JSON.stringify(norm.loss) !== JSON.stringify(this.norm.loss)) {
      this.lossModel = norm.loss && createLossModel(norm.loss)
    }
    this.delayModel = norm.delay && createDelayModel(norm.delay)
    if (norm.rateBitsPerSecond === undefined) {
      this.queue = []
      this.queueHead = 0
      this.queued = 0
      this.linkFreeAtMs = -Infinity
    }
    this.norm = norm
    this.current = Object.freeze(cloneImpairmentConfig(config))
  }

  resetStats(): void {
    const s = this.stats
    s.offered = s.forwarded = s.duplicated = s.corrupted = s.bytesOffered = s.bytesForwarded = 0
    for (const reason of DROP_REASONS) s.dropped[reason] = 0
  }

  /** Bytes accepted by the rate limiter and not yet serialised at `nowMs`. */
  queuedBytesAt(nowMs: number): number {
    this.drainQueue(nowMs)
    return this.queued
  }

  offer(nowMs: number, bytes: Uint8Array): OfferResult {
    const cfg = this.norm
    const size = bytes.length
    this.stats.offered++
    this.stats.bytesOffered += size

    // Fixed draws first, whatever happens below (see the module comment).
    const lost = this.lossModel ? this.lossModel.shouldDrop(this.lossRng) : false
    const uCorrupt = this.corruptRng.nextFloat()
    const uBit = this.corruptRng.nextFloat()
    const uDuplicate = this.duplicateRng.nextFloat()
    const delays = this.delayModel ? [this.delayModel.sampleMs(this.delayRng), this.delayModel.sampleMs(this.delayRng)] : [0, 0]

    if (cfg.blocked) return this.drop('blocked')
    if (inBlackout(cfg, nowMs)) return this.drop('blackout')
    if (cfg.mtuBytes !== undefined && size > cfg.mtuBytes) return this.drop('mtu')
    if (lost) return this.drop('loss')

    const data = bytes.slice()
    let corrupted = false
    if (size > 0 && uCorrupt < cfg.corruptProbability) {
      const bit = Math.min(size * 8 - 1, Math.floor(uBit * size * 8))
      data[bit >>> 3] ^= 1 << (bit & 7)
      corrupted = true
      this.stats.corrupted++
    }
    const copies = [data]
    if (uDuplicate < cfg.duplicateProbability) {
      copies.push(data.slice())
      this.stats.duplicated++
    }

    const deliveries: Delivery[] = []
    for (let i = 0; i < copies.length; i++) {
      let departAtMs = nowMs
      if (cfg.rateBitsPerSecond !== undefined) {
        this.drainQueue(nowMs)
        if (this.queued + size > cfg.queueBytes) {
          this.stats.dropped.queue++
          continue
        }
        departAtMs = Math.max(nowMs, this.linkFreeAtMs) + (size * 8 * 1000) / cfg.rateBitsPerSecond
        this.linkFreeAtMs = departAtMs
        this.queue.push({ doneAtMs: departAtMs, size })
        this.queued += size
      }
      let atMs = departAtMs + delays[i]
      if (!cfg.delay?.reorder) atMs = Math.max(atMs, this.lastDeliveryAtMs)
      this.lastDeliveryAtMs = Math.max(this.lastDeliveryAtMs, atMs)
      deliveries.push({ atMs, bytes: copies[i], duplicate: i > 0, corrupted })
      this.stats.forwarded++
      this.stats.bytesForwarded += size
    }
    if (deliveries.length === 0) return { dropped: 'queue' }
    return { deliveries }
  }

  private drop(reason: DropReason): OfferResult {
    this.stats.dropped[reason]++
    return { dropped: reason }
  }

  private drainQueue(nowMs: number): void {
    while (this.queueHead < this.queue.length && this.queue[this.queueHead].doneAtMs <= nowMs) {
      this.queued -= this.queue[this.queueHead].size
      this.queueHead++
    }
    // Compact now and then so a long run does not keep every entry alive.
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead)
      this.queueHead = 0
    }
  }
}
