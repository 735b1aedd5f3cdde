/**
 * RTT estimator (RFC 6298 smoothing as specified for QUIC in RFC 9002 §5).
 * Samples come only from newly acknowledged, ack-eliciting packets that were the
 * largest acknowledged in their ACK frame, so retransmissions never give ambiguous samples.
 */
export interface RttEstimatorOptions {
  initialRttMs: number
  /** The peer's promised upper bound on the ACK delay it adds. */
  maxAckDelayMs: number
}

export class RttEstimator {
  latestRttMs: number
  smoothedRttMs: number
  rttVarianceMs: number
  minRttMs = Infinity
  hasSample = false
  maxAckDelayMs: number

  constructor(opts: RttEstimatorOptions) {
    this.latestRttMs = opts.initialRttMs
    this.smoothedRttMs = opts.initialRttMs
    this.rttVarianceMs = opts.initialRttMs / 2
    this.maxAckDelayMs = opts.maxAckDelayMs
  }

  /**
   * @param rttSampleMs time from sending the largest newly acked packet to receiving its ACK
   * @param ackDelayMs delay the peer reported holding the ACK back
   */
  update(rttSampleMs: number, ackDelayMs: number): void {
    const sample = Math.max(rttSampleMs, 0.001)
    this.latestRttMs = sample
    if (sample < this.minRttMs) this.minRttMs = sample
    if (!this.hasSample) {
      this.hasSample = true
      this.smoothedRttMs = sample
      this.rttVarianceMs = sample / 2
      return
    }
    // Subtract the peer's ack delay only if that does not go below the path's min RTT.
    const delay = Math.min(ackDelayMs, this.maxAckDelayMs)
    const adjusted = sample - delay >= this.minRttMs ? sample - delay : sample
    this.rttVarianceMs = 0.75 * this.rttVarianceMs + 0.25 * Math.abs(this.smoothedRttMs - adjusted)
    this.smoothedRttMs = 0.875 * this.smoothedRttMs + 0.125 * adjusted
  }

  /** Base probe timeout before backoff (RFC 9002 §6.2.1). */
  probeTimeoutMs(granularityMs: number): number {
    return this.smoothedRttMs + Math.max(4 * this.rttVarianceMs, granularityMs) + this.maxAckDelayMs
  }

  /** Time-threshold loss delay: 9/8 of the larger of smoothed and latest RTT (RFC 9002 §6.1.2). */
  lossDelayMs(granularityMs: number): number {
    return Math.max((9 / 8) * Math.max(this.smoothedRttMs, this.latestRttMs), granularityMs)
  }
}
