/**
 * Ack-aggregation estimate for BBR's window headroom: receivers that ack every few packets,
 * delayed acks and link-layer batching deliver acks in bursts, and a window of exactly
 * gain * BDP would then stall the sender between bursts. We track how many bytes were acked
 * beyond what btlBw predicts since the current "aggregation epoch" began, and keep the
 * maximum over the last 5-10 rounds (two alternating 5-round windows).
 */
const WINDOW_ROUNDS = 5
/** Cap on the headroom, in time at btlBw. */
const MAX_HEADROOM_MS = 100

export class AckAggregation {
  private epochStartMs = 0
  private epochAckedBytes = 0
  private readonly maxExtra = [0, 0]
  private index = 0
  private roundsInWindow = 0

  /** Extra bytes the window should allow for ack bursts. */
  headroomBytes(btlBwBytesPerMs: number): number {
    const extra = this.maxExtra[0] > this.maxExtra[1] ? this.maxExtra[0] : this.maxExtra[1]
    const cap = btlBwBytesPerMs * MAX_HEADROOM_MS
    return extra < cap ? extra : cap
  }

  /** Sending resumed after idle: the gap says nothing about aggregation. */
  restart(nowMs: number): void {
    this.epochStartMs = nowMs
    this.epochAckedBytes = 0
  }

  onAck(nowMs: number, ackedBytes: number, btlBwBytesPerMs: number, cwndBytes: number, roundStart: boolean): void {
    if (ackedBytes <= 0 || btlBwBytesPerMs <= 0) return
    if (roundStart && ++this.roundsInWindow >= WINDOW_ROUNDS) {
      this.roundsInWindow = 0
      this.index ^= 1
      this.maxExtra[this.index] = 0
    }
    let expected = btlBwBytesPerMs * (nowMs - this.epochStartMs)
    if (this.epochAckedBytes <= expected) {
      // Acks arrive no faster than the model says: start a new epoch here.
      this.epochAckedBytes = 0
      this.epochStartMs = nowMs
      expected = 0
    }
    this.epochAckedBytes += ackedBytes
    let extra = this.epochAckedBytes - expected
    if (extra > cwndBytes) extra = cwndBytes
    if (extra > this.maxExtra[this.index]) this.maxExtra[this.index] = extra
  }
}
