/**
 * Minimal ack-clocked driver for window tests: no bottleneck, every packet is acked exactly
 * one RTT after it was sent, and each ack refills the window (a backlogged sender).
 */
import type { CongestionController } from '../../src/core/cc/controller.js'

export class AckClock {
  nowMs: number
  bytesInFlight = 0
  private sentTimes: number[] = []
  private head = 0
  private nextPacketNumber = 0

  constructor(
    readonly cc: CongestionController,
    readonly mss: number,
    public rttMs: number,
    startMs = 0,
  ) {
    this.nowMs = startMs
    this.fill()
  }

  /** Sends as many packets as the window allows at the current time. */
  fill(): void {
    while (this.bytesInFlight + this.mss <= this.cc.congestionWindowBytes) {
      this.sentTimes.push(this.nowMs)
      this.bytesInFlight += this.mss
      this.cc.onPacketSent(this.nowMs, { packetNumber: this.nextPacketNumber++, sentTimeMs: this.nowMs, sizeBytes: this.mss }, this.bytesInFlight)
    }
  }

  /** Delivers every ack due up to and including `untilMs`. */
  runUntil(untilMs: number, onAck?: (nowMs: number) => void): void {
    while (this.head < this.sentTimes.length && this.sentTimes[this.head] + this.rttMs <= untilMs) {
      const sentTimeMs = this.sentTimes[this.head++]
      this.nowMs = sentTimeMs + this.rttMs
      this.bytesInFlight -= this.mss
      this.cc.onAck(this.nowMs, {
        ackedBytes: this.mss,
        largestAckedSentTimeMs: sentTimeMs,
        latestRttMs: this.rttMs,
        smoothedRttMs: this.rttMs,
        minRttMs: this.rttMs,
        bytesInFlight: this.bytesInFlight,
      })
      onAck?.(this.nowMs)
      this.fill()
    }
    if (this.head > 100_000) {
      this.sentTimes = this.sentTimes.slice(this.head)
      this.head = 0
    }
    this.nowMs = untilMs
  }

  /** Declares the oldest packet in flight lost (it never gets acked). */
  loseOldest(persistentCongestion = false): void {
    const sentTimeMs = this.sentTimes[this.head++]
    this.bytesInFlight -= this.mss
    this.cc.onLoss(this.nowMs, { lostBytes: this.mss, largestLostSentTimeMs: sentTimeMs, persistentCongestion, bytesInFlight: this.bytesInFlight })
  }
}
