import { lookup } from 'node:dns/promises'
import { type LoginMessage, decodeLoginMessage, encodeLoginMessage, isLoginMessage } from '../protocol/login-messages.js'
import { EventEmitter } from 'node:events'
import type { EndpointEvent, EndpointStats } from '../core/endpoint.js'
import { ErrorCode, errorCodeName } from '../core/errors.js'
import type { PacketProtection } from '../core/protection.js'
import type { SessionConfig } from '../core/session/config.js'
import type { SessionStats } from '../core/session/events.js'
import type { SendOptions, Session } from '../core/session/session.js'
import type { TraceSink } from '../core/trace.js'
import { type UdpAddress, formatAddress, stripBrackets } from './address.js'
import type { Logger } from './logger.js'
import { UdpEndpoint, type UdpEndpointStats } from './udp-endpoint.js'

export interface PigeonClientOptions {
  host: string
  port: number
  sessionConfig?: Partial<SessionConfig>
  /** The server's static public key (32 bytes): encrypts the session and refuses any other server. */
  serverPublicKey?: Uint8Array
  /** Give up connecting after this long (the session's dead-link timer may fire first). Default 10 s. */
  connectTimeoutMs?: number
  logger?: Logger
  trace?: TraceSink
  protection?: () => PacketProtection
}

export interface ClosedInfo {
  code: number
  reason: string
  byPeer: boolean
}

export type PigeonClientEvents = {
  message: [streamId: number, seq: number, data: Uint8Array]
  acked: [streamId: number, seq: number]
  expired: [streamId: number, seq: number]
  /** The session ended before the message was acknowledged (it may or may not have arrived). */
  failed: [streamId: number, seq: number]
  dead_link: [silentMs: number]
  closed: [info: ClosedInfo]
}

export interface PigeonClientStats {
  session: SessionStats
  smoothedRttMs: number
  minRttMs: number
  endpoint: EndpointStats
  io: UdpEndpointStats
}

/** Why connect() failed. `reason` is machine-readable, `message` is for people. */
export class PigeonConnectError extends Error {
  constructor(
    readonly reason: 'dead_link' | 'closed' | 'timeout',
    readonly target: string,
    message: string,
  ) {
    super(message)
    this.name = 'PigeonConnectError'
  }
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000
/** Well under common NAT binding timeouts (30 s and up) and the 60 s idle timeout. */
export const CLIENT_KEEPALIVE_MS = 15_000

/** One session to a pigeon server over its own UDP socket. */
export class PigeonClient extends EventEmitter<PigeonClientEvents> {
  readonly remote: UdpAddress
  private readonly udp: UdpEndpoint
  private readonly session: Session
  /** Events that arrive before connect() has resolved wait here, so no listener misses them. */
  private held: Array<() => void> | null = []

  /** Resolve `host`, open a socket of the matching family and connect; resolves on 'connected'. */
  static async connect(opts: PigeonClientOptions): Promise<PigeonClient> {
    const resolved = await lookup(stripBrackets(opts.host))
    const family = resolved.family === 6 ? 'IPv6' : 'IPv4'
    const remote: UdpAddress = { address: resolved.address, port: opts.port, family }
    const udp = await UdpEndpoint.open({
      host: family === 'IPv6' ? '::' : '0.0.0.0',
      port: 0,
      server: false,
      // Clients keep NAT bindings and the server's idle timer alive by default.
      sessionConfig: { keepAliveIntervalMs: CLIENT_KEEPALIVE_MS, ...opts.sessionConfig },
      logger: opts.logger,
      trace: opts.trace,
      protection: opts.protection,
    })
    const security = opts.serverPublicKey === undefined ? undefined : { serverStaticPublicKey: opts.serverPublicKey }
    const client = new PigeonClient(udp, udp.connect(remote, undefined, security), remote)
    try {
      await client.established(opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS)
    } catch (err) {
      await udp.close({ code: ErrorCode.APPLICATION_CLOSE, reason: 'connect failed' })
      throw err
    }
    setImmediate(() => client.releaseHeld())
    return client
  }

  private constructor(udp: UdpEndpoint, session: Session, remote: UdpAddress) {
    super()
    this.udp = udp
    this.session = session
    this.remote = remote
    udp.on('event', (e) => this.onEvent(e))
  }

  /** Queue a message; returns its sequence number on the stream. Throws UsageError when it cannot be queued. */
  send(streamId: number, data: Uint8Array, opts?: SendOptions): number {
    return this.udp.send(this.session, streamId, data, opts)
  }

  /** Log in with a password; resolves with the session token, rejects with AuthError. */
  async login(credentials: { username: string; password: string; deviceName: string }): Promise<LoginResult> {
    const reply = await this.control({ type: 'LOGIN', ...credentials })
    if (reply.type === 'LOGIN_OK') return { token: reply.token, userId: reply.userId, deviceId: reply.deviceId, expiresAtMs: reply.expiresAtMs }
    throw authError(reply)
  }

  /** Open-registration servers only: create the account and log in. */
  async register(credentials: { username: string; password: string; deviceName: string }): Promise<LoginResult> {
    const reply = await this.control({ type: 'REGISTER', ...credentials })
    if (reply.type === 'LOGIN_OK') return { token: reply.token, userId: reply.userId, deviceId: reply.deviceId, expiresAtMs: reply.expiresAtMs }
    throw authError(reply)
  }

  /** Resume with a token from an earlier login (no password); rejects with AuthError. */
  async resume(token: Uint8Array): Promise<{ userId: number; deviceId: number; expiresAtMs: number }> {
    const reply = await this.control({ type: 'RESUME', token })
    if (reply.type === 'RESUME_OK') return { userId: reply.userId, deviceId: reply.deviceId, expiresAtMs: reply.expiresAtMs }
    throw authError(reply)
  }

  /** Revoke this session's token on the server (the server then closes the session). */
  async logout(): Promise<void> {
    const reply = await this.control({ type: 'LOGOUT' })
    if (reply.type !== 'LOGOUT_OK') throw authError(reply)
  }

  /** One login-family request on stream 0 and its reply (requests are answered in order). */
  private control(request: LoginMessage): Promise<LoginMessage> {
    return new Promise<LoginMessage>((resolve, reject) => {
      this.pendingControl.push({ resolve, reject })
      try {
        this.send(0, encodeLoginMessage(request))
      } catch (err) {
        this.pendingControl.pop()
        reject(err)
      }
    })
  }

  private readonly pendingControl: Array<{ resolve: (m: LoginMessage) => void; reject: (e: Error) => void }> = []

  /** Continue the session from a new local port (simulates a NAT rebinding / network switch). */
  rebind(): Promise<void> {
    return this.udp.rebind()
  }

  /** Close the session (CLOSE frame to the server) and the socket. */
  async close(code: number = ErrorCode.NO_ERROR, reason = ''): Promise<void> {
    await this.udp.close({ code, reason })
  }

  get isConnected(): boolean {
    return this.session.isEstablished
  }

  get stats(): PigeonClientStats {
    return {
      session: this.session.stats,
      smoothedRttMs: this.session.rtt.smoothedRttMs,
      minRttMs: this.session.rtt.minRttMs,
      endpoint: this.udp.core.stats,
      io: this.udp.stats,
    }
  }

  private established(timeoutMs: number): Promise<void> {
    const target = formatAddress(this.remote)
    return new Promise<void>((resolve, reject) => {
      let silentMs: number | undefined
      const done = (err?: PigeonConnectError): void => {
        clearTimeout(timer)
        this.udp.off('event', watch)
        if (err === undefined) resolve()
        else reject(err)
      }
      const watch = (e: EndpointEvent<UdpAddress>): void => {
        const ev = e.event
        if (ev.type === 'connected') done()
        else if (ev.type === 'dead_link') silentMs = ev.silentMs
        else if (ev.type === 'closed' && silentMs !== undefined) {
          done(new PigeonConnectError('dead_link', target, `pigeon server ${target} unreachable: no answer for ${Math.round(silentMs)} ms (dead link)`))
        } else if (ev.type === 'closed') {
          const why = `${ev.reason || 'no reason given'} (${errorCodeName(ev.code)})`
          const message = ev.byPeer ? `pigeon server ${target} refused the session: ${why}` : `connecting to pigeon server ${target} failed: ${why}`
          done(new PigeonConnectError('closed', target, message))
        }
      }
      const timer = setTimeout(() => {
        done(new PigeonConnectError('timeout', target, `pigeon server ${target} unreachable: no answer within ${timeoutMs} ms (connect timeout)`))
      }, timeoutMs)
      this.udp.on('event', watch)
    })
  }

  private onEvent(e: EndpointEvent<UdpAddress>): void {
    const ev = e.event
    let deliver: (() => void) | undefined
    switch (ev.type) {
      case 'message':
        if (ev.streamId === 0 && this.pendingControl.length > 0 && isLoginMessage(ev.data)) {
          const waiter = this.pendingControl.shift()!
          try {
            waiter.resolve(decodeLoginMessage(ev.data))
          } catch (err) {
            waiter.reject(err as Error)
          }
          return
        }
        deliver = () => this.emit('message', ev.streamId, ev.seq, ev.data)
        break
      case 'message_acked':
        deliver = () => this.emit('acked', ev.streamId, ev.seq)
        break
      case 'message_expired':
        deliver = () => this.emit('expired', ev.streamId, ev.seq)
        break
      case 'message_failed':
        deliver = () => this.emit('failed', ev.streamId, ev.seq)
        break
      case 'dead_link':
        deliver = () => this.emit('dead_link', ev.silentMs)
        break
      case 'closed':
        for (const waiter of this.pendingControl.splice(0)) waiter.reject(new Error(`session closed: ${ev.reason || errorCodeName(ev.code)}`))
        deliver = () => this.emit('closed', { code: ev.code, reason: ev.reason, byPeer: ev.byPeer })
        // Nothing more can happen on this socket: release it so the process can exit.
        void this.udp.close()
        break
      default:
        return
    }
    if (this.held !== null) this.held.push(deliver)
    else deliver()
  }

  private releaseHeld(): void {
    const held = this.held ?? []
    this.held = null
    for (const deliver of held) deliver()
  }
}

export interface LoginResult {
  token: Uint8Array
  userId: number
  deviceId: number
  expiresAtMs: number
}

/** The server refused a login, registration, resume or logout. */
export class AuthError extends Error {
  readonly code: string
  readonly retryAfterMs: number | undefined
  constructor(code: string, retryAfterMs?: number) {
    super(`authentication failed: ${code}${retryAfterMs === undefined ? '' : ` (retry after ${retryAfterMs} ms)`}`)
    this.name = 'AuthError'
    this.code = code
    this.retryAfterMs = retryAfterMs
  }
}

const authError = (reply: LoginMessage): AuthError =>
  reply.type === 'LOGIN_FAILED' ? new AuthError(reply.code, reply.retryAfterMs) : new AuthError(`UNEXPECTED_${reply.type}`)
