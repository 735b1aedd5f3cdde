/**
 * Glue for the session layer: one login-family message in (bytes received on stream 0),
 * one reply out (bytes to send on stream 0), plus the session's new authentication
 * state. Keeps the protocol rules of protocol-spec/login.md in one place: only
 * LOGIN / REGISTER / RESUME before authentication, only LOGOUT after it.
 */
import { DecodeError } from '../../core/errors.js'
import { decodeLoginMessage, encodeLoginMessage, type LoginMessage } from '../../protocol/login-messages.js'
import type { AuthFailure, AuthFailureCode, LoginOk, LoginService, ResumeOk } from './login.js'

/** What a session remembers once authenticated. */
export interface SessionAuth {
  userId: number
  deviceId: number
  token: Uint8Array
  expiresAtMs: number
}

export interface LoginHandlerResult {
  /** Send this on stream 0. */
  reply: Uint8Array
  /** The session's state after this message (undefined: not authenticated). */
  auth: SessionAuth | undefined
  /** Set after LOGOUT_OK: the session layer may close the session. */
  loggedOut?: true
  /** A store failure turned into INTERNAL_ERROR; for the server's log. */
  error?: unknown
}

export const handleLoginMessage = async (args: {
  service: LoginService
  data: Uint8Array
  /** Client IP without port, for rate limits. */
  address: string
  nowMs: number
  current: SessionAuth | undefined
}): Promise<LoginHandlerResult> => {
  const { service, current, nowMs } = args
  const failed = (code: AuthFailureCode, error?: unknown): LoginHandlerResult => {
    const r: LoginHandlerResult = { reply: encodeLoginMessage({ type: 'LOGIN_FAILED', code }), auth: current }
    if (error !== undefined) r.error = error
    return r
  }
  let message: LoginMessage
  try {
    message = decodeLoginMessage(args.data)
  } catch (err) {
    if (err instanceof DecodeError) return failed('INVALID_REQUEST')
    throw err
  }
  try {
    switch (message.type) {
      case 'LOGIN':
      case 'REGISTER': {
        if (current) return failed('INVALID_REQUEST')
        const req = { username: message.username, password: message.password, deviceName: message.deviceName, address: args.address, nowMs }
        const result = message.type === 'LOGIN' ? await service.login(req) : await service.register(req)
        const auth = result.ok ? { userId: result.userId, deviceId: result.deviceId, token: result.token, expiresAtMs: result.expiresAtMs } : undefined
        return { reply: encodeLoginMessage(loginReply(result)), auth }
      }
      case 'RESUME': {
        if (current) return failed('INVALID_REQUEST')
        const result = await service.resume({ token: message.token, nowMs })
        const auth = result.ok ? { userId: result.userId, deviceId: result.deviceId, token: message.token, expiresAtMs: result.expiresAtMs } : undefined
        return { reply: encodeLoginMessage(resumeReply(result)), auth }
      }
      case 'LOGOUT': {
        if (!current) return failed('INVALID_REQUEST')
        await service.logout({ token: current.token, nowMs })
        return { reply: encodeLoginMessage({ type: 'LOGOUT_OK' }), auth: undefined, loggedOut: true }
      }
      default:
        // Server-to-client messages sent by a client.
        return failed('INVALID_REQUEST')
    }
  } catch (err) {
    return failed('INTERNAL_ERROR', err)
  }
}

/** The server's reply to a LOGIN or REGISTER. */
export const loginReply = (result: LoginOk | AuthFailure): LoginMessage =>
  result.ok
    ? { type: 'LOGIN_OK', userId: result.userId, deviceId: result.deviceId, expiresAtMs: result.expiresAtMs, token: result.token }
    : failureReply(result)

/** The server's reply to a RESUME. */
export const resumeReply = (result: ResumeOk | AuthFailure): LoginMessage =>
  result.ok ? { type: 'RESUME_OK', userId: result.userId, deviceId: result.deviceId, expiresAtMs: result.expiresAtMs } : failureReply(result)

const failureReply = (f: AuthFailure): LoginMessage =>
  f.retryAfterMs === undefined ? { type: 'LOGIN_FAILED', code: f.code } : { type: 'LOGIN_FAILED', code: f.code, retryAfterMs: f.retryAfterMs }
