/**
 * Congestion control behind one small interface (quic-go / quinn style). The session's
 * recovery code calls these hooks; every hook takes the time as an argument.
 * Implementations: NewReno (new-reno.ts), CUBIC (cubic.ts), BBR-style (bbr.ts).
 */
import type { Rng } from '../rng.js'

/** Delivery-rate sample (draft-cheng-iccrg-delivery-rate-estimation), produced per ACK. */
export interface RateSample {
  /** Bytes delivered per millisecond over the sample interval. */
  deliveryRateBytesPerMs: number
  /** Interval the rate was measured over. */
  intervalMs: number
  /** Bytes delivered during the interval. */
  deliveredBytes: number
  /** `delivered` counter value when the newest acked packet was sent. */
  priorDelivered: number
  /** The sample was taken while the sender had nothing to send (rate is a lower bound). */
  isAppLimited: boolean
  /** RTT of the newest acked packet. */
  rttMs: number
}

export interface SentPacketForCc {
  packetNumber: number
  sentTimeMs: number
  sizeBytes: number
}

export interface AckEventForCc {
  /** Bytes newly acknowledged by this ACK frame (ack-eliciting, in-flight packets only). */
  ackedBytes: number
  /** Send time of the largest newly acknowledged packet. */
  largestAckedSentTimeMs: number
  latestRttMs: number
  smoothedRttMs: number
  minRttMs: number
  /** Bytes in flight after removing the acknowledged packets. */
  bytesInFlight: number
  /** Present when the delivery-rate estimator produced a sample. */
  rateSample?: RateSample
}

export interface LossEventForCc {
  lostBytes: number
  /** Send time of the newest lost packet: losses of packets sent before the current
   * recovery period started do not reduce the window again. */
  largestLostSentTimeMs: number
  /** RFC 9002 §7.6: every packet over a long enough interval was lost. */
  persistentCongestion: boolean
  bytesInFlight: number
}

export interface CongestionController {
  readonly name: string
  /** Congestion window: the most bytes that may be in flight. */
  readonly congestionWindowBytes: number
  /** Pacing rate in bytes per millisecond (Infinity: do not pace). */
  pacingRateBytesPerMs(smoothedRttMs: number): number
  /** Called after an ack-eliciting packet was sent. */
  onPacketSent(nowMs: number, packet: SentPacketForCc, bytesInFlight: number): void
  onAck(nowMs: number, ack: AckEventForCc): void
  onLoss(nowMs: number, loss: LossEventForCc): void
  /** The application did not fill the window: do not grow it on the next acks. */
  onAppLimited?(nowMs: number, bytesInFlight: number): void
  /** A snapshot for traces (`recovery:metrics_updated`) and statistics. */
  metrics(): Record<string, number | string>
}

export interface CongestionControllerOptions {
  maxDatagramBytes: number
  /** Initial window in bytes (RFC 9002: min(10 * mss, max(2 * mss, 14720))). */
  initialWindowBytes?: number
  minimumWindowBytes?: number
  /** Randomness for controllers that need it (BBR's ProbeBW start phase). Without it a
   * deterministic sequence is used. */
  rng?: Rng
}

export type CongestionControllerName = 'newreno' | 'cubic' | 'bbr'
