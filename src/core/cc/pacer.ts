/**
 * Token-bucket pacer. Tokens (bytes) accrue at the pacing rate up to the bucket capacity;
 * a packet may go when the bucket holds its size (or the whole capacity, for packets larger
 * than the bucket). Sending may drive the bucket negative, so the long-run rate stays exact
 * even when the caller wakes up late or sends oversized packets.
 *
 * Capacity = max(maxBurstBytes, rate * burstIntervalMs): a small burst after idle at low
 * rates, and at high rates enough tokens that a ~1 ms timer can still keep up.
 */

export interface PacerOptions {
  /** Burst allowed after idle at low rates (e.g. 10 * maxDatagramBytes). */
  maxBurstBytes: number
  /** At high rates the bucket holds this much time's worth of bytes. Default 2 ms. */
  burstIntervalMs?: number
}

/** Slack so that waking at the returned time never spins on rounding error (the time may be
 * ~1e9 ms, where one ulp is ~1e-7 ms). The debt is repaid by later sends, so the long-run
 * rate stays exact. */
const TOLERANCE_BYTES = 0.5

export class Pacer {
  private readonly maxBurstBytes: number
  private readonly burstIntervalMs: number
  private tokensBytes: number
  private lastUpdateMs = -Infinity

  constructor(opts: PacerOptions) {
    if (!(opts.maxBurstBytes > 0)) throw new RangeError('maxBurstBytes must be > 0')
    this.maxBurstBytes = opts.maxBurstBytes
    this.burstIntervalMs = opts.burstIntervalMs ?? 2
    this.tokensBytes = opts.maxBurstBytes
  }

  /** Bucket capacity at the given rate. */
  capacityBytes(rateBytesPerMs: number): number {
    const byRate = rateBytesPerMs * this.burstIntervalMs
    return byRate > this.maxBurstBytes ? byRate : this.maxBurstBytes
  }

  /** nowMs when a packet of this size may be sent now, else the time it may be sent. */
  earliestSendTimeMs(nowMs: number, sizeBytes: number, rateBytesPerMs: number): number {
    if (!(rateBytesPerMs < Infinity)) return nowMs
    if (!(rateBytesPerMs > 0)) return Infinity
    const capacity = this.capacityBytes(rateBytesPerMs)
    this.refill(nowMs, rateBytesPerMs, capacity)
    const needed = sizeBytes < capacity ? sizeBytes : capacity
    if (this.tokensBytes >= needed - TOLERANCE_BYTES) return nowMs
    return nowMs + (needed - this.tokensBytes) / rateBytesPerMs
  }

  onPacketSent(nowMs: number, sizeBytes: number, rateBytesPerMs: number): void {
    if (!(rateBytesPerMs < Infinity)) {
      // Unpaced: keep the bucket full so pacing resumes with a burst, not a stall.
      this.tokensBytes = this.maxBurstBytes
      this.lastUpdateMs = nowMs
      return
    }
    this.refill(nowMs, rateBytesPerMs, this.capacityBytes(rateBytesPerMs))
    this.tokensBytes -= sizeBytes
  }

  /** Tokens currently in the bucket (may be negative after oversized sends). */
  get availableBytes(): number {
    return this.tokensBytes
  }

  private refill(nowMs: number, rateBytesPerMs: number, capacity: number): void {
    if (nowMs > this.lastUpdateMs) {
      // Multiply the elapsed time once instead of summing small increments: no drift.
      const elapsedMs = nowMs - this.lastUpdateMs
      const tokens = elapsedMs === Infinity ? capacity : this.tokensBytes + elapsedMs * rateBytesPerMs
      this.tokensBytes = tokens < capacity ? tokens : capacity
      this.lastUpdateMs = nowMs
    } else if (this.tokensBytes > capacity) {
      this.tokensBytes = capacity
    }
  }
}
