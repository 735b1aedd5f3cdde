/**
 * The device side of pigeon messaging, independent of the transport: it is given the
 * bytes of each messaging message the server sent on stream 0 (handleMessage) and a
 * function to send its own, and told when the session is logged in (onConnected) and
 * when it is gone (onDisconnected). Time and randomness are injected, so the same code
 * runs over real UDP (chat-client.ts) and on a simulated network in tests.
 *
 * Sending: every message goes to the outbox (durable, ClientStateStore) before it is
 * transmitted, and leaves it on SEND_OK. After a reconnect every outbox entry is sent
 * again, in order, with the same clientMsgId: the server stores each clientMsgId once.
 * A message the server refuses for now (INTERNAL_ERROR; RATE_LIMITED with
 * retryRateLimited) stays, and holds back everything after it until its retry
 * (outbox.ts), so messages are stored in the order they were written.
 *
 * Receiving (push -> sync -> fin): on PUSH beyond the cursor the core sends SYNC from the
 * cursor; each SYNC_BATCH is applied in version order (entries at or below the cursor are
 * ignored, so nothing is emitted twice), 'applied' lets the application make what it
 * stored durable, then the cursor is persisted, FIN reports it, and the core syncs again
 * while the inbox is longer than what it holds.
 *
 * Read receipts (markRead) are stored with the client state until a READ carrying them
 * went out on a logged-in session, so neither a lost session nor a restart loses them.
 *
 * Two shortcuts keep the datagrams per message down, without changing what is delivered:
 * - The server does not PUSH a device its own message's copy: SEND_OK carries that copy's
 *   version. When it is the next version after the cursor (and the core knows who it is
 *   logged in as), the core emits the copy itself and moves the cursor; otherwise SEND_OK
 *   counts as a PUSH and the core syncs.
 * - FIN is sent when the synced entries include a message from someone else (it makes the
 *   server send them "delivered"); a sync of receipts, group events and the device's own
 *   copies is reported by the next FIN instead. The first batch of every session sends
 *   FIN whatever it holds (when the cursor is above 0): the previous session's last FIN
 *   may have been lost with it, or the process may have died between cursor and FIN.
 */
import { EventEmitter } from 'node:events'
import { decodeChatMessage, encodeChatMessage } from '../protocol/chat-codec.js'
import {
  CLIENT_MSG_ID_BYTES,
  type ChatMessage,
  type ChatReply,
  type ChatRequest,
  type ContactSummary,
  type GroupSummary,
  type InboxEntry,
  MAX_BODY_BYTES_ON_WIRE,
  type Peer,
  type UserSummary,
} from '../protocol/chat-types.js'
import { type Cancel, type ChatClientErrorCode, ChatError, type SentInfo } from './chat-error.js'
import type { ClientStateStore, OutboxEntry } from './client-state.js'
import { Outbox } from './outbox.js'

export { type Cancel, type ChatClientErrorCode, ChatError, type SentInfo } from './chat-error.js'

export type MessageEntry = Extract<InboxEntry, { kind: 'message' }>
export type ReceiptEntry = Extract<InboxEntry, { kind: 'receipt' }>
export type GroupEntry = Extract<InboxEntry, { kind: 'group' }>

export interface GroupInfo {
  groupId: number
  name: string
  members: UserSummary[]
}

export type ChatCoreEvents = {
  /** A message entry from the inbox (including copies of one's own messages). */
  message: [entry: MessageEntry]
  /** Delivered / read receipt for a message this user sent. */
  receipt: [entry: ReceiptEntry]
  /** A group event (created, joined, left, renamed). */
  group: [entry: GroupEntry]
  /** SEND_OK: the server stored the message (also for messages left in the outbox by an earlier run). */
  sent: [info: SentInfo]
  /** SEND_FAILED: the message was refused and removed from the outbox. */
  send_failed: [entry: OutboxEntry, error: ChatError]
  presence: [userId: number, online: boolean]
  /**
   * The entries up to `cursor` were emitted; the cursor is saved right after this event.
   * A handler that stores entries makes them durable here (synchronously), so the saved
   * cursor never covers entries the application lost in a crash.
   */
  applied: [cursor: number]
  /** The device holds the whole inbox as the server last described it. */
  synced: [cursor: number]
  /** An undecodable or unexpected message from the server (counted and ignored). */
  protocol_error: [error: Error]
}

export interface ChatClientCoreOptions {
  /** Transmit one messaging message on stream 0 (ordered, reliable). May throw when the session is unusable. */
  send: (bytes: Uint8Array) => void
  state: ClientStateStore
  randomBytes: (n: number) => Uint8Array
  nowMs: () => number
  /** Run fn after delayMs; returns a function that cancels it. Default: setTimeout (unref'd). */
  schedule?: (fn: () => void, delayMs: number) => Cancel
  /** maxEntries of each SYNC. Default 200. */
  syncBatchSize?: number
  /** markRead collects message ids this long before sending one READ. Default 250 ms. */
  readBatchDelayMs?: number
  /**
   * A SYNC unanswered this long no longer blocks the next one: a PUSH then sends SYNC
   * again (the server leaves a SYNC unanswered when its store fails). Default 5 s.
   */
  syncRetryAfterMs?: number
  /**
   * SEND_FAILED with RATE_LIMITED: keep the message in the outbox and send it again after
   * retryAfterMs instead of failing it. Default false (the send promise rejects).
   * (INTERNAL_ERROR is always retried, with a bounded backoff.)
   */
  retryRateLimited?: boolean
}

export const DEFAULT_SYNC_BATCH_SIZE = 200
export const DEFAULT_READ_BATCH_DELAY_MS = 250
export const DEFAULT_SYNC_RETRY_AFTER_MS = 5_000
/** At most this many message ids per READ. */
const MAX_READ_IDS = 1000

const defaultSchedule = (fn: () => void, delayMs: number): Cancel => {
  const t = setTimeout(fn, delayMs)
  t.unref?.()
  return () => clearTimeout(t)
}

interface PendingRequest {
  type: ChatRequest['type']
  resolve: (reply: ChatReply) => void
  reject: (err: ChatError) => void
}

const utf8 = new TextEncoder()

export class ChatClientCore extends EventEmitter<ChatCoreEvents> {
  private readonly opts: Required<Omit<ChatClientCoreOptions, 'state'>> & { state: ClientStateStore }
  private readonly state: ClientStateStore
  private connectedNow = false
  private closed = false
  private cursorNow: number
  private readonly outbox: Outbox
  private syncInFlight = false
  private syncSentAtMs = 0
  /** The highest latestVersion heard of (PUSH or SYNC_BATCH). */
  private latestKnown = 0
  /** A PUSH beyond the cursor arrived while a SYNC was in flight. */
  private pushedDuringSync = false
  /** The cursor last reported with FIN in this session (-1: none yet). */
  private finSent = -1
  /** Who this session is logged in as (onConnected), for the device's own copies. */
  private self: { userId: number; deviceId: number } | undefined
  private nextRequestId = 1
  private readonly pending = new Map<number, PendingRequest>()
  /** Read receipts not yet sent on a logged-in session (also stored: ClientStateStore.addReads). */
  private readonly readQueue = new Set<number>()
  private cancelReadTimer: Cancel | undefined
  private protocolErrorCount = 0

  constructor(options: ChatClientCoreOptions) {
    super()
    // (Options given as undefined take the default too.)
    this.opts = {
      send: options.send,
      state: options.state,
      randomBytes: options.randomBytes,
      nowMs: options.nowMs,
      schedule: options.schedule ?? defaultSchedule,
      syncBatchSize: options.syncBatchSize ?? DEFAULT_SYNC_BATCH_SIZE,
      readBatchDelayMs: options.readBatchDelayMs ?? DEFAULT_READ_BATCH_DELAY_MS,
      syncRetryAfterMs: options.syncRetryAfterMs ?? DEFAULT_SYNC_RETRY_AFTER_MS,
      retryRateLimited: options.retryRateLimited ?? false,
    }
    this.state = options.state
    const loaded = this.state.load()
    this.cursorNow = loaded.cursor
    for (const id of loaded.reads) this.readQueue.add(id)
    this.outbox = new Outbox(
      {
        state: this.state,
        nowMs: this.opts.nowMs,
        schedule: this.opts.schedule,
        transmit: (bytes) => this.transmitBytes(bytes),
        retryRateLimited: this.opts.retryRateLimited,
      },
      loaded.outbox,
    )
  }

  /** The last inbox version this device holds. */
  get cursor(): number {
    return this.cursorNow
  }

  /** Messages not yet acknowledged by the server. */
  get outboxSize(): number {
    return this.outbox.size
  }

  /** The unacknowledged messages, in sending order. */
  get pendingMessages(): OutboxEntry[] {
    return this.outbox.pending
  }

  get connected(): boolean {
    return this.connectedNow
  }

  /** Malformed or unexpected messages received (and ignored). */
  get protocolErrors(): number {
    return this.protocolErrorCount
  }

  /** True when nothing is waiting: outbox empty, no sync in flight, no read receipts queued. */
  get idle(): boolean {
    return this.outbox.size === 0 && !this.syncInFlight && this.readQueue.size === 0 && this.pending.size === 0
  }

  // --- session lifecycle -------------------------------------------------------------

  /**
   * The session is logged in: resend the outbox in order, then sync from the cursor.
   * `self` (the logged-in user and device) lets SEND_OK stand in for syncing the device's
   * own copy of a message; without it the core syncs that copy like any entry.
   */
  onConnected(self?: { userId: number; deviceId: number }): void {
    if (this.closed) return
    this.self = self
    this.connectedNow = true
    this.syncInFlight = false
    this.pushedDuringSync = false
    this.finSent = -1
    this.outbox.onConnected()
    if (!this.connectedNow) return
    this.sync()
    if (this.readQueue.size > 0) this.flushReads()
  }

  /** The session is gone: pending requests fail; the outbox and queued read receipts wait for the next session. */
  onDisconnected(): void {
    if (!this.connectedNow) return
    this.connectedNow = false
    this.syncInFlight = false
    this.outbox.onDisconnected()
    this.rejectPending('DISCONNECTED', 'the session ended before the reply came')
  }

  /** Stop for good: every waiting promise rejects with CLOSED (outbox entries stay stored for the next run). */
  shutdown(): void {
    if (this.closed) return
    this.onDisconnected()
    this.closed = true
    this.cancelReadTimer?.()
    this.cancelReadTimer = undefined
    this.outbox.shutdown(new ChatError('CLOSED', 'the chat client was closed (the message stays in the outbox)'))
  }

  // --- sending -----------------------------------------------------------------------

  /**
   * Send `body` to `to`. The message is stored in the outbox before anything is
   * transmitted; resolves when the server has stored it (SEND_OK), rejects with
   * ChatError when the server refuses it. While disconnected it waits in the outbox.
   */
  send(to: Peer, body: string): Promise<SentInfo> {
    try {
      return this.enqueue(to, body).sent
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /**
   * Like send(), but also tells the message's clientMsgId at once (the copy of the
   * message that comes back through sync carries it). Throws ChatError when the message
   * cannot be sent at all (too large, client closed); `sent` settles as for send().
   */
  enqueue(to: Peer, body: string): { clientMsgId: Uint8Array; sent: Promise<SentInfo> } {
    if (this.closed) throw new ChatError('CLOSED', 'the chat client is closed')
    const size = utf8.encode(body).length
    if (size > MAX_BODY_BYTES_ON_WIRE) throw new ChatError('MESSAGE_TOO_LARGE', `message is ${size} bytes, more than ${MAX_BODY_BYTES_ON_WIRE}`)
    const clientMsgId = this.opts.randomBytes(CLIENT_MSG_ID_BYTES).slice()
    const entry: OutboxEntry = { clientMsgId, to: { ...to }, body, createdAtMs: this.opts.nowMs() }
    let bytes: Uint8Array
    try {
      bytes = encodeChatMessage({ type: 'SEND', clientMsgId, to: entry.to, body })
    } catch (err) {
      throw new ChatError('INVALID_REQUEST', `cannot send this message: ${(err as Error).message}`)
    }
    // Durable first (Outbox.add): once transmitted, the message must survive a crash of this process.
    const sent = this.outbox.add(entry, bytes)
    return { clientMsgId: clientMsgId.slice(), sent }
  }

  /**
   * Report messages as read; collected for readBatchDelayMs and sent as one READ. Stored
   * first (the application may then forget that they were unread): a restart sends them.
   */
  markRead(msgIds: Iterable<number>): void {
    if (this.closed) return
    const added = [...new Set(msgIds)].filter((id) => !this.readQueue.has(id))
    if (added.length > 0) this.state.addReads(added)
    for (const id of added) this.readQueue.add(id)
    if (this.readQueue.size === 0 || this.cancelReadTimer !== undefined) return
    this.cancelReadTimer = this.opts.schedule(() => {
      this.cancelReadTimer = undefined
      this.flushReads()
    }, this.opts.readBatchDelayMs)
  }

  /** Send the queued read receipts now (when connected; otherwise they wait for the next session). */
  flushReads(): void {
    this.cancelReadTimer?.()
    this.cancelReadTimer = undefined
    if (!this.connectedNow || this.readQueue.size === 0) return
    const ids = [...this.readQueue].sort((a, b) => a - b)
    for (let i = 0; i < ids.length; i += MAX_READ_IDS) {
      const chunk = ids.slice(i, i + MAX_READ_IDS)
      if (!this.transmit({ type: 'READ', msgIds: chunk })) return
      // Out on a logged-in session: forgotten (at least once; the server ignores repeats).
      for (const id of chunk) this.readQueue.delete(id)
      this.state.removeReads(chunk)
    }
  }

  // --- requests ----------------------------------------------------------------------

  contactAdd(username: string): Promise<void> {
    return this.request({ type: 'CONTACT_ADD', requestId: 0, username }, 'OK').then(() => undefined)
  }

  contactRemove(username: string): Promise<void> {
    return this.request({ type: 'CONTACT_REMOVE', requestId: 0, username }, 'OK').then(() => undefined)
  }

  contactList(): Promise<ContactSummary[]> {
    return this.request({ type: 'CONTACT_LIST', requestId: 0 }, 'CONTACTS').then((r) => r.contacts)
  }

  /** Create a group with the given members (besides oneself). */
  groupCreate(name: string, usernames: string[]): Promise<GroupInfo> {
    return this.request({ type: 'GROUP_CREATE', requestId: 0, name, usernames }, 'GROUP').then(groupInfo)
  }

  groupInvite(groupId: number, username: string): Promise<void> {
    return this.request({ type: 'GROUP_INVITE', requestId: 0, groupId, username }, 'OK', 'GROUP').then(() => undefined)
  }

  groupLeave(groupId: number): Promise<void> {
    return this.request({ type: 'GROUP_LEAVE', requestId: 0, groupId }, 'OK', 'GROUP').then(() => undefined)
  }

  groupRename(groupId: number, name: string): Promise<void> {
    return this.request({ type: 'GROUP_RENAME', requestId: 0, groupId, name }, 'OK', 'GROUP').then(() => undefined)
  }

  groupMembers(groupId: number): Promise<GroupInfo> {
    return this.request({ type: 'GROUP_MEMBERS', requestId: 0, groupId }, 'GROUP').then(groupInfo)
  }

  groupList(): Promise<GroupSummary[]> {
    return this.request({ type: 'GROUP_LIST', requestId: 0 }, 'GROUPS').then((r) => r.groups)
  }

  userLookup(userIds: number[]): Promise<UserSummary[]> {
    return this.request({ type: 'USER_LOOKUP', requestId: 0, userIds }, 'USERS').then((r) => r.users)
  }

  /** Users by name (unknown names are left out). */
  userFind(usernames: string[]): Promise<UserSummary[]> {
    return this.request({ type: 'USER_FIND', requestId: 0, usernames }, 'USERS').then((r) => r.users)
  }

  /** Send a request with a fresh requestId; resolves with its reply when the reply is of an expected type. */
  private request<T extends Exclude<ChatReply['type'], 'ERROR'>>(msg: ChatRequest, ...expect: T[]): Promise<Extract<ChatReply, { type: T }>> {
    if (this.closed) return Promise.reject(new ChatError('CLOSED', 'the chat client is closed'))
    if (!this.connectedNow) return Promise.reject(new ChatError('NOT_CONNECTED', 'not connected to the server'))
    const requestId = this.nextRequestId++
    let bytes: Uint8Array
    try {
      bytes = encodeChatMessage({ ...msg, requestId })
    } catch (err) {
      return Promise.reject(new ChatError('INVALID_REQUEST', `${msg.type}: ${(err as Error).message}`))
    }
    return new Promise((resolve, reject) => {
      this.pending.set(requestId, {
        type: msg.type,
        resolve: (reply) => {
          if (reply.type === 'ERROR') reject(new ChatError(reply.code, reply.message || reply.code))
          else if ((expect as string[]).includes(reply.type)) resolve(reply as Extract<ChatReply, { type: T }>)
          else reject(new ChatError('UNEXPECTED_REPLY', `${msg.type} answered with ${reply.type}`))
        },
        reject,
      })
      if (!this.transmitBytes(bytes)) {
        this.pending.delete(requestId)
        reject(new ChatError('DISCONNECTED', 'the session could not carry the request'))
      }
    })
  }

  private rejectPending(code: ChatClientErrorCode, message: string): void {
    const waiting = [...this.pending.values()]
    this.pending.clear()
    for (const p of waiting) p.reject(new ChatError(code, `${p.type}: ${message}`))
  }

  // --- receiving ---------------------------------------------------------------------

  /** One messaging message from the server (stream 0). Malformed input is counted and ignored. */
  handleMessage(bytes: Uint8Array): void {
    let m: ChatMessage
    try {
      m = decodeChatMessage(bytes)
    } catch (err) {
      this.protocolError(err instanceof Error ? err : new Error(String(err)))
      return
    }
    switch (m.type) {
      case 'PUSH':
        return this.onPush(m.latestVersion)
      case 'SYNC_BATCH':
        return this.onSyncBatch(m)
      case 'SEND_OK':
        return this.onSendOk(m)
      case 'SEND_FAILED':
        return this.onSendFailed(m)
      case 'PRESENCE':
        this.emit('presence', m.userId, m.online)
        return
      case 'OK':
      case 'ERROR':
      case 'CONTACTS':
      case 'GROUP':
      case 'GROUPS':
      case 'USERS': {
        const p = this.pending.get(m.requestId)
        if (p === undefined) return this.protocolError(new Error(`${m.type} for unknown requestId ${m.requestId}`))
        this.pending.delete(m.requestId)
        p.resolve(m)
        return
      }
      default:
        return this.protocolError(new Error(`unexpected ${m.type} from the server`))
    }
  }

  private protocolError(err: Error): void {
    this.protocolErrorCount++
    this.emit('protocol_error', err)
  }

  private onPush(latestVersion: number): void {
    if (latestVersion > this.latestKnown) this.latestKnown = latestVersion
    if (latestVersion <= this.cursorNow) return
    if (this.syncInFlight && this.opts.nowMs() - this.syncSentAtMs >= this.opts.syncRetryAfterMs) this.syncInFlight = false
    if (this.syncInFlight) this.pushedDuringSync = true
    else if (this.connectedNow) this.sync()
  }

  private onSyncBatch(m: Extract<ChatMessage, { type: 'SYNC_BATCH' }>): void {
    if (!this.syncInFlight) {
      // Not ours (a reply to a SYNC of an earlier session): its entries are still good.
      if (m.entries.length === 0) return
    }
    this.syncInFlight = false
    if (m.latestVersion > this.latestKnown) this.latestKnown = m.latestVersion
    const before = this.cursorNow
    let fromOthers = false
    for (const entry of m.entries) {
      if (entry.version <= this.cursorNow) continue
      this.cursorNow = entry.version
      switch (entry.kind) {
        case 'message':
          if (entry.fromUserId !== this.self?.userId) fromOthers = true
          this.emit('message', entry)
          break
        case 'receipt':
          this.emit('receipt', entry)
          break
        case 'group':
          this.emit('group', entry)
          break
      }
    }
    // An empty answer to the SYNC from here: nothing up to latestVersion is left to receive
    // (pruned, or passed over as too large for this device), so the device holds it.
    if (m.entries.length === 0 && m.afterVersion === before && m.latestVersion > before) this.cursorNow = m.latestVersion
    const progressed = this.cursorNow > before
    if (progressed) {
      this.emit('applied', this.cursorNow)
      this.state.saveCursor(this.cursorNow)
    }
    if (!this.connectedNow) return
    // The first FIN of a session goes out whatever the batch held (see the top comment).
    const finDue = fromOthers || this.self === undefined || this.finSent < 0
    if (finDue && this.cursorNow > 0 && this.cursorNow > this.finSent) {
      if (this.transmit({ type: 'FIN', version: this.cursorNow })) this.finSent = this.cursorNow
    }
    const pushed = this.pushedDuringSync
    this.pushedDuringSync = false
    // Without progress only a PUSH that came meanwhile justifies another round (no busy loop).
    if (this.latestKnown > this.cursorNow && (progressed || pushed)) this.sync()
    else if (!this.syncInFlight) this.emit('synced', this.cursorNow)
  }

  private sync(): void {
    if (!this.connectedNow || this.syncInFlight) return
    this.syncInFlight = true
    this.syncSentAtMs = this.opts.nowMs()
    if (!this.transmit({ type: 'SYNC', afterVersion: this.cursorNow, maxEntries: this.opts.syncBatchSize })) this.syncInFlight = false
  }

  private onSendOk(m: Extract<ChatMessage, { type: 'SEND_OK' }>): void {
    const info = this.outbox.acknowledged(m)
    if (info === undefined) return // a second answer for a message already acknowledged
    this.emit('sent', info)
    this.ownCopy(info)
  }

  /** The device's own copy of a message it sent is at `info.version` of its inbox (no PUSH comes for it). */
  private ownCopy(info: SentInfo): void {
    if (info.version <= this.cursorNow) return
    // Safe with a SYNC in flight: its batch skips entries at or below the cursor.
    if (info.version === this.cursorNow + 1 && this.self !== undefined) {
      if (info.version > this.latestKnown) this.latestKnown = info.version
      this.cursorNow = info.version
      const { clientMsgId, to, body, msgId, version, sentAtMs } = info
      this.emit('message', { kind: 'message', version, msgId, fromUserId: this.self.userId, fromDeviceId: this.self.deviceId, to, sentAtMs, clientMsgId, body })
      this.emit('applied', this.cursorNow)
      this.state.saveCursor(this.cursorNow)
      if (this.latestKnown > this.cursorNow) this.sync()
      return
    }
    this.onPush(info.version)
  }

  private onSendFailed(m: Extract<ChatMessage, { type: 'SEND_FAILED' }>): void {
    const refused = this.outbox.refused(m)
    if (refused !== undefined) this.emit('send_failed', refused.entry, refused.error)
  }

  /** Encode and send; false when the transport refused (the caller keeps its state for the next session). */
  private transmit(m: ChatMessage): boolean {
    return this.transmitBytes(encodeChatMessage(m))
  }

  private transmitBytes(bytes: Uint8Array): boolean {
    try {
      this.opts.send(bytes)
      return true
    } catch {
      return false
    }
  }
}

const groupInfo = (r: Extract<ChatReply, { type: 'GROUP' }>): GroupInfo => ({ groupId: r.groupId, name: r.name, members: r.members })
