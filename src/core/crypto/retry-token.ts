/**
 * Stateless address validation (QUIC Retry, DTLS HelloVerifyRequest): before keeping
 * any state for a client, the server answers its INITIAL with a RETRY carrying a token
 * that only the server can have made, bound to the client's address and to the DCID
 * of its first INITIAL, and valid for a short time. A client that echoes it in its next
 * INITIAL proves it receives packets at that address. Pure: the clock reading and the
 * server's secret key are passed in.
 *
 *   token = format (u8: 0x01 retry, 0x02 new-token)
 *        || expiresAtMs (u64, big-endian, whole milliseconds of the caller's clock)
 *        || odcidLength (u8) || originalDcid
 *        || tag: first 16 bytes of HMAC-SHA-256(key, "pigeon token" || all of the above || address)
 *
 * The address is authenticated, not carried: the validator supplies the address the
 * packet came from. Mint and validate must read the same clock (epoch milliseconds if
 * the key outlives the process).
 */
import { ErrorCode, UsageError } from '../errors.js'
import { constantTimeEqual, hmacSha256 } from './kdf.js'

export const RETRY_TOKEN_TAG_BYTES = 16
/** Default validity of a retry token: long enough for one round trip on a bad link. */
export const DEFAULT_RETRY_TOKEN_LIFETIME_MS = 10_000
const MIN_KEY_BYTES = 32
const MAX_ODCID_BYTES = 20
const TWO_32 = 4294967296
const DOMAIN = new TextEncoder().encode('pigeon token')
const FORMAT = { retry: 0x01, 'new-token': 0x02 } as const
export type TokenKind = keyof typeof FORMAT

export interface MintRetryTokenOptions {
  /** Server secret, at least 32 random bytes (rotate it; see previousKey). */
  key: Uint8Array
  nowMs: number
  /** The client's address as the endpoint names it, e.g. "192.0.2.1:4433" or "[2001:db8::1]:4433". */
  address: string
  /** DCID of the client's first INITIAL (empty for a new-token token). */
  originalDcid: Uint8Array
  lifetimeMs?: number
  /** 'retry' (default) or 'new-token' (NEW_TOKEN frame, for a future session; longer lifetime). */
  kind?: TokenKind
}

export interface ValidateRetryTokenOptions {
  key: Uint8Array
  /** Also accepted, so tokens minted just before a key rotation stay valid. */
  previousKey?: Uint8Array
  nowMs: number
  address: string
  token: Uint8Array
  kind?: TokenKind
}

export type RetryTokenVerdict =
  | { ok: true; originalDcid: Uint8Array; expiresAtMs: number }
  | { ok: false; reason: 'malformed' | 'forged' | 'expired' }

const checkKey = (key: Uint8Array): void => {
  if (!(key instanceof Uint8Array) || key.length < MIN_KEY_BYTES) throw new UsageError(ErrorCode.INTERNAL_ERROR, `token key must be at least ${MIN_KEY_BYTES} bytes`)
}

const tagOf = (key: Uint8Array, body: Uint8Array, address: string): Uint8Array =>
  hmacSha256(key, DOMAIN, body, new TextEncoder().encode(address)).subarray(0, RETRY_TOKEN_TAG_BYTES)

export const mintRetryToken = (o: MintRetryTokenOptions): Uint8Array => {
  checkKey(o.key)
  const lifetimeMs = o.lifetimeMs ?? DEFAULT_RETRY_TOKEN_LIFETIME_MS
  const expiresAtMs = Math.floor(o.nowMs + lifetimeMs)
  if (!(Number.isSafeInteger(expiresAtMs) && expiresAtMs >= 0)) throw new UsageError(ErrorCode.INTERNAL_ERROR, `bad token expiry ${expiresAtMs}`)
  if (o.originalDcid.length > MAX_ODCID_BYTES) throw new UsageError(ErrorCode.INTERNAL_ERROR, 'original DCID longer than 20 bytes')
  const bodyLength = 1 + 8 + 1 + o.originalDcid.length
  const token = new Uint8Array(bodyLength + RETRY_TOKEN_TAG_BYTES)
  const view = new DataView(token.buffer)
  token[0] = FORMAT[o.kind ?? 'retry']
  view.setUint32(1, Math.floor(expiresAtMs / TWO_32))
  view.setUint32(5, expiresAtMs >>> 0)
  token[9] = o.originalDcid.length
  token.set(o.originalDcid, 10)
  token.set(tagOf(o.key, token.subarray(0, bodyLength), o.address), bodyLength)
  return token
}

/** Never throws for a bad token (only for a bad key): the verdict says why it failed. */
export const validateRetryToken = (o: ValidateRetryTokenOptions): RetryTokenVerdict => {
  checkKey(o.key)
  if (o.previousKey !== undefined) checkKey(o.previousKey)
  const t = o.token
  if (t.length < 10 + RETRY_TOKEN_TAG_BYTES || t[0] !== FORMAT[o.kind ?? 'retry']) return { ok: false, reason: 'malformed' }
  const odcidLength = t[9]
  const bodyLength = 10 + odcidLength
  if (odcidLength > MAX_ODCID_BYTES || t.length !== bodyLength + RETRY_TOKEN_TAG_BYTES) return { ok: false, reason: 'malformed' }
  const body = t.subarray(0, bodyLength)
  const tag = t.subarray(bodyLength)
  const authentic =
    constantTimeEqual(tag, tagOf(o.key, body, o.address)) || (o.previousKey !== undefined && constantTimeEqual(tag, tagOf(o.previousKey, body, o.address)))
  if (!authentic) return { ok: false, reason: 'forged' }
  const view = new DataView(t.buffer, t.byteOffset, t.byteLength)
  const expiresAtMs = view.getUint32(1) * TWO_32 + view.getUint32(5)
  if (o.nowMs > expiresAtMs) return { ok: false, reason: 'expired' }
  return { ok: true, originalDcid: t.slice(10, bodyLength), expiresAtMs }
}
