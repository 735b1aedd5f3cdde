/**
 * The crypto backend of the I/O layer: the same X25519 and ChaCha20-Poly1305 as the
 * core's pure-JavaScript default (byte-identical results), tuned for a server's hot path.
 * Pass it as `backend` to NoiseClient / NoiseServer.readMessage1 / createAeadProtection
 * in the I/O layer.
 *
 *  - X25519 runs on Node's OpenSSL bindings (about 50x faster than pure JS).
 *  - ChaCha20-Poly1305 of packets up to JS_AEAD_MAX_BYTES runs in the allocation-free
 *    JavaScript below, larger ones on OpenSSL. A chat packet is small, and node:crypto
 *    cannot re-key a cipher object with a new nonce: every OpenSSL seal or open builds a
 *    Cipheriv/Decipheriv (a stream object, a native context, four binding calls and a few
 *    buffers), which costs several times the arithmetic of a 100-byte packet. The
 *    JavaScript keeps the key schedule per key and allocates nothing per packet.
 */
import { createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, createSecretKey, diffieHellman, type KeyObject } from 'node:crypto'
import { AEAD_KEY_BYTES, AEAD_NONCE_BYTES, AEAD_TAG_BYTES, type AeadCipher, type CryptoBackend } from '../core/crypto/backend.js'

// Raw keys go through JWK: OpenSSL 3 parses it about 20x faster than PKCS#8 / SPKI DER.
// JWK import takes the private key from `d` and only type-checks `x`.
const b64url = (raw: Uint8Array): string => Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64url')

/** Private KeyObjects of long-lived keys (the server's static key), by identity of the byte array. */
const privateKeyCache = new WeakMap<Uint8Array, KeyObject>()

const privateKeyObject = (raw: Uint8Array): KeyObject => {
  let key = privateKeyCache.get(raw)
  if (key === undefined) {
    key = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: b64url(raw), x: '' }, format: 'jwk' })
    privateKeyCache.set(raw, key)
  }
  return key
}

const publicKeyObject = (raw: Uint8Array): KeyObject => createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64url(raw) }, format: 'jwk' })

/** ChaCha20-Poly1305 on OpenSSL: one Cipheriv / Decipheriv per packet. */
const opensslAead = (rawKey: Uint8Array): AeadCipher => {
  const key = createSecretKey(rawKey)
  return {
    seal(nonce, aad, buf, start, end) {
      const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: AEAD_TAG_BYTES })
      c.setAAD(aad, { plaintextLength: end - start })
      const ct = c.update(buf.subarray(start, end))
      c.final()
      buf.set(ct, start)
      buf.set(c.getAuthTag(), end)
    },
    open(nonce, aad, buf, start, end) {
      const ctEnd = end - AEAD_TAG_BYTES
      if (ctEnd < start) return false
      try {
        const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: AEAD_TAG_BYTES })
        d.setAAD(aad, { plaintextLength: ctEnd - start })
        d.setAuthTag(buf.subarray(ctEnd, end))
        const pt = d.update(buf.subarray(start, ctEnd))
        d.final() // throws when the tag does not verify; only then is pt written back
        buf.set(pt, start)
        return true
      } catch {
        return false
      }
    },
  }
}

/**
 * Packets (plaintext or ciphertext bytes, tag excluded) up to this size are sealed and
 * opened in JavaScript, larger ones on OpenSSL, whose vectorised ChaCha20 and Poly1305
 * win once the per-call overhead is amortised (measured crossover on x86-64, Node 20:
 * between 768 and 1024 bytes).
 */
export const JS_AEAD_MAX_BYTES = 768

// ChaCha20 (RFC 8439 section 2.3) constants: "expand 32-byte k".
const SIGMA0 = 0x61707865
const SIGMA1 = 0x3320646e
const SIGMA2 = 0x79622d32
const SIGMA3 = 0x6b206574

/** The keystream is XORed byte-wise through a Uint8Array view of 32-bit words: little-endian hosts only. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1

const readU32LE = (b: Uint8Array, i: number): number => (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0

/**
 * ChaCha20-Poly1305 (RFC 8439 section 2.8) in JavaScript, bound to one key. Every packet
 * reuses the same few typed arrays; nothing is allocated per seal or open.
 *
 * Poly1305 works in radix 2^13 (ten 13-bit limbs), as poly1305-donna-16 / TweetNaCl /
 * @noble/ciphers do: every partial product and sum stays an exact integer well below
 * 2^53 (and the sums that go through `>>>` below 2^32), and no branch or index depends on
 * secret data. In the AEAD construction every Poly1305 block is a full 16 bytes (AAD and
 * ciphertext are zero-padded to 16, then one block of lengths), so each block carries the
 * 2^128 bit.
 */
class JsChaCha20Poly1305 implements AeadCipher {
  /** The key as eight little-endian words. */
  private readonly key = new Uint32Array(8)
  /** One keystream block, and its bytes (little-endian words). */
  private readonly block = new Uint32Array(16)
  private readonly blockBytes = new Uint8Array(this.block.buffer)
  /** Poly1305 r (clamped) and accumulator h in 13-bit limbs; s as eight 16-bit words. */
  private readonly r = new Uint16Array(10)
  private readonly h = new Uint32Array(10)
  private readonly pad = new Uint16Array(8)
  /** A zero-padded final block, the lengths block, and the computed tag. */
  private readonly scratch = new Uint8Array(16)
  private readonly tag = new Uint8Array(16)

  constructor(rawKey: Uint8Array) {
    for (let i = 0; i < 8; i++) this.key[i] = readU32LE(rawKey, i * 4)
  }

  seal(nonce: Uint8Array, aad: Uint8Array, buf: Uint8Array, start: number, end: number): void {
    const n0 = readU32LE(nonce, 0)
    const n1 = readU32LE(nonce, 4)
    const n2 = readU32LE(nonce, 8)
    this.polyInit(n0, n1, n2)
    this.xorKeystream(n0, n1, n2, buf, start, end)
    this.polyMessage(aad, buf, start, end)
    buf.set(this.tag, end)
  }

  open(nonce: Uint8Array, aad: Uint8Array, buf: Uint8Array, start: number, end: number): boolean {
    const ctEnd = end - AEAD_TAG_BYTES
    if (ctEnd < start) return false
    const n0 = readU32LE(nonce, 0)
    const n1 = readU32LE(nonce, 4)
    const n2 = readU32LE(nonce, 8)
    this.polyInit(n0, n1, n2)
    this.polyMessage(aad, buf, start, ctEnd)
    // Constant time: no early exit on the first differing byte.
    const tag = this.tag
    let diff = 0
    for (let i = 0; i < 16; i++) diff |= tag[i] ^ buf[ctEnd + i]
    if (diff !== 0) return false
    this.xorKeystream(n0, n1, n2, buf, start, ctEnd)
    return true
  }

  /** One ChaCha20 block of (key, counter, nonce) into this.block. */
  private chachaBlock(counter: number, n0: number, n1: number, n2: number): void {
    const k = this.key
    const k0 = k[0] | 0
    const k1 = k[1] | 0
    const k2 = k[2] | 0
    const k3 = k[3] | 0
    const k4 = k[4] | 0
    const k5 = k[5] | 0
    const k6 = k[6] | 0
    const k7 = k[7] | 0
    let x0 = SIGMA0
    let x1 = SIGMA1
    let x2 = SIGMA2
    let x3 = SIGMA3
    let x4 = k0
    let x5 = k1
    let x6 = k2
    let x7 = k3
    let x8 = k4
    let x9 = k5
    let x10 = k6
    let x11 = k7
    let x12 = counter | 0
    let x13 = n0 | 0
    let x14 = n1 | 0
    let x15 = n2 | 0
    for (let i = 0; i < 10; i++) {
      // Column round.
      x0 = (x0 + x4) | 0; x12 ^= x0; x12 = (x12 << 16) | (x12 >>> 16)
      x8 = (x8 + x12) | 0; x4 ^= x8; x4 = (x4 << 12) | (x4 >>> 20)
      x0 = (x0 + x4) | 0; x12 ^= x0; x12 = (x12 << 8) | (x12 >>> 24)
      x8 = (x8 + x12) | 0; x4 ^= x8; x4 = (x4 << 7) | (x4 >>> 25)
      x1 = (x1 + x5) | 0; x13 ^= x1; x13 = (x13 << 16) | (x13 >>> 16)
      x9 = (x9 + x13) | 0; x5 ^= x9; x5 = (x5 << 12) | (x5 >>> 20)
      x1 = (x1 + x5) | 0; x13 ^= x1; x13 = (x13 << 8) | (x13 >>> 24)
      x9 = (x9 + x13) | 0; x5 ^= x9; x5 = (x5 << 7) | (x5 >>> 25)
      x2 = (x2 + x6) | 0; x14 ^= x2; x14 = (x14 << 16) | (x14 >>> 16)
      x10 = (x10 + x14) | 0; x6 ^= x10; x6 = (x6 << 12) | (x6 >>> 20)
      x2 = (x2 + x6) | 0; x14 ^= x2; x14 = (x14 << 8) | (x14 >>> 24)
      x10 = (x10 + x14) | 0; x6 ^= x10; x6 = (x6 << 7) | (x6 >>> 25)
      x3 = (x3 + x7) | 0; x15 ^= x3; x15 = (x15 << 16) | (x15 >>> 16)
      x11 = (x11 + x15) | 0; x7 ^= x11; x7 = (x7 << 12) | (x7 >>> 20)
      x3 = (x3 + x7) | 0; x15 ^= x3; x15 = (x15 << 8) | (x15 >>> 24)
      x11 = (x11 + x15) | 0; x7 ^= x11; x7 = (x7 << 7) | (x7 >>> 25)
      // Diagonal round.
      x0 = (x0 + x5) | 0; x15 ^= x0; x15 = (x15 << 16) | (x15 >>> 16)
      x10 = (x10 + x15) | 0; x5 ^= x10; x5 = (x5 << 12) | (x5 >>> 20)
      x0 = (x0 + x5) | 0; x15 ^= x0; x15 = (x15 << 8) | (x15 >>> 24)
      x10 = (x10 + x15) | 0; x5 ^= x10; x5 = (x5 << 7) | (x5 >>> 25)
      x1 = (x1 + x6) | 0; x12 ^= x1; x12 = (x12 << 16) | (x12 >>> 16)
      x11 = (x11 + x12) | 0; x6 ^= x11; x6 = (x6 << 12) | (x6 >>> 20)
      x1 = (x1 + x6) | 0; x12 ^= x1; x12 = (x12 << 8) | (x12 >>> 24)
      x11 = (x11 + x12) | 0; x6 ^= x11; x6 = (x6 << 7) | (x6 >>> 25)
      x2 = (x2 + x7) | 0; x13 ^= x2; x13 = (x13 << 16) | (x13 >>> 16)
      x8 = (x8 + x13) | 0; x7 ^= x8; x7 = (x7 << 12) | (x7 >>> 20)
      x2 = (x2 + x7) | 0; x13 ^= x2; x13 = (x13 << 8) | (x13 >>> 24)
      x8 = (x8 + x13) | 0; x7 ^= x8; x7 = (x7 << 7) | (x7 >>> 25)
      x3 = (x3 + x4) | 0; x14 ^= x3; x14 = (x14 << 16) | (x14 >>> 16)
      x9 = (x9 + x14) | 0; x4 ^= x9; x4 = (x4 << 12) | (x4 >>> 20)
      x3 = (x3 + x4) | 0; x14 ^= x3; x14 = (x14 << 8) | (x14 >>> 24)
      x9 = (x9 + x14) | 0; x4 ^= x9; x4 = (x4 << 7) | (x4 >>> 25)
    }
    const o = this.block
    o[0] = x0 + SIGMA0
    o[1] = x1 + SIGMA1
    o[2] = x2 + SIGMA2
    o[3] = x3 + SIGMA3
    o[4] = x4 + k0
    o[5] = x5 + k1
    o[6] = x6 + k2
    o[7] = x7 + k3
    o[8] = x8 + k4
    o[9] = x9 + k5
    o[10] = x10 + k6
    o[11] = x11 + k7
    o[12] = x12 + (counter | 0)
    o[13] = x13 + (n0 | 0)
    o[14] = x14 + (n1 | 0)
    o[15] = x15 + (n2 | 0)
  }

  /** XOR buf[start, end) with the keystream from block counter 1 on (counter 0 keyed Poly1305). */
  private xorKeystream(n0: number, n1: number, n2: number, buf: Uint8Array, start: number, end: number): void {
    const ks = this.blockBytes
    let counter = 1
    for (let p = start; p < end; p += 64) {
      this.chachaBlock(counter++, n0, n1, n2)
      const n = Math.min(64, end - p)
      for (let i = 0; i < n; i++) buf[p + i] ^= ks[i]
    }
  }

  /** Poly1305 key from keystream block 0 (RFC 8439 section 2.6): r clamped into limbs, s kept; h = 0. */
  private polyInit(n0: number, n1: number, n2: number): void {
    this.chachaBlock(0, n0, n1, n2)
    const b = this.block
    const t0 = b[0] & 0xffff
    const t1 = b[0] >>> 16
    const t2 = b[1] & 0xffff
    const t3 = b[1] >>> 16
    const t4 = b[2] & 0xffff
    const t5 = b[2] >>> 16
    const t6 = b[3] & 0xffff
    const t7 = b[3] >>> 16
    const r = this.r
    r[0] = t0 & 0x1fff
    r[1] = ((t0 >>> 13) | (t1 << 3)) & 0x1fff
    r[2] = ((t1 >>> 10) | (t2 << 6)) & 0x1f03
    r[3] = ((t2 >>> 7) | (t3 << 9)) & 0x1fff
    r[4] = ((t3 >>> 4) | (t4 << 12)) & 0x00ff
    r[5] = (t4 >>> 1) & 0x1ffe
    r[6] = ((t4 >>> 14) | (t5 << 2)) & 0x1fff
    r[7] = ((t5 >>> 11) | (t6 << 5)) & 0x1f81
    r[8] = ((t6 >>> 8) | (t7 << 8)) & 0x1fff
    r[9] = (t7 >>> 5) & 0x007f
    const pad = this.pad
    for (let i = 0; i < 4; i++) {
      pad[2 * i] = b[4 + i] & 0xffff
      pad[2 * i + 1] = b[4 + i] >>> 16
    }
    this.h.fill(0)
  }

  /** Tag over AAD || pad16 || buf[start, end) || pad16 || le64(aad) || le64(ct) into this.tag. */
  private polyMessage(aad: Uint8Array, buf: Uint8Array, start: number, end: number): void {
    this.polyPadded(aad, 0, aad.length)
    this.polyPadded(buf, start, end)
    const s = this.scratch
    s.fill(0)
    // Lengths as 64-bit little-endian; packets are far below 2^32 bytes.
    const aadLength = aad.length
    const ctLength = end - start
    s[0] = aadLength & 0xff
    s[1] = (aadLength >>> 8) & 0xff
    s[2] = (aadLength >>> 16) & 0xff
    s[3] = aadLength >>> 24
    s[8] = ctLength & 0xff
    s[9] = (ctLength >>> 8) & 0xff
    s[10] = (ctLength >>> 16) & 0xff
    s[11] = ctLength >>> 24
    this.polyBlocks(s, 0, 16)
    this.polyFinish()
  }

  /** m[start, end) zero-padded to a multiple of 16 bytes. */
  private polyPadded(m: Uint8Array, start: number, end: number): void {
    const full = start + ((end - start) & ~15)
    if (full > start) this.polyBlocks(m, start, full)
    if (full < end) {
      const s = this.scratch
      s.fill(0)
      for (let i = full; i < end; i++) s[i - full] = m[i]
      this.polyBlocks(s, 0, 16)
    }
  }

  /** Absorbs the full 16-byte blocks of m[start, end) (end - start a multiple of 16), each with the 2^128 bit. */
  private polyBlocks(m: Uint8Array, start: number, end: number): void {
    const r = this.r
    const h = this.h
    const r0 = r[0]
    const r1 = r[1]
    const r2 = r[2]
    const r3 = r[3]
    const r4 = r[4]
    const r5 = r[5]
    const r6 = r[6]
    const r7 = r[7]
    const r8 = r[8]
    const r9 = r[9]
    const s1 = 5 * r1
    const s2 = 5 * r2
    const s3 = 5 * r3
    const s4 = 5 * r4
    const s5 = 5 * r5
    const s6 = 5 * r6
    const s7 = 5 * r7
    const s8 = 5 * r8
    const s9 = 5 * r9
    let h0 = h[0]
    let h1 = h[1]
    let h2 = h[2]
    let h3 = h[3]
    let h4 = h[4]
    let h5 = h[5]
    let h6 = h[6]
    let h7 = h[7]
    let h8 = h[8]
    let h9 = h[9]
    for (let p = start; p < end; p += 16) {
      const t0 = m[p] | (m[p + 1] << 8)
      const t1 = m[p + 2] | (m[p + 3] << 8)
      const t2 = m[p + 4] | (m[p + 5] << 8)
      const t3 = m[p + 6] | (m[p + 7] << 8)
      const t4 = m[p + 8] | (m[p + 9] << 8)
      const t5 = m[p + 10] | (m[p + 11] << 8)
      const t6 = m[p + 12] | (m[p + 13] << 8)
      const t7 = m[p + 14] | (m[p + 15] << 8)
      h0 += t0 & 0x1fff
      h1 += ((t0 >>> 13) | (t1 << 3)) & 0x1fff
      h2 += ((t1 >>> 10) | (t2 << 6)) & 0x1fff
      h3 += ((t2 >>> 7) | (t3 << 9)) & 0x1fff
      h4 += ((t3 >>> 4) | (t4 << 12)) & 0x1fff
      h5 += (t4 >>> 1) & 0x1fff
      h6 += ((t4 >>> 14) | (t5 << 2)) & 0x1fff
      h7 += ((t5 >>> 11) | (t6 << 5)) & 0x1fff
      h8 += ((t6 >>> 8) | (t7 << 8)) & 0x1fff
      h9 += (t7 >>> 5) | (1 << 11)

      let c = 0
      let d0 = c + h0 * r0 + h1 * s9 + h2 * s8 + h3 * s7 + h4 * s6
      c = d0 >>> 13
      d0 &= 0x1fff
      d0 += h5 * s5 + h6 * s4 + h7 * s3 + h8 * s2 + h9 * s1
      c += d0 >>> 13
      d0 &= 0x1fff
      let d1 = c + h0 * r1 + h1 * r0 + h2 * s9 + h3 * s8 + h4 * s7
      c = d1 >>> 13
      d1 &= 0x1fff
      d1 += h5 * s6 + h6 * s5 + h7 * s4 + h8 * s3 + h9 * s2
      c += d1 >>> 13
      d1 &= 0x1fff
      let d2 = c + h0 * r2 + h1 * r1 + h2 * r0 + h3 * s9 + h4 * s8
      c = d2 >>> 13
      d2 &= 0x1fff
      d2 += h5 * s7 + h6 * s6 + h7 * s5 + h8 * s4 + h9 * s3
      c += d2 >>> 13
      d2 &= 0x1fff
      let d3 = c + h0 * r3 + h1 * r2 + h2 * r1 + h3 * r0 + h4 * s9
      c = d3 >>> 13
      d3 &= 0x1fff
      d3 += h5 * s8 + h6 * s7 + h7 * s6 + h8 * s5 + h9 * s4
      c += d3 >>> 13
      d3 &= 0x1fff
      let d4 = c + h0 * r4 + h1 * r3 + h2 * r2 + h3 * r1 + h4 * r0
      c = d4 >>> 13
      d4 &= 0x1fff
      d4 += h5 * s9 + h6 * s8 + h7 * s7 + h8 * s6 + h9 * s5
      c += d4 >>> 13
      d4 &= 0x1fff
      let d5 = c + h0 * r5 + h1 * r4 + h2 * r3 + h3 * r2 + h4 * r1
      c = d5 >>> 13
      d5 &= 0x1fff
      d5 += h5 * r0 + h6 * s9 + h7 * s8 + h8 * s7 + h9 * s6
      c += d5 >>> 13
      d5 &= 0x1fff
      let d6 = c + h0 * r6 + h1 * r5 + h2 * r4 + h3 * r3 + h4 * r2
      c = d6 >>> 13
      d6 &= 0x1fff
      d6 += h5 * r1 + h6 * r0 + h7 * s9 + h8 * s8 + h9 * s7
      c += d6 >>> 13
      d6 &= 0x1fff
      let d7 = c + h0 * r7 + h1 * r6 + h2 * r5 + h3 * r4 + h4 * r3
      c = d7 >>> 13
      d7 &= 0x1fff
      d7 += h5 * r2 + h6 * r1 + h7 * r0 + h8 * s9 + h9 * s8
      c += d7 >>> 13
      d7 &= 0x1fff
      let d8 = c + h0 * r8 + h1 * r7 + h2 * r6 + h3 * r5 + h4 * r4
      c = d8 >>> 13
      d8 &= 0x1fff
      d8 += h5 * r3 + h6 * r2 + h7 * r1 + h8 * r0 + h9 * s9
      c += d8 >>> 13
      d8 &= 0x1fff
      let d9 = c + h0 * r9 + h1 * r8 + h2 * r7 + h3 * r6 + h4 * r5
      c = d9 >>> 13
      d9 &= 0x1fff
      d9 += h5 * r4 + h6 * r3 + h7 * r2 + h8 * r1 + h9 * r0
      c += d9 >>> 13
      d9 &= 0x1fff
      c = ((c << 2) + c) | 0
      c = (c + d0) | 0
      d0 = c & 0x1fff
      c = c >>> 13
      d1 += c
      h0 = d0
      h1 = d1
      h2 = d2
      h3 = d3
      h4 = d4
      h5 = d5
      h6 = d6
      h7 = d7
      h8 = d8
      h9 = d9
    }
    h[0] = h0
    h[1] = h1
    h[2] = h2
    h[3] = h3
    h[4] = h4
    h[5] = h5
    h[6] = h6
    h[7] = h7
    h[8] = h8
    h[9] = h9
  }

  /** Fully reduces h mod 2^130 - 5, adds s mod 2^128, writes the tag to this.tag. */
  private polyFinish(): void {
    const h = this.h
    const g = this.r // r is no longer needed for this packet: reuse it as scratch limbs
    let c = h[1] >>> 13
    h[1] &= 0x1fff
    for (let i = 2; i < 10; i++) {
      h[i] += c
      c = h[i] >>> 13
      h[i] &= 0x1fff
    }
    h[0] += c * 5
    c = h[0] >>> 13
    h[0] &= 0x1fff
    h[1] += c
    c = h[1] >>> 13
    h[1] &= 0x1fff
    h[2] += c
    // g = h + 5 - 2^130: if it does not borrow, h >= p and the result is g.
    g[0] = h[0] + 5
    c = g[0] >>> 13
    g[0] &= 0x1fff
    for (let i = 1; i < 10; i++) {
      g[i] = h[i] + c
      c = g[i] >>> 13
      g[i] &= 0x1fff
    }
    g[9] -= 1 << 13
    let mask = (c ^ 1) - 1
    for (let i = 0; i < 10; i++) g[i] &= mask
    mask = ~mask
    for (let i = 0; i < 10; i++) h[i] = (h[i] & mask) | g[i]
    // Repack the 130 bits into eight 16-bit words (the top bits fall off: mod 2^128).
    const w0 = (h[0] | (h[1] << 13)) & 0xffff
    const w1 = ((h[1] >>> 3) | (h[2] << 10)) & 0xffff
    const w2 = ((h[2] >>> 6) | (h[3] << 7)) & 0xffff
    const w3 = ((h[3] >>> 9) | (h[4] << 4)) & 0xffff
    const w4 = ((h[4] >>> 12) | (h[5] << 1) | (h[6] << 14)) & 0xffff
    const w5 = ((h[6] >>> 2) | (h[7] << 11)) & 0xffff
    const w6 = ((h[7] >>> 5) | (h[8] << 8)) & 0xffff
    const w7 = ((h[8] >>> 8) | (h[9] << 5)) & 0xffff
    // tag = (h + s) mod 2^128, little-endian.
    const pad = this.pad
    const tag = this.tag
    let f = w0 + pad[0]
    tag[0] = f & 0xff
    tag[1] = (f >>> 8) & 0xff
    f = w1 + pad[1] + (f >>> 16)
    tag[2] = f & 0xff
    tag[3] = (f >>> 8) & 0xff
    f = w2 + pad[2] + (f >>> 16)
    tag[4] = f & 0xff
    tag[5] = (f >>> 8) & 0xff
    f = w3 + pad[3] + (f >>> 16)
    tag[6] = f & 0xff
    tag[7] = (f >>> 8) & 0xff
    f = w4 + pad[4] + (f >>> 16)
    tag[8] = f & 0xff
    tag[9] = (f >>> 8) & 0xff
    f = w5 + pad[5] + (f >>> 16)
    tag[10] = f & 0xff
    tag[11] = (f >>> 8) & 0xff
    f = w6 + pad[6] + (f >>> 16)
    tag[12] = f & 0xff
    tag[13] = (f >>> 8) & 0xff
    f = w7 + pad[7] + (f >>> 16)
    tag[14] = f & 0xff
    tag[15] = (f >>> 8) & 0xff
  }
}

/** The JavaScript AEAD for small packets, OpenSSL for large ones (identical bytes either way). */
const aead = (rawKey: Uint8Array): AeadCipher => {
  const openssl = opensslAead(rawKey)
  if (!LITTLE_ENDIAN || rawKey.length !== AEAD_KEY_BYTES) return openssl
  const js = new JsChaCha20Poly1305(rawKey)
  return {
    seal(nonce, aad, buf, start, end) {
      if (end - start <= JS_AEAD_MAX_BYTES && nonce.length === AEAD_NONCE_BYTES) js.seal(nonce, aad, buf, start, end)
      else openssl.seal(nonce, aad, buf, start, end)
    },
    open(nonce, aad, buf, start, end) {
      if (end - start - AEAD_TAG_BYTES <= JS_AEAD_MAX_BYTES && nonce.length === AEAD_NONCE_BYTES) return js.open(nonce, aad, buf, start, end)
      return openssl.open(nonce, aad, buf, start, end)
    },
  }
}

/** For tests and benchmarks: the two ChaCha20-Poly1305 implementations on their own. */
export const aeadImplementations = {
  openssl: opensslAead,
  javascript: (rawKey: Uint8Array): AeadCipher => new JsChaCha20Poly1305(rawKey),
}

export const nodeCryptoBackend: CryptoBackend = {
  name: 'node-openssl',
  x25519PublicKey: (privateKey) => {
    const jwk = createPublicKey(privateKeyObject(privateKey)).export({ format: 'jwk' })
    return new Uint8Array(Buffer.from(jwk.x as string, 'base64url'))
  },
  x25519: (privateKey, publicKey) => new Uint8Array(diffieHellman({ privateKey: privateKeyObject(privateKey), publicKey: publicKeyObject(publicKey) })),
  chacha20poly1305: aead,
}
