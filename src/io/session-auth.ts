/**
 * Login over the protocol: LOGIN / REGISTER / RESUME / LOGOUT messages on stream 0
 * (protocol-spec/login.md) decide whether a session may do anything else. Until it is
 * authenticated, any other message closes the session with APPLICATION_CLOSE.
 */
import { ErrorCode } from '../core/errors.js'
import type { Session } from '../core/session/session.js'
import { type SessionAuth, handleLoginMessage } from '../server/accounts/login-handler.js'
import type { LoginService } from '../server/accounts/login.js'
import { isLoginMessage } from '../server/accounts/login-messages.js'
import type { UdpAddress } from './address.js'
import type { Logger } from './logger.js'
import type { UdpEndpoint } from './udp-endpoint.js'

export const CONTROL_STREAM = 0

export class SessionAuthenticator {
  private readonly service: LoginService
  private readonly endpoint: UdpEndpoint
  private readonly log: Logger
  private readonly auth = new WeakMap<Session, SessionAuth>()
  private readonly byUser = new Map<number, Set<Session>>()
  /** Login messages are handled one at a time per session, in arrival order. */
  private readonly queue = new WeakMap<Session, Promise<void>>()

  constructor(o: { service: LoginService; endpoint: UdpEndpoint; log: Logger }) {
    this.service = o.service
    this.endpoint = o.endpoint
    this.log = o.log
  }

  isAuthenticated(session: Session): boolean {
    return this.auth.has(session)
  }

  onMessage(
    session: Session,
    from: UdpAddress,
    streamId: number,
    data: Uint8Array,
    deliver: (session: Session, streamId: number, data: Uint8Array) => void,
  ): void {
    if (streamId === CONTROL_STREAM && isLoginMessage(data)) {
      const previous = this.queue.get(session) ?? Promise.resolve()
      const next = previous.then(() => this.handle(session, from, data)).catch((err: unknown) => this.log.error({ err }, 'login handling failed'))
      this.queue.set(session, next)
      return
    }
    if (!this.auth.has(session)) {
      this.log.info({ session: session.traceId }, 'message before login: closing the session')
      this.endpoint.closeSession(session, ErrorCode.APPLICATION_CLOSE, 'not logged in')
      return
    }
    deliver(session, streamId, data)
  }

  /** Close every live session of a user (admin kick, password change). */
  kick(userId: number): number {
    const sessions = this.byUser.get(userId)
    if (sessions === undefined) return 0
    for (const s of sessions) this.endpoint.closeSession(s, ErrorCode.APPLICATION_CLOSE, 'kicked')
    return sessions.size
  }

  forget(session: Session): void {
    const a = this.auth.get(session)
    if (a === undefined) return
    this.auth.delete(session)
    this.byUser.get(a.userId)?.delete(session)
  }

  private async handle(session: Session, from: UdpAddress, data: Uint8Array): Promise<void> {
    if (!session.isActive()) return
    const result = await handleLoginMessage({ service: this.service, data, address: from.address, nowMs: Date.now(), current: this.auth.get(session) })
    if (result.error !== undefined) this.log.error({ err: result.error, session: session.traceId }, 'account store failure during login')
    if (!session.isActive()) return
    this.endpoint.send(session, CONTROL_STREAM, result.reply)
    this.forget(session)
    if (result.auth !== undefined) {
      this.auth.set(session, result.auth)
      let set = this.byUser.get(result.auth.userId)
      if (set === undefined) this.byUser.set(result.auth.userId, (set = new Set()))
      set.add(session)
      this.log.info({ session: session.traceId, userId: result.auth.userId, deviceId: result.auth.deviceId }, 'authenticated')
    }
    // After LOGOUT the session stays open but unauthenticated: closing it here would drop
    // the LOGOUT_OK still queued; the client closes when it wants to.
  }
}
