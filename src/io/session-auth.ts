/**
 * Login over the protocol: LOGIN / REGISTER / RESUME / LOGOUT messages on stream 0
 * (protocol-spec/login.md) decide whether a session may do anything else. Until it is
 * authenticated, any other message closes the session with APPLICATION_CLOSE.
 *
 * Transport-agnostic: it talks to sessions through SessionIo, which the UDP endpoint
 * implements and the simulated-network tests implement over a core Endpoint.
 */
import { sameBytes } from '../core/bytes.js'
import { ErrorCode } from '../core/errors.js'
import type { Session } from '../core/session/session.js'
import { type SessionAuth, handleLoginMessage } from '../server/accounts/login-handler.js'
import type { LoginService } from '../server/accounts/login.js'
import { isLoginMessage } from '../protocol/login-messages.js'
import type { Logger } from './logger.js'

export const CONTROL_STREAM = 0

/** What the authenticator (and the services behind it) need from a transport. */
export interface SessionIo {
  send(session: Session, streamId: number, data: Uint8Array): number
  closeSession(session: Session, code: number, reason: string): void
}

export interface SessionAuthenticatorOptions {
  service: LoginService
  io: SessionIo
  log: Logger
  /** Wall-clock milliseconds (token expiry). Default Date.now. */
  nowMs?: () => number
  /** A session logged in (after its LOGIN_OK / RESUME_OK was queued). */
  onAuthenticated?: (session: Session, auth: SessionAuth) => void
  /** A session stopped being authenticated: LOGOUT, or closed (see forget). */
  onDeauthenticated?: (session: Session, auth: SessionAuth) => void
}

export class SessionAuthenticator {
  private readonly o: SessionAuthenticatorOptions
  private readonly auth = new WeakMap<Session, SessionAuth>()
  /** A user's live sessions: most users have one, kept as is; a Set from the second on. */
  private readonly byUser = new Map<number, Session | Set<Session>>()
  /**
   * Login messages are handled one at a time per session, in arrival order: the tail of
   * each session's chain, removed once it settles (an idle session keeps no promise).
   */
  private readonly queue = new WeakMap<Session, Promise<void>>()

  constructor(options: SessionAuthenticatorOptions) {
    this.o = options
  }

  authOf(session: Session): SessionAuth | undefined {
    return this.auth.get(session)
  }

  isAuthenticated(session: Session): boolean {
    return this.auth.has(session)
  }

  /** `fromAddress`: the client's IP without port, for rate limits. */
  onMessage(
    session: Session,
    fromAddress: string,
    streamId: number,
    data: Uint8Array,
    deliver: (session: Session, streamId: number, data: Uint8Array, auth: SessionAuth) => void,
  ): void {
    if (streamId === CONTROL_STREAM && isLoginMessage(data)) {
      const previous = this.queue.get(session) ?? Promise.resolve()
      const next: Promise<void> = previous
        .then(() => this.handle(session, fromAddress, data))
        .catch((err: unknown) => this.o.log.error({ err }, 'login handling failed'))
        .finally(() => {
          if (this.queue.get(session) === next) this.queue.delete(session)
        })
      this.queue.set(session, next)
      return
    }
    const auth = this.auth.get(session)
    if (auth === undefined) {
      this.o.log.info({ session: session.traceId }, 'message before login: closing the session')
      this.o.io.closeSession(session, ErrorCode.APPLICATION_CLOSE, 'not logged in')
      return
    }
    deliver(session, streamId, data, auth)
  }

  /** Close every live session of a user (admin kick, password change). */
  kick(userId: number): number {
    const entry = this.byUser.get(userId)
    if (entry === undefined) return 0
    const sessions = entry instanceof Set ? [...entry] : [entry]
    for (const s of sessions) this.o.io.closeSession(s, ErrorCode.APPLICATION_CLOSE, 'kicked')
    return sessions.length
  }

  /**
   * Close every live session whose token `isValid` no longer accepts (revoked by another
   * process, like the admin CLI's kick and passwd, or expired), `perTurn` sessions per
   * event-loop turn so 100,000 of them do not stall the server. Returns how many closed.
   */
  async revalidate(isValid: (auth: SessionAuth) => Promise<boolean>, perTurn = 500): Promise<number> {
    const sessions: Session[] = []
    for (const entry of this.byUser.values()) {
      if (entry instanceof Set) sessions.push(...entry)
      else sessions.push(entry)
    }
    let closed = 0
    for (let i = 0; i < sessions.length; i++) {
      if (i > 0 && i % perTurn === 0) await new Promise<void>((resolve) => setImmediate(resolve))
      const session = sessions[i]
      const a = this.auth.get(session)
      if (a === undefined || !session.isActive() || (await isValid(a))) continue
      // Checked again: the session may have logged out or closed while the token was looked up.
      if (this.auth.get(session) !== a || !session.isActive()) continue
      this.o.log.info({ session: session.traceId, userId: a.userId }, 'token revoked or expired: closing the session')
      this.o.io.closeSession(session, ErrorCode.APPLICATION_CLOSE, 'token revoked')
      closed++
    }
    return closed
  }

  /** The session is gone (closed): drop its authentication. */
  forget(session: Session): void {
    const a = this.auth.get(session)
    if (a === undefined) return
    this.auth.delete(session)
    const entry = this.byUser.get(a.userId)
    if (entry === session) this.byUser.delete(a.userId)
    else if (entry instanceof Set) {
      entry.delete(session)
      if (entry.size === 1) this.byUser.set(a.userId, entry.values().next().value as Session)
    }
    this.o.onDeauthenticated?.(session, a)
  }

  private closeOthersWithToken(session: Session, a: SessionAuth): void {
    const entry = this.byUser.get(a.userId)
    if (entry === undefined) return
    for (const other of entry instanceof Set ? [...entry] : [entry]) {
      const o = this.auth.get(other)
      if (other === session || o === undefined || !sameBytes(o.token, a.token)) continue
      this.o.io.closeSession(other, ErrorCode.APPLICATION_CLOSE, 'logged out')
    }
  }

  private async handle(session: Session, fromAddress: string, data: Uint8Array): Promise<void> {
    if (!session.isActive()) return
    const nowMs = this.o.nowMs?.() ?? Date.now()
    const result = await handleLoginMessage({ service: this.o.service, data, address: fromAddress, nowMs, current: this.auth.get(session) })
    if (result.error !== undefined) this.o.log.error({ err: result.error, session: session.traceId }, 'account store failure during login')
    if (!session.isActive()) return
    this.o.io.send(session, CONTROL_STREAM, result.reply)
    const before = this.auth.get(session)
    this.forget(session)
    // LOGOUT revoked the token: other sessions resumed with it (the same device
    // reconnecting, or a copied token) end too.
    if (result.loggedOut && before !== undefined) this.closeOthersWithToken(session, before)
    if (result.auth !== undefined) {
      this.auth.set(session, result.auth)
      const entry = this.byUser.get(result.auth.userId)
      if (entry === undefined) this.byUser.set(result.auth.userId, session)
      else if (entry instanceof Set) entry.add(session)
      else if (entry !== session) this.byUser.set(result.auth.userId, new Set([entry, session]))
      this.o.log.info({ session: session.traceId, userId: result.auth.userId, deviceId: result.auth.deviceId }, 'authenticated')
      this.o.onAuthenticated?.(session, result.auth)
    }
    // After LOGOUT the session stays open but unauthenticated: closing it here would drop
    // the LOGOUT_OK still queued; the client closes when it wants to.
  }
}
