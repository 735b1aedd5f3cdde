/**
 * ChatClient: ChatClientCore over a real UDP session (PigeonClient), with login and
 * automatic reconnection. It RESUMEs with the stored session token when there is one
 * (falling back to LOGIN with the password when the server refuses the token), stores
 * the token of every LOGIN, and reconnects with backoff whenever the session closes or
 * the link dies: a server restart is survived, unacknowledged messages are resent (the
 * server de-duplicates them) and sync continues from the stored cursor.
 */
import { EventEmitter } from 'node:events'
import { join } from 'node:path'
import type { SessionConfig } from '../core/session/config.js'
import { AuthError, CLIENT_KEEPALIVE_MS, PigeonClient, type ClosedInfo } from '../io/client.js'
import type { Logger } from '../io/logger.js'
import { isLoginMessage } from '../protocol/login-messages.js'
import type { ContactSummary, GroupSummary, Peer, UserSummary } from '../protocol/chat-types.js'
import { ChatClientCore, type ChatCoreEvents, type GroupInfo, type SentInfo } from './chat-core.js'
import { type ClientStateStore, FileClientState, MemoryClientState, type OutboxEntry } from './client-state.js'
import { CryptoRng } from '../io/crypto-rng.js'

/** Client message ids: one OS call per 4 KiB of them, not one per message. */
const messageIdRng = new CryptoRng()

export interface ChatClientOptions {
  host: string
  port: number
  /** The server's static public key to pin (omit only for --insecure servers). */
  serverPublicKey?: Uint8Array
  username: string
  /** The password, or a function asked for it when it is needed (no usable stored token). */
  password?: string | (() => Promise<string>)
  /** Create the account (open-registration servers) instead of logging in, when no token is stored. */
  register?: boolean
  deviceName: string
  /** Root directory of client state; this user and server get a subdirectory (stateDirFor). */
  stateDir?: string
  /** Or a state store of one's own (takes precedence over stateDir). Default: in memory. */
  state?: ClientStateStore
  sessionConfig?: Partial<SessionConfig>
  logger?: Logger
  /** Give up one connection attempt after this long. Default 5 s. */
  connectTimeoutMs?: number
  /** Reconnect backoff: first delay (default 200 ms), doubling up to maxDelayMs (default 2 s), with jitter. */
  reconnectDelayMs?: number
  maxReconnectDelayMs?: number
  syncBatchSize?: number
  readBatchDelayMs?: number
  /** See ChatClientCoreOptions.retryRateLimited (default false). */
  retryRateLimited?: boolean
  /**
   * close() and logout() first send the queued read receipts and wait this long at most
   * for the server to acknowledge what the session still carries. Default 1 s.
   */
  closeTimeoutMs?: number
}

export interface ConnectedInfo {
  userId: number
  deviceId: number
  /** True when the stored token was used (RESUME), false after a LOGIN / REGISTER. */
  resumed: boolean
}

export type ChatClientEvents = ChatCoreEvents & {
  /** Logged in (first time or after a reconnect); the outbox is being resent and sync started. */
  connected: [info: ConnectedInfo]
  /** The session is gone; the client reconnects unless closed. */
  disconnected: [reason: string]
  /** The next connection attempt in delayMs. */
  reconnecting: [attempt: number, delayMs: number]
  /** Reconnecting stopped for good: the server refused the credentials. The client is closed. */
  auth_failed: [error: AuthError | Error]
}

/** Tokens the server no longer accepts: log in with the password instead. */
const TOKEN_FAILURES = new Set(['TOKEN_INVALID', 'TOKEN_EXPIRED', 'TOKEN_REVOKED'])
/** Failures that waiting will not fix. */
const FATAL_AUTH_FAILURES = new Set([
  'WRONG_CREDENTIALS',
  'INVALID_REQUEST',
  'REGISTRATION_CLOSED',
  'USER_EXISTS',
  'INVALID_USERNAME',
  'WEAK_PASSWORD',
  'TOO_MANY_DEVICES',
])

/**
 * A chat client's session: a keepalive after 15 s without sending (PigeonClient's
 * CLIENT_KEEPALIVE_MS: it keeps NAT bindings, which last 30 s and more, and lets one
 * server core carry 100,000 idle clients: at 5 s a server saturated near 55,000, see
 * bench/RESULTS.md), and the link declared dead 25 s after the last packet heard while
 * something is outstanding (above one keepalive interval, or a keepalive after a quiet
 * spell would find the link "dead" at once).
 */
export const CHAT_SESSION_DEFAULTS: Readonly<Partial<SessionConfig>> = { keepAliveIntervalMs: CLIENT_KEEPALIVE_MS, deadLinkTimeoutMs: 25_000 }

const safeName = (s: string): string => s.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_') || '_'

const FORWARDED: Array<keyof ChatCoreEvents> = ['message', 'receipt', 'group', 'applied', 'sent', 'send_failed', 'presence', 'synced', 'protocol_error']

const DEFAULT_CLOSE_TIMEOUT_MS = 1_000

/** The password function failed (e.g. no terminal to ask on). */
export class PasswordUnavailableError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'PasswordUnavailableError'
  }
}

export class ChatClient extends EventEmitter<ChatClientEvents> {
  readonly core: ChatClientCore
  readonly username: string
  private readonly opts: ChatClientOptions
  private readonly state: ClientStateStore
  private token: Uint8Array | undefined
  private password: string | undefined
  private client: PigeonClient | undefined
  /** Sequence numbers of the current session's stream-0 messages the server has not acknowledged. */
  private unacked = new Set<number>()
  /** The current client has logged in (core.onConnected was called for it). */
  private loggedIn = false
  private closed = false
  private connecting = false
  private attempt = 0
  private reconnectTimer: NodeJS.Timeout | undefined
  private me: { userId: number; deviceId: number } | undefined
  /** register: only the first login of this client registers. */
  private registered = false

  /** The directory FileClientState uses for this user and server under `root`. */
  static stateDirFor(root: string, host: string, port: number, username: string): string {
    return join(root, `${safeName(host)}-${port}`, safeName(username))
  }

  /** Connect and log in; rejects when the first attempt fails (unreachable, refused credentials). */
  static async start(opts: ChatClientOptions): Promise<ChatClient> {
    const state = opts.state ?? (opts.stateDir === undefined ? new MemoryClientState() : FileClientState.open(ChatClient.stateDirFor(opts.stateDir, opts.host, opts.port, opts.username)))
    const client = new ChatClient(opts, state)
    try {
      await client.connectOnce()
    } catch (err) {
      client.closed = true
      client.core.shutdown()
      await client.client?.close().catch(() => {})
      if (opts.state === undefined) state.close()
      throw err
    }
    return client
  }

  private constructor(opts: ChatClientOptions, state: ClientStateStore) {
    super()
    this.opts = opts
    this.username = opts.username
    this.state = state
    this.token = state.load().token
    if (typeof opts.password === 'string') this.password = opts.password
    this.core = new ChatClientCore({
      send: (bytes) => {
        if (this.client === undefined || !this.loggedIn) throw new Error('not connected')
        this.unacked.add(this.client.send(0, bytes))
      },
      state,
      randomBytes: (n) => messageIdRng.bytes(n),
      nowMs: () => Date.now(),
      syncBatchSize: opts.syncBatchSize,
      readBatchDelayMs: opts.readBatchDelayMs,
      retryRateLimited: opts.retryRateLimited,
    })
    for (const name of FORWARDED) {
      this.core.on(name, (...args: unknown[]) => (this.emit as (n: string, ...a: unknown[]) => boolean)(name, ...args))
    }
  }

  // --- the core's API ------------------------------------------------------------------

  get userId(): number | undefined {
    return this.me?.userId
  }
  get deviceId(): number | undefined {
    return this.me?.deviceId
  }
  get connected(): boolean {
    return this.loggedIn && this.core.connected
  }
  get cursor(): number {
    return this.core.cursor
  }
  get outboxSize(): number {
    return this.core.outboxSize
  }
  get pendingMessages(): OutboxEntry[] {
    return this.core.pendingMessages
  }
  send(to: Peer, body: string): Promise<SentInfo> {
    return this.core.send(to, body)
  }
  enqueue(to: Peer, body: string): { clientMsgId: Uint8Array; sent: Promise<SentInfo> } {
    return this.core.enqueue(to, body)
  }
  markRead(msgIds: Iterable<number>): void {
    this.core.markRead(msgIds)
  }
  flushReads(): void {
    this.core.flushReads()
  }
  contactAdd(username: string): Promise<void> {
    return this.core.contactAdd(username)
  }
  contactRemove(username: string): Promise<void> {
    return this.core.contactRemove(username)
  }
  contactList(): Promise<ContactSummary[]> {
    return this.core.contactList()
  }
  groupCreate(name: string, usernames: string[]): Promise<GroupInfo> {
    return this.core.groupCreate(name, usernames)
  }
  groupInvite(groupId: number, username: string): Promise<void> {
    return this.core.groupInvite(groupId, username)
  }
  groupLeave(groupId: number): Promise<void> {
    return this.core.groupLeave(groupId)
  }
  groupRename(groupId: number, name: string): Promise<void> {
    return this.core.groupRename(groupId, name)
  }
  groupMembers(groupId: number): Promise<GroupInfo> {
    return this.core.groupMembers(groupId)
  }
  groupList(): Promise<GroupSummary[]> {
    return this.core.groupList()
  }
  userLookup(userIds: number[]): Promise<UserSummary[]> {
    return this.core.userLookup(userIds)
  }

  userFind(usernames: string[]): Promise<UserSummary[]> {
    return this.core.userFind(usernames)
  }

  /**
   * Stop reconnecting and close the session, after sending the queued read receipts and
   * giving the session up to closeTimeoutMs to have them acknowledged. The outbox,
   * cursor, token and read receipts not yet sent stay stored.
   */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearTimeout(this.reconnectTimer)
    await this.settle()
    const client = this.client
    this.client = undefined
    this.loggedIn = false
    this.core.shutdown()
    await client?.close().catch(() => {})
    if (this.opts.state === undefined) this.state.close()
  }

  /** Revoke the session token on the server, forget it locally, and close. */
  async logout(): Promise<void> {
    await this.settle() // before the session stops being logged in
    const client = this.client
    if (client !== undefined && this.loggedIn) await client.logout().catch(() => {})
    this.token = undefined
    if (!this.closed) this.state.saveToken(undefined)
    await this.close()
  }

  /** Resolves once the next time the client is logged in (at once when it is). */
  whenConnected(): Promise<void> {
    if (this.connected) return Promise.resolve()
    return new Promise((resolve) => this.once('connected', () => resolve()))
  }

  /**
   * Send the queued read receipts, then wait until the server has acknowledged every
   * message of this session on stream 0 (it has them: READ has no reply), the session
   * ends, or closeTimeoutMs passes.
   */
  private settle(): Promise<void> {
    const client = this.client
    if (client === undefined || !this.loggedIn) return Promise.resolve()
    this.core.flushReads()
    const unacked = this.unacked
    if (unacked.size === 0) return Promise.resolve()
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        client.off('acked', check).off('failed', check).off('expired', check).off('closed', done).off('dead_link', done)
        resolve()
      }
      // Runs after the listener of connectOnce that removes the acknowledged one.
      const check = (): void => {
        if (unacked.size === 0) done()
      }
      const timer = setTimeout(done, this.opts.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS)
      client.on('acked', check).on('failed', check).on('expired', check).on('closed', done).on('dead_link', done)
    })
  }

  // --- connection management ------------------------------------------------------------

  private async connectOnce(): Promise<void> {
    this.connecting = true
    try {
      const client = await PigeonClient.connect({
        host: this.opts.host,
        port: this.opts.port,
        serverPublicKey: this.opts.serverPublicKey,
        sessionConfig: { ...CHAT_SESSION_DEFAULTS, ...this.opts.sessionConfig },
        connectTimeoutMs: this.opts.connectTimeoutMs ?? 5_000,
        logger: this.opts.logger,
      })
      if (this.closed) {
        await client.close()
        return
      }
      this.client = client
      this.loggedIn = false
      const unacked = (this.unacked = new Set())
      const settled = (streamId: number, seq: number): void => {
        if (streamId === 0) unacked.delete(seq)
      }
      client.on('acked', settled).on('failed', settled).on('expired', settled)
      client.on('message', (streamId, _seq, data) => {
        if (this.client !== client || streamId !== 0 || isLoginMessage(data)) return
        this.core.handleMessage(data)
      })
      client.on('closed', (info: ClosedInfo) => this.lost(client, info.byPeer ? `server closed the session: ${info.reason || `code ${info.code}`}` : info.reason || 'session closed'))
      client.on('dead_link', (silentMs) => this.lost(client, `no answer from the server for ${Math.round(silentMs)} ms`))

      const auth = await this.authenticate(client)
      if (this.client !== client || this.closed) throw new Error('session lost while logging in')
      this.me = { userId: auth.userId, deviceId: auth.deviceId }
      this.attempt = 0
      this.loggedIn = true
      this.opts.logger?.info({ userId: auth.userId, deviceId: auth.deviceId, resumed: auth.resumed }, 'chat session logged in')
      this.core.onConnected(this.me)
      this.emit('connected', { userId: auth.userId, deviceId: auth.deviceId, resumed: auth.resumed })
    } finally {
      this.connecting = false
    }
  }

  private async authenticate(client: PigeonClient): Promise<ConnectedInfo> {
    if (this.token !== undefined) {
      try {
        const r = await client.resume(this.token)
        return { userId: r.userId, deviceId: r.deviceId, resumed: true }
      } catch (err) {
        if (!(err instanceof AuthError && TOKEN_FAILURES.has(err.code))) throw err
        this.opts.logger?.info({ code: err.code }, 'stored session token refused; logging in with the password')
        this.token = undefined
        this.state.saveToken(undefined)
      }
    }
    const password = await this.getPassword()
    const credentials = { username: this.opts.username, password, deviceName: this.opts.deviceName }
    let r
    if (this.opts.register === true && !this.registered) {
      try {
        r = await client.register(credentials)
      } catch (err) {
        // Registered already (an earlier run): log in with the same credentials.
        if (!(err instanceof AuthError && err.code === 'USER_EXISTS')) throw err
        r = await client.login(credentials)
      }
      this.registered = true
    } else r = await client.login(credentials)
    this.token = r.token
    this.state.saveToken(r.token)
    return { userId: r.userId, deviceId: r.deviceId, resumed: false }
  }

  private async getPassword(): Promise<string> {
    if (this.password !== undefined) return this.password
    if (typeof this.opts.password === 'function') {
      try {
        this.password = await this.opts.password()
      } catch (err) {
        throw new PasswordUnavailableError(`no password: ${(err as Error).message}`)
      }
      return this.password
    }
    throw new AuthError('PASSWORD_REQUIRED')
  }

  /** The session `client` is over: tell the core and reconnect. */
  private lost(client: PigeonClient, reason: string): void {
    if (this.client !== client) return
    this.client = undefined
    void client.close().catch(() => {})
    const wasLoggedIn = this.loggedIn
    this.loggedIn = false
    if (this.closed) return
    this.opts.logger?.info({ reason }, 'chat session lost')
    if (wasLoggedIn) {
      this.core.onDisconnected()
      this.emit('disconnected', reason)
    }
    if (!this.connecting) this.scheduleReconnect()
  }

  private scheduleReconnect(minDelayMs = 0): void {
    if (this.closed || this.connecting || this.reconnectTimer !== undefined) return
    const base = this.opts.reconnectDelayMs ?? 200
    const cap = this.opts.maxReconnectDelayMs ?? 2_000
    const raw = Math.min(cap, base * 2 ** Math.min(this.attempt, 20))
    const delayMs = Math.max(minDelayMs, Math.round(raw * (0.5 + Math.random() * 0.5)))
    this.attempt++
    this.emit('reconnecting', this.attempt, delayMs)
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined
      void this.reconnect()
    }, delayMs)
  }

  private async reconnect(): Promise<void> {
    if (this.closed) return
    try {
      await this.connectOnce()
    } catch (err) {
      const stale = this.client
      if (stale !== undefined && !this.loggedIn) {
        this.client = undefined
        void stale.close().catch(() => {})
      }
      if (this.closed) return
      if (err instanceof AuthError && (FATAL_AUTH_FAILURES.has(err.code) || err.code === 'PASSWORD_REQUIRED')) {
        this.opts.logger?.warn({ code: err.code }, 'reconnect refused: giving up')
        this.emit('auth_failed', err)
        await this.close()
        return
      }
      if (err instanceof PasswordUnavailableError) {
        this.emit('auth_failed', err)
        await this.close()
        return
      }
      this.opts.logger?.debug({ err: (err as Error).message }, 'reconnect attempt failed')
      this.scheduleReconnect(err instanceof AuthError ? (err.retryAfterMs ?? 0) : 0)
    }
  }
}
