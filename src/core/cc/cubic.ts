/**
 * CUBIC (RFC 9438). After a congestion event the window follows
 *   W_cubic(t) = C * (t - K)^3 + W_max,   K = cbrt((W_max - cwnd_epoch) / C)
 * (W in segments, t in seconds since the epoch started), with beta = 0.7, C = 0.4, the
 * Reno-friendly estimate W_est as a floor, fast convergence, and the same recovery-period
 * rule as NewReno (one reduction per period, keyed on the lost packet's sent time).
 * Windows are kept in bytes internally; the formula is evaluated in segments.
 */
import type {
  AckEventForCc,
  CongestionController,
  CongestionControllerOptions,
  LossEventForCc,
  SentPacketForCc,
} from './controller.js'
import { defaultInitialWindowBytes, isCwndLimited } from './new-reno.js'

export const CUBIC_C = 0.4
export const CUBIC_BETA = 0.7
/** RFC 9438 §4.3: additive increase that makes W_est match Reno's average rate. */
export const CUBIC_ALPHA = (3 * (1 - CUBIC_BETA)) / (1 + CUBIC_BETA)

const PACING_GAIN_SLOW_START = 2
const PACING_GAIN_AVOIDANCE = 1.25

export class Cubic implements CongestionController {
  readonly name: string = 'cubic'
  private readonly mss: number
  private readonly minWindowBytes: number
  private cwnd: number
  private ssthresh = Infinity
  private recoveryStartTimeMs = -Infinity
  private lastAckInRecovery = false

  /** Window just before the last reduction (W_max, after fast convergence). */
  private wMaxBytes = 0
  /** Window before the last reduction, for switching alpha to 1. */
  private cwndPriorBytes = 0
  /** Start of the current avoidance epoch (NaN: starts on the next avoidance ack). */
  private epochStartMs = NaN
  private kSeconds = 0
  /** Reno-friendly window estimate. */
  private wEstBytes = 0
  private lastSentTimeMs = NaN

  constructor(opts: CongestionControllerOptions) {
    this.mss = opts.maxDatagramBytes
    this.cwnd = opts.initialWindowBytes ?? defaultInitialWindowBytes(this.mss)
    this.minWindowBytes = opts.minimumWindowBytes ?? 2 * this.mss
  }

  get congestionWindowBytes(): number {
    return Math.floor(this.cwnd)
  }

  get slowStartThresholdBytes(): number {
    return this.ssthresh
  }

  get inSlowStart(): boolean {
    return this.cwnd < this.ssthresh
  }

  /** W_max in bytes (0 before the first congestion event). */
  get maxWindowBytes(): number {
    return this.wMaxBytes
  }

  /** K in milliseconds for the current epoch. */
  get kMs(): number {
    return this.kSeconds * 1000
  }

  /** Start of the current epoch, NaN when none is running. */
  get epochStartTimeMs(): number {
    return this.epochStartMs
  }

  /** W_cubic(t) in bytes, t in seconds since the epoch start. */
  cubicWindowBytes(tSeconds: number): number {
    const d = tSeconds - this.kSeconds
    return (CUBIC_C * d * d * d + this.wMaxBytes / this.mss) * this.mss
  }

  inRecovery(sentTimeMs: number): boolean {
    return sentTimeMs <= this.recoveryStartTimeMs
  }

  pacingRateBytesPerMs(smoothedRttMs: number): number {
    if (!(smoothedRttMs > 0)) return Infinity
    const gain = this.inSlowStart ? PACING_GAIN_SLOW_START : PACING_GAIN_AVOIDANCE
    return (gain * this.cwnd) / smoothedRttMs
  }

  onPacketSent(nowMs: number, packet: SentPacketForCc, bytesInFlight: number): void {
    // Restarting after idle: shift the epoch so the idle time does not count as growth time
    // (RFC 9438 §5.8; bytesInFlight includes the packet just sent).
    if (bytesInFlight <= packet.sizeBytes && !Number.isNaN(this.epochStartMs) && nowMs > this.lastSentTimeMs) {
      this.epochStartMs += nowMs - this.lastSentTimeMs
    }
    this.lastSentTimeMs = nowMs
  }

  onAck(nowMs: number, ack: AckEventForCc): void {
    this.lastAckInRecovery = this.inRecovery(ack.largestAckedSentTimeMs)
    if (this.lastAckInRecovery) return
    const priorInFlight = ack.bytesInFlight + ack.ackedBytes
    if (!isCwndLimited(this.cwnd, priorInFlight, this.inSlowStart, this.mss)) return
    if (this.inSlowStart) {
      this.cwnd += ack.ackedBytes
      return
    }
    if (Number.isNaN(this.epochStartMs)) this.startEpoch(nowMs)

    const tSeconds = (nowMs - this.epochStartMs) / 1000
    const alpha = this.wEstBytes >= this.cwndPriorBytes ? 1 : CUBIC_ALPHA
    this.wEstBytes += (alpha * this.mss * ack.ackedBytes) / this.cwnd

    if (this.cubicWindowBytes(tSeconds) < this.wEstBytes) {
      // Reno-friendly region: do at least as well as Reno would.
      if (this.wEstBytes > this.cwnd) this.cwnd = this.wEstBytes
      return
    }
    const rttSeconds = (ack.smoothedRttMs > 0 ? ack.smoothedRttMs : ack.latestRttMs) / 1000
    let target = this.cubicWindowBytes(tSeconds + rttSeconds)
    if (target < this.cwnd) target = this.cwnd
    else if (target > 1.5 * this.cwnd) target = 1.5 * this.cwnd
    this.cwnd += ((target - this.cwnd) * ack.ackedBytes) / this.cwnd
  }

  private startEpoch(nowMs: number): void {
    this.epochStartMs = nowMs
    this.wEstBytes = this.cwnd
    if (this.wMaxBytes > this.cwnd) {
      this.kSeconds = Math.cbrt((this.wMaxBytes - this.cwnd) / this.mss / CUBIC_C)
    } else {
      // No reduction behind us (slow start ended without loss): grow from here.
      this.kSeconds = 0
      this.wMaxBytes = this.cwnd
    }
  }

  onLoss(nowMs: number, loss: LossEventForCc): void {
    if (!this.inRecovery(loss.largestLostSentTimeMs)) {
      this.recoveryStartTimeMs = nowMs
      this.lastAckInRecovery = true
      this.epochStartMs = NaN
      // Fast convergence: give up bandwidth sooner when the window keeps shrinking.
      this.wMaxBytes = this.cwnd < this.wMaxBytes ? (this.cwnd * (1 + CUBIC_BETA)) / 2 : this.cwnd
      this.cwndPriorBytes = this.cwnd
      this.ssthresh = Math.max(this.cwnd * CUBIC_BETA, this.minWindowBytes)
      this.cwnd = this.ssthresh
    }
    if (loss.persistentCongestion) {
      this.cwnd = this.minWindowBytes
      this.recoveryStartTimeMs = -Infinity
      this.lastAckInRecovery = false
      this.epochStartMs = NaN
    }
  }

  metrics(): Record<string, number | string> {
    const m: Record<string, number | string> = {
      congestionWindowBytes: this.congestionWindowBytes,
      state: this.lastAckInRecovery ? 'recovery' : this.inSlowStart ? 'slow_start' : 'congestion_avoidance',
    }
    if (this.ssthresh < Infinity) m.ssthreshBytes = Math.floor(this.ssthresh)
    if (this.wMaxBytes > 0) m.wMaxBytes = Math.floor(this.wMaxBytes)
    return m
  }
}
