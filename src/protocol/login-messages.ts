/**
 * Wire encoding of the login family, carried one per message (MESSAGE frames) on the
 * control stream 0 after the secure handshake. See protocol-spec/login.md for the byte
 * layout and test vectors. A message is a type byte then its fields: integers as QUIC
 * varints, strings and byte strings as a varint length then the bytes (UTF-8 for
 * strings). Types 0x01-0x0f are reserved for this family on stream 0 (the messaging
 * family, chat-codec.ts, has 0x10-0x3f). Shared by client and server: no server imports.
 */
import { DecodeError } from '../core/errors.js'
import { Reader } from '../core/wire/reader.js'
import { Writer } from '../core/wire/writer.js'

export const LoginMessageType = {
  LOGIN: 0x01,
  LOGIN_OK: 0x02,
  LOGIN_FAILED: 0x03,
  RESUME: 0x04,
  RESUME_OK: 0x05,
  LOGOUT: 0x06,
  LOGOUT_OK: 0x07,
  REGISTER: 0x08,
} as const
export type LoginMessageTypeName = keyof typeof LoginMessageType

/** First and last type byte of the login family on stream 0. */
export const LOGIN_TYPE_MIN = 0x01
export const LOGIN_TYPE_MAX = 0x0f
export const isLoginMessage = (data: Uint8Array): boolean => data.length > 0 && data[0] >= LOGIN_TYPE_MIN && data[0] <= LOGIN_TYPE_MAX

/** Limits enforced on decode (and encode): bytes of UTF-8 or of token. */
export const MAX_USERNAME_BYTES = 64
export const MAX_PASSWORD_BYTES = 1024
export const MAX_DEVICE_NAME_BYTES = 64
export const MAX_TOKEN_BYTES = 255

/** Every failure the login family can answer (the server's LoginService produces them). */
export type AuthFailureCode =
  | 'WRONG_CREDENTIALS'
  | 'RATE_LIMITED'
  | 'INVALID_REQUEST'
  | 'TOKEN_INVALID'
  | 'TOKEN_EXPIRED'
  | 'TOKEN_REVOKED'
  | 'REGISTRATION_CLOSED'
  | 'USER_EXISTS'
  | 'INVALID_USERNAME'
  | 'WEAK_PASSWORD'
  | 'TOO_MANY_DEVICES'
  | 'INTERNAL_ERROR'

export const AuthFailureWireCode: Record<AuthFailureCode, number> = {
  WRONG_CREDENTIALS: 0x01,
  RATE_LIMITED: 0x02,
  INVALID_REQUEST: 0x03,
  TOKEN_INVALID: 0x04,
  TOKEN_EXPIRED: 0x05,
  TOKEN_REVOKED: 0x06,
  REGISTRATION_CLOSED: 0x07,
  USER_EXISTS: 0x08,
  INVALID_USERNAME: 0x09,
  WEAK_PASSWORD: 0x0a,
  TOO_MANY_DEVICES: 0x0b,
  INTERNAL_ERROR: 0x0c,
}
const failureByWireCode = new Map<number, AuthFailureCode>(Object.entries(AuthFailureWireCode).map(([k, v]) => [v, k as AuthFailureCode]))

export interface Credentials {
  username: string
  password: string
  deviceName: string
}

export type LoginMessage =
  | ({ type: 'LOGIN' } & Credentials)
  | ({ type: 'REGISTER' } & Credentials)
  | { type: 'LOGIN_OK'; userId: number; deviceId: number; expiresAtMs: number; token: Uint8Array }
  | { type: 'LOGIN_FAILED'; code: AuthFailureCode; retryAfterMs?: number }
  | { type: 'RESUME'; token: Uint8Array }
  | { type: 'RESUME_OK'; userId: number; deviceId: number; expiresAtMs: number }
  | { type: 'LOGOUT' }
  | { type: 'LOGOUT_OK' }

const utf8 = new TextEncoder()
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

const encodeString = (w: Writer, bytes: Uint8Array): void => {
  w.varint(bytes.length)
  w.bytes(bytes)
}

const limited = (what: string, bytes: Uint8Array, max: number): Uint8Array => {
  if (bytes.length > max) throw new RangeError(`${what} is ${bytes.length} bytes, more than ${max}`)
  return bytes
}

export const encodeLoginMessage = (m: LoginMessage): Uint8Array => {
  switch (m.type) {
    case 'LOGIN':
    case 'REGISTER': {
      const u = limited('username', utf8.encode(m.username), MAX_USERNAME_BYTES)
      const p = limited('password', utf8.encode(m.password), MAX_PASSWORD_BYTES)
      const d = limited('device name', utf8.encode(m.deviceName), MAX_DEVICE_NAME_BYTES)
      const w = new Writer(1 + 3 * 2 + u.length + p.length + d.length)
      w.u8(LoginMessageType[m.type])
      encodeString(w, u)
      encodeString(w, p)
      encodeString(w, d)
      return w.finish()
    }
    case 'LOGIN_OK': {
      const token = limited('token', m.token, MAX_TOKEN_BYTES)
      const w = new Writer(1 + 3 * 8 + 2 + token.length)
      w.u8(LoginMessageType.LOGIN_OK)
      w.varint(m.userId)
      w.varint(m.deviceId)
      w.varint(m.expiresAtMs)
      encodeString(w, token)
      return w.finish()
    }
    case 'LOGIN_FAILED': {
      const w = new Writer(2 + 8)
      w.u8(LoginMessageType.LOGIN_FAILED)
      w.u8(AuthFailureWireCode[m.code])
      w.varint(m.retryAfterMs === undefined ? 0 : Math.ceil(m.retryAfterMs))
      return w.finish()
    }
    case 'RESUME': {
      const token = limited('token', m.token, MAX_TOKEN_BYTES)
      const w = new Writer(1 + 2 + token.length)
      w.u8(LoginMessageType.RESUME)
      encodeString(w, token)
      return w.finish()
    }
    case 'RESUME_OK': {
      const w = new Writer(1 + 3 * 8)
      w.u8(LoginMessageType.RESUME_OK)
      w.varint(m.userId)
      w.varint(m.deviceId)
      w.varint(m.expiresAtMs)
      return w.finish()
    }
    case 'LOGOUT':
    case 'LOGOUT_OK':
      return Uint8Array.of(LoginMessageType[m.type])
  }
}

const readBytes = (r: Reader, what: string, max: number): Uint8Array => {
  const n = r.varint()
  if (n > max) throw new DecodeError(`${what} of ${n} bytes exceeds ${max}`)
  return r.bytes(n)
}

const readString = (r: Reader, what: string, max: number): string => {
  const bytes = readBytes(r, what, max)
  try {
    return utf8Strict.decode(bytes)
  } catch {
    throw new DecodeError(`${what} is not valid UTF-8`)
  }
}

/** Decode one whole message; throws DecodeError on truncation, trailing bytes or bad fields. */
export const decodeLoginMessage = (data: Uint8Array): LoginMessage => {
  const r = new Reader(data)
  const type = r.u8()
  let m: LoginMessage
  switch (type) {
    case LoginMessageType.LOGIN:
    case LoginMessageType.REGISTER:
      m = {
        type: type === LoginMessageType.LOGIN ? 'LOGIN' : 'REGISTER',
        username: readString(r, 'username', MAX_USERNAME_BYTES),
        password: readString(r, 'password', MAX_PASSWORD_BYTES),
        deviceName: readString(r, 'device name', MAX_DEVICE_NAME_BYTES),
      }
      break
    case LoginMessageType.LOGIN_OK:
      // Copy the token: the caller may keep it beyond the datagram's lifetime.
      m = { type: 'LOGIN_OK', userId: r.varint(), deviceId: r.varint(), expiresAtMs: r.varint(), token: readBytes(r, 'token', MAX_TOKEN_BYTES).slice() }
      break
    case LoginMessageType.LOGIN_FAILED: {
      const wire = r.u8()
      const code = failureByWireCode.get(wire)
      if (code === undefined) throw new DecodeError(`unknown login failure code 0x${wire.toString(16)}`)
      const retryAfterMs = r.varint()
      m = retryAfterMs === 0 ? { type: 'LOGIN_FAILED', code } : { type: 'LOGIN_FAILED', code, retryAfterMs }
      break
    }
    case LoginMessageType.RESUME:
      m = { type: 'RESUME', token: readBytes(r, 'token', MAX_TOKEN_BYTES).slice() }
      break
    case LoginMessageType.RESUME_OK:
      m = { type: 'RESUME_OK', userId: r.varint(), deviceId: r.varint(), expiresAtMs: r.varint() }
      break
    case LoginMessageType.LOGOUT:
      m = { type: 'LOGOUT' }
      break
    case LoginMessageType.LOGOUT_OK:
      m = { type: 'LOGOUT_OK' }
      break
    default:
      throw new DecodeError(`unknown login message type 0x${type.toString(16)}`)
  }
  if (r.remaining !== 0) throw new DecodeError(`${r.remaining} trailing bytes after ${m.type}`)
  return m
}
