/**
 * The primitives the handshake and the packet protection need, behind one small
 * interface so the sans-IO core stays pure while the I/O layer can plug in native code.
 * `nobleBackend` (pure JavaScript, @noble/*) is the default and what tests use; the
 * Node backend (src/io/node-crypto-backend.ts) runs the same algorithms through OpenSSL,
 * about 50x faster for X25519 and 3x for ChaCha20-Poly1305. Both must produce
 * identical bytes: the test vectors in protocol-spec/handshake.md hold for either.
 * Hashing (SHA-256, HMAC, HKDF) is not pluggable: it costs little next to these.
 */
import { chacha20poly1305 } from '@noble/ciphers/chacha.js'
import { x25519 } from '@noble/curves/ed25519.js'

export const AEAD_KEY_BYTES = 32
export const AEAD_NONCE_BYTES = 12
export const AEAD_TAG_BYTES = 16
export const X25519_KEY_BYTES = 32

/** ChaCha20-Poly1305 (RFC 8439) bound to one key (borrowed, not copied); nonce and AAD per call. */
export interface AeadCipher {
  /** Encrypts buf[start, end) in place and writes the tag to buf[end, end + 16). */
  seal(nonce: Uint8Array, aad: Uint8Array, buf: Uint8Array, start: number, end: number): void
  /**
   * Verifies the tag in buf[end - 16, end) over aad and buf[start, end - 16) and, only
   * if it holds, decrypts that range in place. Returns false (buf untouched) otherwise.
   * Never throws for bad input.
   */
  open(nonce: Uint8Array, aad: Uint8Array, buf: Uint8Array, start: number, end: number): boolean
}

export interface CryptoBackend {
  readonly name: string
  /** The X25519 public key of a 32-byte private key (clamped as RFC 7748 says). */
  x25519PublicKey(privateKey: Uint8Array): Uint8Array
  /**
   * The raw X25519 shared secret. May throw, or return all zeros, for a low-order
   * public key; the handshake treats both as a bad key.
   */
  x25519(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array
  /** A cipher bound to `key` (the Noise handshake: a few operations per key). */
  chacha20poly1305(key: Uint8Array): AeadCipher
  /**
   * Stateless AeadCipher.seal with the 32-byte key passed per call: the packet protection
   * of long-lived sessions uses it, so a session holds key bytes and no cipher object.
   */
  aeadSeal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, buf: Uint8Array, start: number, end: number): void
  /** Stateless AeadCipher.open (same contract: false and buf untouched unless the tag verifies). */
  aeadOpen(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, buf: Uint8Array, start: number, end: number): boolean
}

const nobleSeal = (key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, buf: Uint8Array, start: number, end: number): void => {
  chacha20poly1305(key, nonce, aad).encrypt(buf.subarray(start, end), buf.subarray(start, end + AEAD_TAG_BYTES))
}

const nobleOpen = (key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, buf: Uint8Array, start: number, end: number): boolean => {
  if (end - start < AEAD_TAG_BYTES) return false
  try {
    chacha20poly1305(key, nonce, aad).decrypt(buf.subarray(start, end), buf.subarray(start, end - AEAD_TAG_BYTES))
    return true
  } catch {
    return false
  }
}

export const nobleBackend: CryptoBackend = {
  name: 'noble',
  x25519PublicKey: (privateKey) => x25519.getPublicKey(privateKey),
  x25519: (privateKey, publicKey) => x25519.getSharedSecret(privateKey, publicKey),
  chacha20poly1305: (k) => ({
    seal: (nonce, aad, buf, start, end) => nobleSeal(k, nonce, aad, buf, start, end),
    open: (nonce, aad, buf, start, end) => nobleOpen(k, nonce, aad, buf, start, end),
  }),
  aeadSeal: nobleSeal,
  aeadOpen: nobleOpen,
}
