/**
 * The sending side of ChatClientCore: the outbox (durable, in sending order) and when
 * each SEND goes out.
 *
 * Normally every entry is sent at once (several SENDs outstanding, as the protocol
 * allows). When the server refuses a message for now (RATE_LIMITED with retryRateLimited,
 * INTERNAL_ERROR: "retry later") the message stays, and so that the conversation keeps
 * its order nothing later in the outbox is sent before it: the whole outbox is held
 * until the retry time, then sent again from the oldest entry, in order. The server
 * stores one device's messages in the order it receives them; after a hold the window
 * of SENDs outstanding starts at one (the retried message goes alone, so nothing later
 * can be stored before it if it is refused again) and doubles with each SEND_OK, so a
 * server that accepts again soon gets the outbox at full speed (unlimited again once
 * the outbox is empty), and resending the held entries costs O(n) SENDs, not O(n²).
 * (SENDs already in flight when a refusal arrives are the server's to store or refuse.)
 */
import { encodeChatMessage } from '../protocol/chat-codec.js'
import type { ChatMessage } from '../protocol/chat-types.js'
import { type ClientStateStore, type OutboxEntry, hexId } from './client-state.js'
import { type Cancel, ChatError, type SentInfo } from './chat-error.js'

/** Resend delay after RATE_LIMITED without retryAfterMs. */
export const DEFAULT_RATE_LIMIT_RETRY_MS = 1_000
/** INTERNAL_ERROR without retryAfterMs: the first resend after this, doubling per failed attempt... */
export const INTERNAL_ERROR_RETRY_MS = 1_000
/** ...up to this. */
export const MAX_INTERNAL_ERROR_RETRY_MS = 30_000

export interface OutboxOptions {
  state: ClientStateStore
  nowMs: () => number
  schedule: (fn: () => void, delayMs: number) => Cancel
  /** Transmit one encoded SEND; false when the transport refused (it waits for the next session). */
  transmit: (bytes: Uint8Array) => boolean
  /** RATE_LIMITED keeps the message and retries (otherwise it is refused like any code). */
  retryRateLimited: boolean
}

interface Outgoing {
  entry: OutboxEntry
  waiters: Array<{ resolve: (info: SentInfo) => void; reject: (err: ChatError) => void }>
  /** Sent on this session, no answer yet. The entries in flight are always a prefix of the outbox. */
  inFlight: boolean
  /** The encoded SEND (the same bytes on every retry). */
  bytes?: Uint8Array
}

type Send = Extract<ChatMessage, { type: 'SEND' }>
type SendOk = Extract<ChatMessage, { type: 'SEND_OK' }>
type SendFailed = Extract<ChatMessage, { type: 'SEND_FAILED' }>

export class Outbox {
  private readonly opts: OutboxOptions
  /** By hex clientMsgId, in sending order. */
  private readonly entries = new Map<string, Outgoing>()
  private connected = false
  private inFlightCount = 0
  /** SENDs allowed outstanding: unlimited, or (after a hold) 1 doubling with each SEND_OK. */
  private window = Infinity
  /** A hold is on until holdUntilMs: nothing is transmitted before its timer fires. */
  private holdCancel: Cancel | undefined
  private holdUntilMs = 0
  /** Holds in a row for INTERNAL_ERROR, for the backoff (reset by a SEND_OK). */
  private internalErrorHolds = 0

  constructor(opts: OutboxOptions, stored: OutboxEntry[]) {
    this.opts = opts
    for (const entry of stored) this.entries.set(hexId(entry.clientMsgId), { entry, waiters: [], inFlight: false })
  }

  get size(): number {
    return this.entries.size
  }

  get pending(): OutboxEntry[] {
    return [...this.entries.values()].map((o) => o.entry)
  }

  /** Store the entry durably (it may be transmitted once stored), then send it when its turn comes. */
  add(entry: OutboxEntry, bytes: Uint8Array): Promise<SentInfo> {
    this.opts.state.addOutbox(entry)
    let o: Outgoing | undefined
    const sent = new Promise<SentInfo>((resolve, reject) => {
      o = { entry, waiters: [{ resolve, reject }], inFlight: false, bytes }
      this.entries.set(hexId(entry.clientMsgId), o)
    })
    // Everything before it in flight (the usual case): no need to walk the outbox.
    if (this.inFlightCount === this.entries.size - 1) this.sendNext(o!)
    else this.pump()
    return sent
  }

  /** A new session: everything unanswered is sent again, in order (unless a hold is on). */
  onConnected(): void {
    this.connected = true
    this.clearInFlight()
    this.pump()
  }

  onDisconnected(): void {
    this.connected = false
  }

  /** Every waiting promise rejects with `err`; the entries stay stored. */
  shutdown(err: ChatError): void {
    this.connected = false
    this.holdCancel?.()
    this.holdCancel = undefined
    for (const o of this.entries.values()) for (const w of o.waiters.splice(0)) w.reject(err)
  }

  /** SEND_OK: the entry leaves the outbox; its SentInfo, or undefined for a second answer. */
  acknowledged(m: SendOk): SentInfo | undefined {
    const o = this.remove(m.clientMsgId)
    if (o === undefined) return undefined
    this.internalErrorHolds = 0
    if (this.entries.size === 0) this.window = Infinity
    else if (this.window !== Infinity) this.window *= 2
    const info: SentInfo = { clientMsgId: o.entry.clientMsgId, to: o.entry.to, body: o.entry.body, msgId: m.msgId, version: m.version, sentAtMs: m.sentAtMs }
    for (const w of o.waiters) w.resolve(info)
    this.pump()
    return info
  }

  /**
   * SEND_FAILED: undefined when the message stays (to be sent again); otherwise it has
   * left the outbox and its waiters were rejected with the returned error.
   */
  refused(m: SendFailed): { entry: OutboxEntry; error: ChatError } | undefined {
    const o = this.entries.get(hexId(m.clientMsgId))
    if (o === undefined) return undefined
    // Not logged in: a session problem, not the message's; it is sent again on the next session.
    if (m.code === 'NOT_LOGGED_IN') return undefined
    if (m.code === 'INTERNAL_ERROR') {
      const backoffMs = Math.min(MAX_INTERNAL_ERROR_RETRY_MS, INTERNAL_ERROR_RETRY_MS * 2 ** this.internalErrorHolds)
      if (this.holdCancel === undefined) this.internalErrorHolds++
      this.hold(m.retryAfterMs ?? backoffMs)
      return undefined
    }
    if (m.code === 'RATE_LIMITED' && this.opts.retryRateLimited) {
      this.hold(m.retryAfterMs ?? DEFAULT_RATE_LIMIT_RETRY_MS)
      return undefined
    }
    this.remove(m.clientMsgId)
    const error = new ChatError(m.code, `message refused: ${m.code}${m.retryAfterMs === undefined ? '' : ` (retry after ${m.retryAfterMs} ms)`}`, m.retryAfterMs)
    for (const w of o.waiters) w.reject(error)
    this.pump()
    return { entry: o.entry, error }
  }

  private remove(clientMsgId: Uint8Array): Outgoing | undefined {
    const id = hexId(clientMsgId)
    const o = this.entries.get(id)
    if (o === undefined) return undefined
    this.opts.state.removeOutbox(clientMsgId)
    this.entries.delete(id)
    if (o.inFlight) this.inFlightCount--
    return o
  }

  /**
   * Send nothing before delayMs from now (a hold already on lasts to the later of the two
   * ends), then everything from the oldest entry, one SEND outstanding at first.
   */
  private hold(delayMs: number): void {
    this.window = 1
    this.clearInFlight()
    const untilMs = this.opts.nowMs() + delayMs
    if (this.holdCancel !== undefined) {
      if (this.holdUntilMs >= untilMs) return
      this.holdCancel()
    }
    this.holdUntilMs = untilMs
    this.holdCancel = this.opts.schedule(() => {
      this.holdCancel = undefined
      this.pump()
    }, delayMs)
  }

  /** Forget what is in flight: it is all sent again, in order (the server stores a clientMsgId once). */
  private clearInFlight(): void {
    for (const o of this.entries.values()) o.inFlight = false
    this.inFlightCount = 0
  }

  /** Transmit the next entries in order, as far as the window allows. */
  private pump(): void {
    if (this.inFlightCount >= this.entries.size) return
    for (const o of this.entries.values()) {
      if (!o.inFlight && !this.sendNext(o)) return
    }
  }

  /** Transmit `o`, the oldest entry not in flight, if nothing holds it back; false if not sent. */
  private sendNext(o: Outgoing): boolean {
    if (!this.connected || this.holdCancel !== undefined || this.inFlightCount >= this.window) return false
    o.bytes ??= encodeChatMessage({ type: 'SEND', clientMsgId: o.entry.clientMsgId, to: o.entry.to, body: o.entry.body } satisfies Send)
    if (!this.opts.transmit(o.bytes)) return false
    o.inFlight = true
    this.inFlightCount++
    return true
  }
}
