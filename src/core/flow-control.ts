/**
 * Credit-based flow control, one instance per direction and scope (session or stream).
 *
 * Units are "flow cost": the bytes of message data plus MESSAGE_FLOW_OVERHEAD_BYTES for
 * each message the first time any of its fragments is sent, so that a flood of empty
 * messages is bounded too. Both sides charge identically; ABANDON carries the cost the
 * sender charged for a message it gave up on, so the receiver can release it.
 * Realtime streams are not flow controlled (their receive buffers are bounded instead).
 */
export const MESSAGE_FLOW_OVERHEAD_BYTES = 32

/** Sender side: how much the peer lets us send. */
export class SendCredit {
  /** Cumulative credit granted by the peer (MAX_DATA / MAX_STREAM_DATA). */
  maxBytes: number
  /** Cumulative cost charged so far. */
  chargedBytes = 0
  /** Limit value we last reported as blocked on (to send *_BLOCKED once per limit). */
  blockedReportedAt = -1

  constructor(initialMaxBytes: number) {
    this.maxBytes = initialMaxBytes
  }

  available(): number {
    return this.maxBytes - this.chargedBytes
  }

  /** Raise the limit; credit never shrinks (stale, reordered updates are ignored). */
  update(maxBytes: number): boolean {
    if (maxBytes <= this.maxBytes) return false
    this.maxBytes = maxBytes
    return true
  }
}

/** Receiver side: what we granted, what the peer has used, when to grant more. */
export class RecvCredit {
  readonly windowBytes: number
  /** Cumulative credit we have advertised. */
  maxGrantedBytes: number
  /** Cost of data already delivered to the application or abandoned by the sender. */
  consumedBytes = 0
  /** Cost of data held in reassembly / reorder buffers. */
  bufferedBytes = 0

  constructor(windowBytes: number) {
    this.windowBytes = windowBytes
    this.maxGrantedBytes = windowBytes
  }

  /** Peer used `cost` more; false means it exceeded the credit (FLOW_CONTROL_ERROR). */
  charge(cost: number): boolean {
    this.bufferedBytes += cost
    return this.consumedBytes + this.bufferedBytes <= this.maxGrantedBytes
  }

  /**
   * A message left the buffer: `bufferedCost` was charged while it was held,
   * `totalCost` is what the sender charged for it in all.
   */
  consume(bufferedCost: number, totalCost: number): void {
    this.bufferedBytes -= bufferedCost
    this.consumedBytes += totalCost
  }

  /** A new limit to advertise once half the window has been used, else undefined. */
  nextGrant(): number | undefined {
    const target = this.consumedBytes + this.windowBytes
    return target - this.maxGrantedBytes >= this.windowBytes / 2 ? target : undefined
  }

  /** On a BLOCKED signal: any credit we could grant beyond the current limit. */
  grantOnBlocked(): number | undefined {
    const target = this.consumedBytes + this.windowBytes
    return target > this.maxGrantedBytes ? target : undefined
  }

  markGranted(maxBytes: number): void {
    if (maxBytes > this.maxGrantedBytes) this.maxGrantedBytes = maxBytes
  }
}
