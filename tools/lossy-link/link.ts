/**
 * The decision engine, without sockets: one LinkImpairment (shared models) per
 * direction, plus the tool's own drops (UDP blocked, script blackout, NAT timeout) and
 * the per-direction statistics. Usable as a library with virtual time:
 *
 *   const link = new LossyLink({ profile: profileFrom({ preset: '3g' }), seed: 42 })
 *   const r = link.process('up', nowMs, bytes)   // { dropped } or { deliveries }
 *
 * Each direction draws from its own generator forked from the seed, so traffic in one
 * direction never shifts the decisions of the other: the same seed and the same packet
 * sequence (times and sizes) per direction give the same decisions.
 */
import { LinkImpairment } from '../../src/sim/models/index.js'
import type { ImpairmentConfig, OfferResult } from '../../src/sim/models/index.js'
import { SeededRng } from '../../src/core/rng.js'
import { isBlockedAt, validateImpairment, type Direction, type LinkState, type UdpBlockConfig } from './config.js'
import { DirectionStats, type StatsDropReason } from './stats.js'

export type LinkResult = OfferResult | { dropped: 'nat-timeout' | 'blocked' | 'blackout' }

export interface LossyLinkOptions {
  seed: number
  profile?: Partial<LinkState>
}

export class LossyLink {
  readonly seed: number
  private readonly impairments: Record<Direction, LinkImpairment>
  private blockSchedule: Record<Direction, UdpBlockConfig>
  /** On-demand block (HTTP API / CLI), on top of the schedule. */
  private readonly blockedOnDemand: Record<Direction, boolean> = { up: false, down: false }
  private blackout = false
  stats: Record<Direction, DirectionStats> = { up: new DirectionStats(), down: new DirectionStats() }

  constructor(options: LossyLinkOptions) {
    this.seed = options.seed >>> 0
    const root = new SeededRng(this.seed)
    const up = options.profile?.up ?? {}
    const down = options.profile?.down ?? {}
    validateImpairment('up', up)
    validateImpairment('down', down)
    this.impairments = { up: new LinkImpairment(up, root.fork()), down: new LinkImpairment(down, root.fork()) }
    const block = options.profile?.udpBlock ?? {}
    this.blockSchedule = { up: block, down: block }
    this.blackout = options.profile?.blackout ?? false
  }

  /** Decide one datagram's fate. Times are the caller's clock (virtual or real). */
  process(direction: Direction, nowMs: number, bytes: Uint8Array): LinkResult {
    const stats = this.stats[direction]
    stats.offered++
    stats.bytesOffered += bytes.length
    let result: LinkResult
    if (this.blockedOnDemand[direction] || isBlockedAt(this.blockSchedule[direction], nowMs)) result = { dropped: 'blocked' }
    else if (this.blackout) result = { dropped: 'blackout' }
    else result = this.impairments[direction].offer(nowMs, bytes)
    if (result.dropped !== undefined) {
      stats.dropped[result.dropped]++
      return result
    }
    stats.forwarded++
    stats.bytesForwarded += bytes.length
    // Copies of a corrupted datagram are all corrupted: count datagrams, not copies.
    if (result.deliveries.some((d) => d.corrupted)) stats.corrupted++
    for (const d of result.deliveries) if (d.duplicate) stats.duplicated++
    return result
  }

  /** Count a drop the proxy decided itself (e.g. NAT binding timeout). */
  recordDrop(direction: Direction, bytes: Uint8Array, reason: StatsDropReason): void {
    const stats = this.stats[direction]
    stats.offered++
    stats.bytesOffered += bytes.length
    stats.dropped[reason]++
  }

  /** Called by the proxy when a delivery is really written to a socket. */
  recordSent(direction: Direction, delayMs: number, timingErrorMs: number | undefined): void {
    const stats = this.stats[direction]
    stats.sent++
    stats.delay.record(delayMs)
    if (timingErrorMs !== undefined) stats.timingError.record(Math.abs(timingErrorMs))
  }

  config(direction: Direction): ImpairmentConfig {
    return structuredClone(this.impairments[direction].config)
  }

  /** Replace one direction's impairments live (validated first, so a bad config changes nothing). */
  setConfig(direction: Direction, config: ImpairmentConfig): void {
    validateImpairment(direction, config)
    this.impairments[direction].reconfigure(config)
  }

  /** Apply a whole link state (a profile, a script step). */
  applyState(state: Partial<LinkState>, options: { keepDemandBlock?: boolean } = {}): void {
    if (state.up) validateImpairment('up', state.up)
    if (state.down) validateImpairment('down', state.down)
    if (state.up) this.impairments.up.reconfigure(state.up)
    if (state.down) this.impairments.down.reconfigure(state.down)
    if (state.udpBlock) {
      this.blockSchedule.up = state.udpBlock
      this.blockSchedule.down = state.udpBlock
    }
    this.blackout = state.blackout ?? false
    if (!options.keepDemandBlock) this.blockedOnDemand.up = this.blockedOnDemand.down = false
  }

  setBlocked(directions: readonly Direction[], blocked: boolean): void {
    for (const d of directions) this.blockedOnDemand[d] = blocked
  }

  isBlocked(direction: Direction, nowMs: number): boolean {
    return this.blockedOnDemand[direction] || isBlockedAt(this.blockSchedule[direction], nowMs)
  }

  get blackoutActive(): boolean {
    return this.blackout
  }

  state(nowMs: number) {
    return {
      seed: this.seed,
      up: this.config('up'),
      down: this.config('down'),
      udpBlocked: { up: this.isBlocked('up', nowMs), down: this.isBlocked('down', nowMs) },
      udpBlockedOnDemand: { ...this.blockedOnDemand },
      udpBlockSchedule: structuredClone(this.blockSchedule.up),
      blackout: this.blackout,
    }
  }

  resetStats(): void {
    this.stats = { up: new DirectionStats(), down: new DirectionStats() }
    this.impairments.up.resetStats()
    this.impairments.down.resetStats()
  }

  /** The shared models' own counters (for cross-checking ours). */
  modelStats(direction: Direction) {
    return this.impairments[direction].stats
  }
}
