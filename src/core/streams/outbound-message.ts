/**
 * One message handed to a send stream, cut into fixed-size fragments at enqueue time
 * so that retransmissions reuse the same boundaries. Per-fragment state is kept in
 * 31-bit masks for small messages and in byte bitmaps for large ones.
 */
export const MessageState = { live: 0, acked: 1, abandoned: 2 } as const
export type MessageState = (typeof MessageState)[keyof typeof MessageState]

const MASK_LIMIT = 31

export class OutboundMessage {
  readonly streamId: number
  readonly seq: number
  data: Uint8Array
  readonly msgLength: number
  readonly expiresAtMs: number
  readonly chunkBytes: number
  readonly fragCount: number
  /** Index of the next fragment never sent yet. */
  nextFirstSend = 0
  ackedCount = 0
  state: MessageState = MessageState.live
  /** Flow-control cost charged (0 until the first fragment is sent). */
  chargedBytes = 0
  private ackedMask = 0
  private pendingMask = 0
  private ackedBits: Uint8Array | null = null
  private pendingBits: Uint8Array | null = null

  constructor(opts: { streamId: number; seq: number; data: Uint8Array; expiresAtMs: number; chunkBytes: number }) {
    this.streamId = opts.streamId
    this.seq = opts.seq
    this.data = opts.data
    this.msgLength = opts.data.length
    this.expiresAtMs = opts.expiresAtMs
    this.chunkBytes = opts.chunkBytes
    this.fragCount = Math.max(1, Math.ceil(opts.data.length / opts.chunkBytes))
    if (this.fragCount > MASK_LIMIT) {
      this.ackedBits = new Uint8Array((this.fragCount + 7) >> 3)
      this.pendingBits = new Uint8Array((this.fragCount + 7) >> 3)
    }
  }

  get isFragmented(): boolean {
    return this.fragCount > 1
  }

  fragOffset(frag: number): number {
    return frag * this.chunkBytes
  }

  fragLength(frag: number): number {
    return Math.min(this.chunkBytes, this.msgLength - frag * this.chunkBytes)
  }

  fragData(frag: number): Uint8Array {
    const start = frag * this.chunkBytes
    return this.data.subarray(start, start + this.fragLength(frag))
  }

  isAcked(frag: number): boolean {
    const bits = this.ackedBits
    return bits === null ? (this.ackedMask & (1 << frag)) !== 0 : (bits[frag >> 3] & (1 << (frag & 7))) !== 0
  }

  /** Mark a fragment acknowledged; true if it was not before. */
  markAcked(frag: number): boolean {
    if (this.isAcked(frag)) return false
    const bits = this.ackedBits
    if (bits === null) this.ackedMask |= 1 << frag
    else bits[frag >> 3] |= 1 << (frag & 7)
    this.ackedCount++
    return true
  }

  isPending(frag: number): boolean {
    const bits = this.pendingBits
    return bits === null ? (this.pendingMask & (1 << frag)) !== 0 : (bits[frag >> 3] & (1 << (frag & 7))) !== 0
  }

  setPending(frag: number, pending: boolean): void {
    const bits = this.pendingBits
    if (bits === null) {
      if (pending) this.pendingMask |= 1 << frag
      else this.pendingMask &= ~(1 << frag)
    } else if (pending) bits[frag >> 3] |= 1 << (frag & 7)
    else bits[frag >> 3] &= ~(1 << (frag & 7))
  }

  get isComplete(): boolean {
    return this.ackedCount === this.fragCount
  }

  /** Drop the payload once it can never be sent again. */
  release(): void {
    this.data = EMPTY
    this.ackedBits = null
    this.pendingBits = null
  }
}

const EMPTY = new Uint8Array(0)
