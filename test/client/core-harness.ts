/**
 * ChatClientCore wired to a scripted fake server, for the core's tests: what it sends is
 * decoded into `sent`, state changes and sends go into one log (to check their order),
 * and time is virtual (advance() runs the timers that are due).
 */
import { ChatClientCore, type MessageEntry } from '../../src/client/chat-core.js'
import { type ClientStateStore, MemoryClientState, type OutboxEntry } from '../../src/client/client-state.js'
import { decodeChatMessage, encodeChatMessage } from '../../src/protocol/chat-codec.js'
import type { ChatMessage, Peer } from '../../src/protocol/chat-types.js'

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
export const BOB: Peer = { kind: 'user', userId: 2 }
export const TEAM: Peer = { kind: 'group', groupId: 9 }

/** A MemoryClientState that writes what it does into a shared log (to check ordering against sends). */
export class LoggingState implements ClientStateStore {
  readonly inner: MemoryClientState
  constructor(
    private readonly log: string[],
    initial?: MemoryClientState,
  ) {
    this.inner = initial ?? new MemoryClientState()
  }
  load() {
    return this.inner.load()
  }
  saveCursor(v: number) {
    this.log.push(`cursor ${v}`)
    this.inner.saveCursor(v)
  }
  addOutbox(e: OutboxEntry) {
    this.log.push(`add ${hex(e.clientMsgId)}`)
    this.inner.addOutbox(e)
  }
  removeOutbox(id: Uint8Array) {
    this.log.push(`remove ${hex(id)}`)
    this.inner.removeOutbox(id)
  }
  addReads(ids: number[]) {
    this.log.push(`reads ${ids.join(',')}`)
    this.inner.addReads(ids)
  }
  removeReads(ids: number[]) {
    this.log.push(`reads sent ${ids.join(',')}`)
    this.inner.removeReads(ids)
  }
  saveToken(token: Uint8Array | undefined) {
    this.inner.saveToken(token)
  }
  close() {}
}

interface Timer {
  at: number
  fn: () => void
  cancelled: boolean
}

/** A ChatClientCore wired to a scripted fake server: what it sends is decoded into `sent`. */
export const harness = (opts: { state?: MemoryClientState; syncBatchSize?: number; retryRateLimited?: boolean } = {}) => {
  const log: string[] = []
  const sent: ChatMessage[] = []
  let now = 1_000
  let counter = 0
  const timers: Timer[] = []
  const state = new LoggingState(log, opts.state)
  let transportDown = false
  const core = new ChatClientCore({
    send: (bytes) => {
      if (transportDown) throw new Error('session closed')
      const m = decodeChatMessage(bytes)
      sent.push(m)
      log.push(`send ${m.type}${m.type === 'SEND' ? ` ${hex(m.clientMsgId)}` : ''}`)
    },
    state,
    randomBytes: (n) => new Uint8Array(n).fill(++counter),
    nowMs: () => now,
    schedule: (fn, delayMs) => {
      const timer = { at: now + delayMs, fn, cancelled: false }
      timers.push(timer)
      return () => {
        timer.cancelled = true
      }
    },
    syncBatchSize: opts.syncBatchSize ?? 50,
    retryRateLimited: opts.retryRateLimited,
  })
  const events: string[] = []
  const messages: MessageEntry[] = []
  core.on('message', (e) => {
    messages.push(e)
    events.push(`message ${e.version}`)
  })
  core.on('receipt', (e) => events.push(`receipt ${e.version}`))
  core.on('group', (e) => events.push(`group ${e.version}`))
  core.on('sent', (i) => events.push(`sent ${i.msgId}`))
  core.on('synced', (c) => events.push(`synced ${c}`))
  core.on('presence', (u, on) => events.push(`presence ${u} ${on}`))
  core.on('protocol_error', () => events.push('protocol_error'))
  return {
    core,
    state,
    log,
    sent,
    events,
    messages,
    feed: (m: ChatMessage) => core.handleMessage(encodeChatMessage(m)),
    /** Messages sent since the last call. */
    take: (): ChatMessage[] => sent.splice(0),
    advance: (ms: number) => {
      now += ms
      for (const timer of timers.filter((x) => !x.cancelled && x.at <= now)) {
        timer.cancelled = true
        timer.fn()
      }
    },
    setTransportDown: (down: boolean) => {
      transportDown = down
    },
  }
}

export const msg = (version: number, body = `m${version}`): MessageEntry => ({
  kind: 'message',
  version,
  msgId: 100 + version,
  fromUserId: 2,
  fromDeviceId: 1,
  to: { kind: 'user', userId: 1 },
  sentAtMs: 5_000 + version,
  clientMsgId: new Uint8Array(16).fill(200),
  body,
})

export const sendOk = (m: ChatMessage, msgId: number): ChatMessage => {
  if (m.type !== 'SEND') throw new Error(`expected SEND, got ${m.type}`)
  return { type: 'SEND_OK', clientMsgId: m.clientMsgId, msgId, version: msgId, sentAtMs: 7_000 }
}
