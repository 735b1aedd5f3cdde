/**
 * Hashing and key derivation: SHA-256, HMAC-SHA-256, the HKDF of the Noise framework
 * (chaining-key based, 2 or 3 outputs) and an HKDF-Expand-Label in the style of TLS 1.3
 * and QUIC, with the prefix "pigeon " instead of "tls13 ".
 */
import { expand } from '@noble/hashes/hkdf.js'
import { hmac } from '@noble/hashes/hmac.js'
import { sha256 } from '@noble/hashes/sha2.js'

export const HASH_BYTES = 32

export { sha256 }

/** HMAC-SHA-256 over the concatenation of `parts`. */
export const hmacSha256 = (key: Uint8Array, ...parts: Uint8Array[]): Uint8Array => {
  if (parts.length === 1) return hmac(sha256, key, parts[0])
  const h = hmac.create(sha256, key)
  for (const p of parts) h.update(p)
  return h.digest()
}

const BYTE_1 = Uint8Array.of(1)
const BYTE_2 = Uint8Array.of(2)

/** Noise HKDF(ck, ikm): two outputs of HASH_BYTES (spec section 4.3). */
export const noiseHkdf2 = (chainingKey: Uint8Array, ikm: Uint8Array): [Uint8Array, Uint8Array] => {
  const tempKey = hmacSha256(chainingKey, ikm)
  const out1 = hmacSha256(tempKey, BYTE_1)
  const out2 = hmacSha256(tempKey, out1, BYTE_2)
  tempKey.fill(0)
  return [out1, out2]
}

const LABEL_PREFIX = 'pigeon '
const utf8 = new TextEncoder()

/**
 * HKDF-Expand-Label(secret, label, context, length) = HKDF-Expand(secret, info, length)
 * with info = length (u16) || len (u8) || "pigeon " + label || len (u8) || context,
 * the HkdfLabel structure of RFC 8446 section 7.1.
 */
export const hkdfExpandLabel = (o: { secret: Uint8Array; label: string; context?: Uint8Array; length: number }): Uint8Array => {
  const label = utf8.encode(LABEL_PREFIX + o.label)
  const context = o.context ?? new Uint8Array(0)
  if (label.length > 255 || context.length > 255 || o.length > 0xffff) throw new RangeError('hkdfExpandLabel: field too long')
  const info = new Uint8Array(2 + 1 + label.length + 1 + context.length)
  info[0] = o.length >>> 8
  info[1] = o.length & 0xff
  info[2] = label.length
  info.set(label, 3)
  info[3 + label.length] = context.length
  info.set(context, 4 + label.length)
  return expand(sha256, o.secret, info, o.length)
}

/** Constant-time equality of two byte strings (length is not secret). */
export const constantTimeEqual = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i]
  return diff === 0
}
