import { MESSAGE_FLOW_OVERHEAD_BYTES, RecvCredit } from '../flow-control.js'
import { RangeSet } from '../range-set.js'
import { StreamKind, streamKindOf } from './stream-kind.js'

/** A message being reassembled or waiting for its turn. */
interface InboundMessage {
  msgLength: number
  buf: Uint8Array | null
  /** Byte ranges received (only for fragmented messages). */
  got: RangeSet | null
  complete: boolean
  /** Flow cost charged on arrival (0 on realtime streams). */
  chargedBytes: number
}

export interface IncomingFragment {
  seq: number
  msgLength: number
  fragOffset: number
  data: Uint8Array
}

export type FragmentOutcome = 'ok' | 'duplicate' | 'stale' | 'flow-control' | 'evicted'

/** Receiver limits for realtime streams, which are not flow controlled. */
export const REALTIME_MAX_PENDING_MESSAGES = 32
export const REALTIME_MAX_PENDING_BYTES = 256 * 1024
const REALTIME_SEEN_RANGES = 64
/** Abandoned messages the receiver never saw but must account for (ordered streams). */
const MAX_ABANDONED_UNSEEN = 65536

/**
 * Inbound half of one stream: de-duplication, reassembly and delivery by kind.
 * ordered: deliver in sequence, skipping abandoned messages; unordered: deliver each
 * message when complete; realtime: deliver on arrival, drop what is too old.
 */
export class RecvStream {
  readonly id: number
  readonly kind: number
  readonly credit: RecvCredit | null
  /** The session-wide credit, charged and released together with the stream's. */
  private readonly sessionCredit: RecvCredit | null
  /** ordered: next sequence to deliver. */
  nextSeq = 0
  /** unordered/realtime: sequences delivered or abandoned. */
  private done: RangeSet | null = null
  private pending: Map<number, InboundMessage> | null = null
  private pendingBytes = 0
  /** realtime: sequences below this were forgotten (de-duplication state is bounded). */
  private forgottenBelow = 0
  /** ordered: sequences abandoned by the sender ahead of nextSeq, and the cost each carried. */
  private abandoned: RangeSet | null = null
  private abandonedCosts: Map<number, number> | null = null
  deliveredCount = 0

  constructor(opts: { id: number; windowBytes: number; sessionCredit: RecvCredit }) {
    this.id = opts.id
    this.kind = streamKindOf(opts.id)
    const controlled = this.kind !== StreamKind.realtime
    this.credit = controlled ? new RecvCredit(opts.windowBytes) : null
    this.sessionCredit = controlled ? opts.sessionCredit : null
    if (this.kind !== StreamKind.ordered) this.done = new RangeSet()
  }

  get pendingCount(): number {
    return this.pending === null ? 0 : this.pending.size
  }

  /** Accept one fragment; `deliver` is called for each message that becomes deliverable. */
  onFragment(f: IncomingFragment, deliver: (seq: number, data: Uint8Array) => void): FragmentOutcome {
    if (this.isDone(f.seq)) return 'duplicate'
    if (this.kind === StreamKind.realtime && f.seq < this.forgottenBelow) return 'stale'
    let msg = this.pending?.get(f.seq)
    if (msg === undefined) {
      const whole = f.fragOffset === 0 && f.data.length === f.msgLength
      let charged = 0
      if (this.credit !== null) {
        charged = f.msgLength + MESSAGE_FLOW_OVERHEAD_BYTES
        const streamOk = this.credit.charge(charged)
        if (!this.sessionCredit!.charge(charged) || !streamOk) return 'flow-control'
      }
      // Fast path: a whole message that can be delivered right now is never buffered.
      if (whole && (this.kind !== StreamKind.ordered || f.seq === this.nextSeq)) {
        this.finish(f.seq, charged, charged)
        deliver(f.seq, f.data)
        if (this.kind === StreamKind.ordered) this.drainOrdered(deliver)
        return 'ok'
      }
      msg = { msgLength: f.msgLength, buf: null, got: null, complete: false, chargedBytes: charged }
      if (whole) {
        msg.buf = f.data
        msg.complete = true
      } else {
        msg.buf = new Uint8Array(f.msgLength)
        msg.got = new RangeSet()
      }
      if (this.pending === null) this.pending = new Map()
      this.pending.set(f.seq, msg)
      this.pendingBytes += f.msgLength
      if (this.kind === StreamKind.realtime && !this.boundRealtime(f.seq)) return 'evicted'
      if (whole) return this.afterComplete(f.seq, msg, deliver)
    }
    if (msg.complete) return 'duplicate'
    if (f.msgLength !== msg.msgLength) return 'duplicate'
    if (msg.got!.addRange(f.fragOffset, f.fragOffset + f.data.length) === 0) return 'duplicate'
    msg.buf!.set(f.data, f.fragOffset)
    if (msg.got!.min === 0 && msg.got!.rangeCount === 1 && msg.got!.max === msg.msgLength - 1) {
      msg.complete = true
      msg.got = null
      return this.afterComplete(f.seq, msg, deliver)
    }
    return 'ok'
  }

  /**
   * The sender gave up on `seq` after charging `flowCost`. Returns false when the peer
   * piles up more abandoned-but-unseen messages than any honest sender could.
   */
  onAbandon(seq: number, flowCost: number, deliver: (seq: number, data: Uint8Array) => void): boolean {
    if (this.isDone(seq)) return true
    const msg = this.pending?.get(seq)
    const buffered = msg?.chargedBytes ?? 0
    if (msg !== undefined) {
      this.pending!.delete(seq)
      this.pendingBytes -= msg.msgLength
    }
    if (this.kind === StreamKind.ordered) {
      if (this.abandoned === null) this.abandoned = new RangeSet()
      this.abandoned.add(seq)
      if (flowCost > 0) {
        if (this.abandonedCosts === null) this.abandonedCosts = new Map()
        this.abandonedCosts.set(seq, flowCost)
        if (this.abandonedCosts.size > MAX_ABANDONED_UNSEEN) return false
      }
      this.release(buffered, 0)
      this.drainOrdered(deliver)
    } else {
      this.finish(seq, buffered, flowCost)
    }
    return true
  }

  private isDone(seq: number): boolean {
    if (this.kind === StreamKind.ordered) return seq < this.nextSeq || (this.abandoned?.has(seq) ?? false)
    return this.done!.has(seq)
  }

  private afterComplete(seq: number, msg: InboundMessage, deliver: (seq: number, data: Uint8Array) => void): FragmentOutcome {
    if (this.kind === StreamKind.ordered) {
      this.drainOrdered(deliver)
      return 'ok'
    }
    this.pending!.delete(seq)
    this.pendingBytes -= msg.msgLength
    this.finish(seq, msg.chargedBytes, msg.chargedBytes)
    deliver(seq, msg.buf!)
    return 'ok'
  }

  /** Deliver every consecutive complete (or abandoned) message from nextSeq. */
  private drainOrdered(deliver: (seq: number, data: Uint8Array) => void): void {
    for (;;) {
      const seq = this.nextSeq
      if (this.abandoned !== null && this.abandoned.has(seq)) {
        const cost = this.abandonedCosts?.get(seq) ?? 0
        if (cost > 0) this.abandonedCosts!.delete(seq)
        this.release(0, cost)
        this.nextSeq++
        this.abandoned.removeBelow(this.nextSeq)
        continue
      }
      const msg = this.pending?.get(seq)
      if (msg === undefined || !msg.complete) return
      this.pending!.delete(seq)
      this.pendingBytes -= msg.msgLength
      this.finish(seq, msg.chargedBytes, msg.chargedBytes)
      deliver(seq, msg.buf!)
    }
  }

  private finish(seq: number, bufferedCost: number, totalCost: number): void {
    if (this.kind === StreamKind.ordered) this.nextSeq = seq + 1
    else {
      this.done!.add(seq)
      if (this.kind === StreamKind.realtime && this.done!.rangeCount > REALTIME_SEEN_RANGES) {
        this.done!.truncateToNewest(REALTIME_SEEN_RANGES)
        this.forgottenBelow = this.done!.min!
      }
    }
    this.release(bufferedCost, totalCost)
    this.deliveredCount++
  }

  private release(bufferedCost: number, totalCost: number): void {
    if (this.credit === null) return
    this.credit.consume(bufferedCost, totalCost)
    this.sessionCredit!.consume(bufferedCost, totalCost)
  }

  /** Realtime receive buffers are bounded: evict the oldest partial messages. */
  private boundRealtime(newSeq: number): boolean {
    const pending = this.pending!
    while (pending.size > REALTIME_MAX_PENDING_MESSAGES || this.pendingBytes > REALTIME_MAX_PENDING_BYTES) {
      let oldest = Infinity
      for (const seq of pending.keys()) if (seq < oldest) oldest = seq
      const msg = pending.get(oldest)!
      pending.delete(oldest)
      this.pendingBytes -= msg.msgLength
      this.done!.add(oldest)
      if (oldest === newSeq) return false
    }
    return true
  }
}
