import type { AckRange } from './ack-range.js'

export const PacketState = { outstanding: 0, acked: 1, lost: 2 } as const

/** Lost packets remembered at most, for persistent-congestion detection. */
const MAX_LOST_KEPT = 1024

/**
 * What we remember about a packet we sent. `records` is whatever the session needs to
 * react to the packet's fate (fragments to resend, control frames to repeat).
 * The delivery-rate fields are stamped by the rate estimator.
 */
export class SentPacket<R> {
  readonly packetNumber: number
  readonly sentTimeMs: number
  readonly sizeBytes: number
  readonly ackEliciting: boolean
  readonly inFlight: boolean
  records: R[] | null
  /** Largest packet number acknowledged by an ACK frame in this packet (-1: none). */
  largestAckedInAck: number
  state: number = PacketState.outstanding
  delivered = 0
  deliveredTimeMs = 0
  firstSentTimeMs = 0
  isAppLimited = false

  constructor(opts: {
    packetNumber: number
    sentTimeMs: number
    sizeBytes: number
    ackEliciting: boolean
    inFlight: boolean
    records: R[] | null
    largestAckedInAck: number
  }) {
    this.packetNumber = opts.packetNumber
    this.sentTimeMs = opts.sentTimeMs
    this.sizeBytes = opts.sizeBytes
    this.ackEliciting = opts.ackEliciting
    this.inFlight = opts.inFlight
    this.records = opts.records
    this.largestAckedInAck = opts.largestAckedInAck
  }
}

export interface AckOutcome<R> {
  newlyAcked: Array<SentPacket<R>>
  /** Largest newly acked packet, if it is the ACK frame's largest (RTT sample source). */
  rttSamplePacket: SentPacket<R> | undefined
}

export interface LossOutcome<R> {
  lost: Array<SentPacket<R>>
  /** Every packet over more than the persistent-congestion duration was lost. */
  persistentCongestion: boolean
}

/**
 * Sent-packet bookkeeping and loss detection (RFC 9002 §6): a packet is lost when a
 * packet sent kPacketThreshold later was acknowledged, or when it was sent more than
 * the loss delay before the newest acknowledged packet's... arrival time check.
 * Packet numbers are consecutive, so a packet's slot is `pn - firstPacketNumber`.
 */
export class SentPacketTracker<R> {
  private slots: Array<SentPacket<R> | undefined> = []
  private head = 0
  private firstPacketNumber = 0
  largestAcked = -1
  bytesInFlight = 0
  ackElicitingInFlight = 0
  /** Earliest time a not-yet-lost packet crosses the time threshold (Infinity: none). */
  lossTimeMs = Infinity
  lastAckElicitingSentMs = 0
  readonly packetThreshold: number

  constructor(opts: { packetThreshold: number }) {
    this.packetThreshold = opts.packetThreshold
  }

  get outstandingCount(): number {
    return this.slots.length - this.head
  }

  onPacketSent(packet: SentPacket<R>): void {
    if (this.slots.length === 0) this.firstPacketNumber = packet.packetNumber
    else if (packet.packetNumber !== this.firstPacketNumber + this.slots.length) {
      throw new Error(`packet numbers must be consecutive: ${packet.packetNumber}`)
    }
    this.slots.push(packet)
    if (packet.inFlight) this.bytesInFlight += packet.sizeBytes
    if (packet.ackEliciting) {
      this.ackElicitingInFlight++
      this.lastAckElicitingSentMs = packet.sentTimeMs
    }
  }

  get(packetNumber: number): SentPacket<R> | undefined {
    const index = packetNumber - this.firstPacketNumber
    const p = index >= this.head && index < this.slots.length ? this.slots[index] : undefined
    return p !== undefined && p.state === PacketState.outstanding ? p : undefined
  }

  /** Mark packets in `ranges` (descending, inclusive) acknowledged. */
  onAck(ranges: readonly AckRange[]): AckOutcome<R> {
    const newlyAcked: Array<SentPacket<R>> = []
    let rttSamplePacket: SentPacket<R> | undefined
    const frameLargest = ranges[0].largest
    for (const range of ranges) {
      const lo = Math.max(range.smallest - this.firstPacketNumber, this.head)
      const hi = Math.min(range.largest - this.firstPacketNumber, this.slots.length - 1)
      for (let i = hi; i >= lo; i--) {
        const p = this.slots[i]
        if (p === undefined || p.state !== PacketState.outstanding) continue
        p.state = PacketState.acked
        this.removeFromFlight(p)
        this.slots[i] = undefined
        newlyAcked.push(p)
        if (p.packetNumber === frameLargest) rttSamplePacket = p
      }
    }
    if (frameLargest > this.largestAcked) this.largestAcked = frameLargest
    this.compact()
    return { newlyAcked, rttSamplePacket }
  }

  /**
   * Declare lost what crossed the packet or time threshold; recompute lossTimeMs.
   * `persistentCongestionMs` is RFC 9002's (srtt + max(4 rttvar, g) + max_ack_delay) * 3.
   */
  detectLosses(nowMs: number, lossDelayMs: number, persistentCongestionMs: number): LossOutcome<R> {
    const lost: Array<SentPacket<R>> = []
    this.lossTimeMs = Infinity
    let persistentCongestion = false
    let runStartMs = -1
    const end = Math.min(this.largestAcked - this.firstPacketNumber, this.slots.length - 1)
    for (let i = this.head; i <= end; i++) {
      const p = this.slots[i]
      if (p === undefined) {
        runStartMs = -1 // an acknowledged packet breaks a run of losses
        continue
      }
      if (p.state === PacketState.lost) {
        // Declared lost earlier: still part of a run of losses (RFC 9002 §7.6.2).
        if (p.ackEliciting && runStartMs < 0) runStartMs = p.sentTimeMs
        continue
      }
      // Compare sentTime + delay with now (not sentTime with now - delay): the timer is
      // armed at exactly sentTime + delay, so the two sides must round identically.
      const lossAtMs = p.sentTimeMs + lossDelayMs
      if (p.packetNumber <= this.largestAcked - this.packetThreshold || lossAtMs <= nowMs) {
        // Lost packets stay in their slot (state lost) until compaction, so a later
        // detection still sees them as part of a loss run.
        p.state = PacketState.lost
        this.removeFromFlight(p)
        if (p.ackEliciting) {
          lost.push(p)
          if (runStartMs < 0) runStartMs = p.sentTimeMs
          else if (p.sentTimeMs - runStartMs > persistentCongestionMs) persistentCongestion = true
        }
      } else if (lossAtMs < this.lossTimeMs) {
        this.lossTimeMs = lossAtMs
      }
    }
    this.compact()
    return { lost, persistentCongestion }
  }

  /** Oldest packets still outstanding and ack-eliciting (for probe retransmissions). */
  oldestAckEliciting(limit: number): Array<SentPacket<R>> {
    const out: Array<SentPacket<R>> = []
    for (let i = this.head; i < this.slots.length && out.length < limit; i++) {
      const p = this.slots[i]
      if (p !== undefined && p.ackEliciting && p.state === PacketState.outstanding) out.push(p)
    }
    return out
  }

  /** Forget everything (session closed): returns the packets still outstanding. */
  drain(): Array<SentPacket<R>> {
    const out: Array<SentPacket<R>> = []
    for (let i = this.head; i < this.slots.length; i++) {
      const p = this.slots[i]
      if (p !== undefined && p.state === PacketState.outstanding) out.push(p)
    }
    this.slots = []
    this.head = 0
    this.bytesInFlight = 0
    this.ackElicitingInFlight = 0
    this.lossTimeMs = Infinity
    return out
  }

  private removeFromFlight(p: SentPacket<R>): void {
    if (p.inFlight) this.bytesInFlight -= p.sizeBytes
    if (p.ackEliciting) this.ackElicitingInFlight--
  }

  private compact(): void {
    const slots = this.slots
    // Drop acknowledged packets (undefined) from the front. A block of lost packets stays
    // while packets after it are outstanding or not yet sent: a later detection may find
    // the run of losses continuing (persistent congestion, RFC 9002 §7.6.2). It goes once
    // an acknowledged packet ends the run, or when it grows past MAX_LOST_KEPT.
    while (this.head < slots.length) {
      const p = slots[this.head]
      if (p === undefined) {
        this.head++
        continue
      }
      if (p.state === PacketState.outstanding) break
      let j = this.head
      while (j < slots.length && slots[j] !== undefined && slots[j]!.state === PacketState.lost) j++
      const runEnded = j < slots.length && slots[j] === undefined
      if (!runEnded && j - this.head <= MAX_LOST_KEPT) break
      this.head = runEnded ? j : j - MAX_LOST_KEPT
    }
    if (this.head === slots.length) {
      this.firstPacketNumber += this.head
      slots.length = 0
      this.head = 0
    } else if (this.head > 256 && this.head * 2 > slots.length) {
      this.firstPacketNumber += this.head
      this.slots = slots.slice(this.head)
      this.head = 0
    }
  }
}
