/**
 * NewReno as in RFC 9002 §7 / Appendix B: slow start, congestion avoidance, one window
 * reduction per recovery period (keyed on the sent time of the lost packet), and collapse
 * to the minimum window on persistent congestion.
 */
import type {
  AckEventForCc,
  CongestionController,
  CongestionControllerOptions,
  LossEventForCc,
  SentPacketForCc,
} from './controller.js'

/** RFC 9002 §7.2 initial window: min(10 * mss, max(2 * mss, 14720)). */
export const defaultInitialWindowBytes = (maxDatagramBytes: number): number =>
  Math.min(10 * maxDatagramBytes, Math.max(2 * maxDatagramBytes, 14720))

/** Packets the window may exceed in flight by as a burst and still count as used. */
const MAX_BURST_PACKETS = 3

/**
 * Whether the window was actually the limit on sending (RFC 9002 §7.8): growing it while the
 * application or pacing left it unused would let it grow without bound. In slow start a
 * half-full window counts, since the window doubles within a round trip.
 */
export const isCwndLimited = (
  cwndBytes: number,
  bytesInFlight: number,
  inSlowStart: boolean,
  maxDatagramBytes: number,
): boolean => {
  if (bytesInFlight >= cwndBytes) return true
  if (inSlowStart && bytesInFlight > cwndBytes / 2) return true
  return cwndBytes - bytesInFlight <= MAX_BURST_PACKETS * maxDatagramBytes
}

/** Pacing gain over cwnd / srtt (RFC 9002 §7.7 suggests N = 1.25; slow start paces faster). */
const PACING_GAIN_SLOW_START = 2
const PACING_GAIN_AVOIDANCE = 1.25

export class NewReno implements CongestionController {
  readonly name: string = 'newreno'
  private readonly mss: number
  private readonly minWindowBytes: number
  private cwnd: number
  private ssthresh = Infinity
  /** Send time at which the current recovery period began (-Infinity: none yet). */
  private recoveryStartTimeMs = -Infinity
  private lastAckInRecovery = false

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

  /** True while packets sent before `sentTimeMs` belong to the current recovery period. */
  inRecovery(sentTimeMs: number): boolean {
    return sentTimeMs <= this.recoveryStartTimeMs
  }

  pacingRateBytesPerMs(smoothedRttMs: number): number {
    if (!(smoothedRttMs > 0)) return Infinity
    const gain = this.inSlowStart ? PACING_GAIN_SLOW_START : PACING_GAIN_AVOIDANCE
    return (gain * this.cwnd) / smoothedRttMs
  }

  onPacketSent(_nowMs: number, _packet: SentPacketForCc, _bytesInFlight: number): void {}

  onAck(_nowMs: number, ack: AckEventForCc): void {
    this.lastAckInRecovery = this.inRecovery(ack.largestAckedSentTimeMs)
    if (this.lastAckInRecovery) return
    const priorInFlight = ack.bytesInFlight + ack.ackedBytes
    if (!isCwndLimited(this.cwnd, priorInFlight, this.inSlowStart, this.mss)) return
    if (this.inSlowStart) {
      this.cwnd += ack.ackedBytes
    } else {
      this.cwnd += (this.mss * ack.ackedBytes) / this.cwnd
    }
  }

  onLoss(nowMs: number, loss: LossEventForCc): void {
    if (!this.inRecovery(loss.largestLostSentTimeMs)) {
      this.recoveryStartTimeMs = nowMs
      this.ssthresh = this.cwnd / 2
      this.cwnd = Math.max(this.ssthresh, this.minWindowBytes)
      this.lastAckInRecovery = true
    }
    if (loss.persistentCongestion) {
      // RFC 9002 §7.6.2: back to the minimum window, and let slow start run right away.
      this.cwnd = this.minWindowBytes
      this.recoveryStartTimeMs = -Infinity
      this.lastAckInRecovery = false
    }
  }

  metrics(): Record<string, number | string> {
    const m: Record<string, number | string> = {
      congestionWindowBytes: this.congestionWindowBytes,
      state: this.lastAckInRecovery ? 'recovery' : this.inSlowStart ? 'slow_start' : 'congestion_avoidance',
    }
    if (this.ssthresh < Infinity) m.ssthreshBytes = Math.floor(this.ssthresh)
    return m
  }
}
