import { RangeSet } from '../range-set.js'

/**
 * Receiver side of acknowledgements: which packet numbers arrived, and when an ACK
 * is due. Policy (RFC 9000 §13.2 flavoured for chat): acknowledge at once when a
 * packet arrives out of order, when two ack-eliciting packets are unacknowledged or
 * when a packet carries nothing ack-eliciting but PING (keepalives and probes),
 * otherwise within maxAckDelayMs, and piggyback on any packet we send anyway.
 */
export interface AckTrackerOptions {
  maxAckDelayMs: number
  /** Ack-eliciting packets that trigger an immediate ACK. */
  ackElicitingThreshold: number
  /** Ranges kept (and so reported) at most. */
  maxAckRanges: number
}

/** How soon a received packet must be acknowledged. */
export const AckUrgency = {
  /** Not ack-eliciting: reported with the next ACK we send anyway. */
  none: 0,
  /** Within maxAckDelayMs, or at once when out of order or over the threshold. */
  delayed: 1,
  /** At once (a packet whose only ack-eliciting frame is PING). */
  immediate: 2,
} as const
export type AckUrgency = (typeof AckUrgency)[keyof typeof AckUrgency]

export class AckTracker {
  readonly received = new RangeSet()
  largestReceived = -1
  largestReceivedTimeMs = 0
  /** An ACK frame should go out (received something not yet acknowledged). */
  ackPending = false
  /** Absolute time the pending ACK must be sent by; Infinity when not ack-eliciting. */
  ackDeadlineMs = Infinity
  private ackElicitingSinceAck = 0
  /** Held by reference (sessions pass their shared config). */
  private readonly opts: AckTrackerOptions

  constructor(opts: AckTrackerOptions) {
    this.opts = opts
  }

  /** True when the packet number was already received (a duplicate). */
  isDuplicate(packetNumber: number): boolean {
    return this.received.has(packetNumber)
  }

  onPacketReceived(nowMs: number, packetNumber: number, urgency: AckUrgency): void {
    const outOfOrder = packetNumber !== this.largestReceived + 1 && this.largestReceived >= 0
    this.received.add(packetNumber)
    if (this.received.rangeCount > this.opts.maxAckRanges) this.received.truncateToNewest(this.opts.maxAckRanges)
    if (packetNumber > this.largestReceived) {
      this.largestReceived = packetNumber
      this.largestReceivedTimeMs = nowMs
    }
    // Packets that carry only ACKs are never acknowledged on their own (no ACK ping-pong);
    // they are reported with the next ACK we send anyway.
    if (urgency === AckUrgency.none) return
    this.ackPending = true
    this.ackElicitingSinceAck++
    if (urgency === AckUrgency.immediate || outOfOrder || this.ackElicitingSinceAck >= this.opts.ackElicitingThreshold) this.ackDeadlineMs = nowMs
    else if (this.ackDeadlineMs === Infinity) this.ackDeadlineMs = nowMs + this.opts.maxAckDelayMs
  }

  /** Whether a standalone ACK must be sent now. */
  ackDue(nowMs: number): boolean {
    return this.ackPending && nowMs >= this.ackDeadlineMs
  }

  /** Ack delay to report for the largest received packet, in microseconds. */
  ackDelayMicros(nowMs: number): number {
    return Math.max(0, Math.round((nowMs - this.largestReceivedTimeMs) * 1000))
  }

  onAckSent(): void {
    this.ackPending = false
    this.ackElicitingSinceAck = 0
    this.ackDeadlineMs = Infinity
  }

  /** The peer has seen an ACK of ours covering up to `largestAcked`: stop repeating it. */
  onAckAcknowledged(largestAcked: number): void {
    this.received.removeBelow(largestAcked + 1)
  }
}
