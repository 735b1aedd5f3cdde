import { MESSAGE_FLOW_OVERHEAD_BYTES, SendCredit } from '../flow-control.js'
import { MessageState, type OutboundMessage } from './outbound-message.js'
import { StreamKind, defaultPriorityOf, streamKindOf } from './stream-kind.js'

/** A fragment chosen for the next packet. */
export interface FragmentChoice {
  msg: OutboundMessage
  frag: number
  /** First transmission (charges flow control) or a retransmission. */
  isRetransmission: boolean
}

export interface PendingAbandon {
  seq: number
  flowCost: number
}

/**
 * Outbound half of one stream: the queue of first transmissions, the queue of lost
 * fragments to resend, and the messages not yet acknowledged (for expiry).
 */
export class SendStream {
  readonly id: number
  readonly kind: number
  readonly priority: number
  /** Null for realtime streams, which are not flow controlled. */
  readonly credit: SendCredit | null
  nextSeq = 0
  /** Messages with fragments never sent yet, FIFO from `queueHead`. */
  private queue: OutboundMessage[] = []
  private queueHead = 0
  /** Lost fragments to resend: msg, frag pairs flattened. */
  private retx: Array<OutboundMessage | number> = []
  /** Messages neither acked nor abandoned, in seq order (pruned lazily from the front). */
  live: OutboundMessage[] = []
  private liveHead = 0
  abandons: PendingAbandon[] = []

  constructor(opts: { id: number; initialMaxBytes: number; priority?: number }) {
    this.id = opts.id
    this.kind = streamKindOf(opts.id)
    this.priority = opts.priority ?? defaultPriorityOf(opts.id)
    this.credit = this.kind === StreamKind.realtime ? null : new SendCredit(opts.initialMaxBytes)
  }

  enqueue(msg: OutboundMessage): void {
    this.queue.push(msg)
    this.live.push(msg)
    this.nextSeq++
  }

  get hasWork(): boolean {
    return this.retx.length > 0 || this.queueHead < this.queue.length || this.abandons.length > 0
  }

  /**
   * Queue a lost fragment for retransmission (ignored if acked, dead or already queued).
   * `copies` > 1 sends it again in that many separate packets.
   */
  requeue(msg: OutboundMessage, frag: number, copies = 1): boolean {
    if (msg.state !== MessageState.live || msg.isAcked(frag) || msg.isPending(frag)) return false
    msg.setPending(frag, true)
    for (let i = 0; i < copies; i++) this.retx.push(msg, frag)
    return true
  }

  /**
   * The next fragment to send, given the session credit left and whether a fragment of
   * `maxDataBytes` could fit. Retransmissions first (they were charged already).
   */
  peek(sessionCreditLeft: number): FragmentChoice | undefined {
    while (this.retx.length > 0) {
      const msg = this.retx[0] as OutboundMessage
      const frag = this.retx[1] as number
      if (msg.state === MessageState.live && !msg.isAcked(frag)) return { msg, frag, isRetransmission: true }
      this.retx.splice(0, 2)
      if (msg.state === MessageState.live) msg.setPending(frag, false)
    }
    while (this.queueHead < this.queue.length) {
      const msg = this.queue[this.queueHead]
      if (msg.state !== MessageState.live || msg.nextFirstSend >= msg.fragCount) {
        this.advanceQueue()
        continue
      }
      if (msg.chargedBytes === 0 && this.credit !== null) {
        const cost = msg.msgLength + MESSAGE_FLOW_OVERHEAD_BYTES
        if (cost > this.credit.available() || cost > sessionCreditLeft) return undefined
      }
      return { msg, frag: msg.nextFirstSend, isRetransmission: false }
    }
    return undefined
  }

  /** Commit a choice returned by peek(); returns the flow cost newly charged. */
  commit(choice: FragmentChoice): number {
    const msg = choice.msg
    if (choice.isRetransmission) {
      this.retx.splice(0, 2)
      msg.setPending(choice.frag, false)
      return 0
    }
    msg.nextFirstSend++
    if (msg.nextFirstSend >= msg.fragCount) this.advanceQueue()
    if (msg.chargedBytes !== 0 || this.credit === null) return 0
    const cost = msg.msgLength + MESSAGE_FLOW_OVERHEAD_BYTES
    msg.chargedBytes = cost
    this.credit.chargedBytes += cost
    return cost
  }

  /** Whether the head message waits for stream-level credit (for STREAM_DATA_BLOCKED). */
  blockedOnStreamCredit(): boolean {
    if (this.credit === null || this.retx.length > 0 || this.queueHead >= this.queue.length) return false
    const msg = this.queue[this.queueHead]
    return msg.chargedBytes === 0 && msg.msgLength + MESSAGE_FLOW_OVERHEAD_BYTES > this.credit.available()
  }

  private advanceQueue(): void {
    this.queueHead++
    if (this.queueHead > 64 && this.queueHead * 2 > this.queue.length) {
      this.queue.splice(0, this.queueHead)
      this.queueHead = 0
    }
  }

  /** Drop finished messages from the front of `live`. */
  pruneLive(): void {
    while (this.liveHead < this.live.length && this.live[this.liveHead].state !== MessageState.live) this.liveHead++
    if (this.liveHead > 32 && this.liveHead * 2 > this.live.length) {
      this.live.splice(0, this.liveHead)
      this.liveHead = 0
    } else if (this.liveHead === this.live.length) {
      this.live.length = 0
      this.liveHead = 0
    }
  }

  /**
   * Nothing queued, in flight or owed: let go of the queues' storage and of the messages
   * already sent (the queue keeps them until it is trimmed). Called when the session
   * hibernates: an idle session's memory counts.
   */
  compact(): void {
    if (this.hasWork || this.liveCount > 0) return
    // Fresh arrays rather than length = 0, which may keep the old backing stores.
    if (this.queue.length > 0) this.queue = []
    this.queueHead = 0
    if (this.live.length > 0) this.live = []
    this.liveHead = 0
  }

  /** Messages not yet acked or abandoned (view from the live head). */
  liveMessages(): OutboundMessage[] {
    return this.liveHead === 0 ? this.live : this.live.slice(this.liveHead)
  }

  get liveCount(): number {
    return this.live.length - this.liveHead
  }

  /** Messages the stream still references, sent and acknowledged ones included (memory tests). */
  get heldMessages(): number {
    return this.queue.length + this.live.length
  }

  get queuedFirstSends(): number {
    return this.queue.length - this.queueHead
  }

  get retransmitQueueLength(): number {
    return this.retx.length >> 1
  }
}
