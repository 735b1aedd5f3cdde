/**
 * Delivery-rate estimation (draft-cheng-iccrg-delivery-rate-estimation).
 *
 * The estimator keeps no per-packet map: the session stores the RatePacketState fields on
 * its own sent-packet records and hands the record back on ack. Calling order:
 *   send:  set record.sentTimeMs / sizeBytes, then onPacketSent(now, inFlightBefore, record)
 *   ack:   onPacketAcked(now, record) for each newly acked in-flight packet (any order),
 *          then takeSample(now) once per ACK frame.
 *   idle:  onAppLimited(bytesInFlight) when the application had nothing to send while the
 *          window had room.
 */
import type { RateSample } from './controller.js'

/** Fields the estimator reads and writes on the session's sent-packet record. */
export interface RatePacketState {
  /** Set by the session before onPacketSent. */
  sentTimeMs: number
  /** Set by the session before onPacketSent. */
  sizeBytes: number
  /** Stamped by onPacketSent: the connection's delivered counter at send time. */
  delivered: number
  /** Stamped by onPacketSent: when `delivered` last changed. */
  deliveredTimeMs: number
  /** Stamped by onPacketSent: send time of the newest acked packet when this one was sent. */
  firstSentTimeMs: number
  /** Stamped by onPacketSent: sent inside an application-limited bubble. */
  isAppLimited: boolean
}

/** Convenience constructor for records that start out unstamped. */
export const newRatePacketState = (sentTimeMs: number, sizeBytes: number): RatePacketState => ({
  sentTimeMs,
  sizeBytes,
  delivered: 0,
  deliveredTimeMs: 0,
  firstSentTimeMs: 0,
  isAppLimited: false,
})

export class DeliveryRateEstimator {
  private delivered = 0
  private deliveredTimeMs = 0
  private firstSentTimeMs = 0
  /** 0: not app-limited; else the delivered value at which the app-limited bubble ends. */
  private appLimitedUntil = 0
  /** Smallest RTT seen: intervals shorter than this come from ack compression. */
  private minRttMs = Infinity

  // The sample under construction for the current ACK frame.
  private hasData = false
  private priorDelivered = 0
  private priorTimeMs = 0
  private sendElapsedMs = 0
  private ackElapsedMs = 0
  private newestSentTimeMs = -Infinity
  private sampleAppLimited = false
  private sampleRttMs = 0

  /** Reused for every returned sample (hot path): read it before the next takeSample. */
  private readonly sample: RateSample = {
    deliveryRateBytesPerMs: 0,
    intervalMs: 0,
    deliveredBytes: 0,
    priorDelivered: 0,
    isAppLimited: false,
    rttMs: 0,
  }

  /** Total bytes acknowledged so far. */
  get deliveredBytes(): number {
    return this.delivered
  }

  /** True while an application-limited bubble is still in flight. */
  get isAppLimited(): boolean {
    return this.appLimitedUntil !== 0
  }

  onPacketSent(nowMs: number, bytesInFlightBefore: number, packet: RatePacketState): void {
    if (bytesInFlightBefore === 0) {
      // Restart the clocks after idle so the idle time does not count as an interval.
      this.firstSentTimeMs = nowMs
      this.deliveredTimeMs = nowMs
    }
    packet.delivered = this.delivered
    packet.deliveredTimeMs = this.deliveredTimeMs
    packet.firstSentTimeMs = this.firstSentTimeMs
    packet.isAppLimited = this.appLimitedUntil !== 0
  }

  onPacketAcked(nowMs: number, packet: RatePacketState): void {
    this.delivered += packet.sizeBytes
    this.deliveredTimeMs = nowMs
    // The newest packet (latest send time; ties broken by the delivered stamp) defines the
    // sample, so the result does not depend on the order packets are reported in.
    if (
      !this.hasData ||
      packet.sentTimeMs > this.newestSentTimeMs ||
      (packet.sentTimeMs === this.newestSentTimeMs && packet.delivered >= this.priorDelivered)
    ) {
      this.hasData = true
      this.priorDelivered = packet.delivered
      this.priorTimeMs = packet.deliveredTimeMs
      this.sampleAppLimited = packet.isAppLimited
      this.sendElapsedMs = packet.sentTimeMs - packet.firstSentTimeMs
      this.newestSentTimeMs = packet.sentTimeMs
      this.sampleRttMs = nowMs - packet.sentTimeMs
      this.firstSentTimeMs = packet.sentTimeMs
    }
    this.ackElapsedMs = this.deliveredTimeMs - this.priorTimeMs
  }

  /**
   * Finishes the sample for this ACK frame. Returns undefined when nothing was acked or the
   * interval is not trustworthy (shorter than the minimum RTT, or zero). The returned
   * object is reused by the next call.
   */
  takeSample(_nowMs: number): RateSample | undefined {
    // The bubble has been delivered: later samples reflect the network again.
    if (this.appLimitedUntil !== 0 && this.delivered > this.appLimitedUntil) this.appLimitedUntil = 0
    if (!this.hasData) return undefined
    this.hasData = false
    if (this.sampleRttMs < this.minRttMs) this.minRttMs = this.sampleRttMs
    const intervalMs = this.sendElapsedMs > this.ackElapsedMs ? this.sendElapsedMs : this.ackElapsedMs
    if (intervalMs <= 0 || intervalMs < this.minRttMs) return undefined
    const s = this.sample
    s.intervalMs = intervalMs
    s.deliveredBytes = this.delivered - this.priorDelivered
    s.deliveryRateBytesPerMs = s.deliveredBytes / intervalMs
    s.priorDelivered = this.priorDelivered
    s.isAppLimited = this.sampleAppLimited
    s.rttMs = this.sampleRttMs
    return s
  }

  /** The sender ran out of data with window to spare: mark the bubble now in flight. */
  onAppLimited(bytesInFlight: number): void {
    const until = this.delivered + bytesInFlight
    this.appLimitedUntil = until > 0 ? until : 1
  }
}
