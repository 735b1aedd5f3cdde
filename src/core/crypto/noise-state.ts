/**
 * The Noise Protocol Framework's processing rules (noiseprotocol.org/noise.html,
 * revision 34, sections 5.1-5.3) for the tokens pigeon uses: CipherState,
 * SymmetricState and a HandshakeState that runs a pattern given as data. Written for
 * 25519 / ChaChaPoly / SHA256 only. See noise-nk.ts for the pattern and the API.
 */
import { ErrorCode, UsageError } from '../errors.js'
import type { Rng } from '../rng.js'
import { AEAD_TAG_BYTES, type AeadCipher, type CryptoBackend, X25519_KEY_BYTES } from './backend.js'
import { HandshakeError } from './errors.js'
import { HASH_BYTES, noiseHkdf2, sha256 } from './kdf.js'

/** Noise's limit on any message (section 3). */
export const MAX_NOISE_MESSAGE_BYTES = 65535

/** The message tokens implemented (enough for NK; IK/XX would add 's', 'se', 'ss'). */
export type Token = 'e' | 'ee' | 'es'

export interface HandshakePattern {
  /** Pattern name as it appears in the protocol name, e.g. "NK". */
  readonly name: string
  /** Pre-message from the responder: ['s'] when the initiator knows its static key. */
  readonly responderPreMessage: readonly 's'[]
  /** Messages alternate initiator -> responder, responder -> initiator, ... */
  readonly messages: readonly (readonly Token[])[]
}

const EMPTY = new Uint8Array(0)

/** A key k and a nonce counter n (section 5.1). */
class CipherState {
  private cipher: AeadCipher | null = null
  private key: Uint8Array | null = null
  private n = 0
  private readonly nonce = new Uint8Array(12)

  constructor(private readonly backend: CryptoBackend) {}

  initializeKey(key: Uint8Array): void {
    this.key = key
    this.cipher = this.backend.chacha20poly1305(key)
    this.n = 0
  }

  hasKey(): boolean {
    return this.cipher !== null
  }

  /** ChaChaPoly nonce: 32 zero bits, then n as a 64-bit little-endian integer. */
  private nextNonce(): Uint8Array {
    const n = this.n++
    const v = new DataView(this.nonce.buffer)
    v.setUint32(0, 0)
    v.setUint32(4, n >>> 0, true)
    v.setUint32(8, Math.floor(n / 4294967296), true)
    return this.nonce
  }

  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    if (this.cipher === null) return plaintext.slice()
    const out = new Uint8Array(plaintext.length + AEAD_TAG_BYTES)
    out.set(plaintext)
    this.cipher.seal(this.nextNonce(), ad, out, 0, plaintext.length)
    return out
  }

  /** Throws HandshakeError; on failure n does not advance. */
  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    if (this.cipher === null) return ciphertext.slice()
    if (ciphertext.length < AEAD_TAG_BYTES) throw new HandshakeError('bad_length', 'ciphertext shorter than a tag')
    const buf = ciphertext.slice()
    const n = this.n
    if (!this.cipher.open(this.nextNonce(), ad, buf, 0, buf.length)) {
      this.n = n
      throw new HandshakeError('bad_tag', 'handshake payload failed authentication')
    }
    return buf.subarray(0, buf.length - AEAD_TAG_BYTES)
  }

  clone(): CipherState {
    const c = new CipherState(this.backend)
    c.cipher = this.cipher
    c.key = this.key
    c.n = this.n
    return c
  }

  wipe(): void {
    this.key?.fill(0)
    this.key = null
    this.cipher = null
  }
}

/** Chaining key ck, handshake hash h and a CipherState (section 5.2). */
class SymmetricState {
  private constructor(
    private ck: Uint8Array,
    private h: Uint8Array,
    private cs: CipherState,
  ) {}

  static initialize(protocolName: string, backend: CryptoBackend): SymmetricState {
    const name = new TextEncoder().encode(protocolName)
    let h: Uint8Array
    if (name.length <= HASH_BYTES) {
      h = new Uint8Array(HASH_BYTES)
      h.set(name)
    } else {
      h = sha256(name)
    }
    return new SymmetricState(h.slice(), h, new CipherState(backend))
  }

  get handshakeHash(): Uint8Array {
    return this.h
  }

  hasKey(): boolean {
    return this.cs.hasKey()
  }

  mixKey(ikm: Uint8Array): void {
    const [ck, tempKey] = noiseHkdf2(this.ck, ikm)
    this.ck = ck
    this.cs.initializeKey(tempKey)
  }

  mixHash(data: Uint8Array): void {
    const next = new Uint8Array(HASH_BYTES + data.length)
    next.set(this.h)
    next.set(data, HASH_BYTES)
    this.h = sha256(next)
  }

  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const ciphertext = this.cs.encryptWithAd(this.h, plaintext)
    this.mixHash(ciphertext)
    return ciphertext
  }

  decryptAndHash(ciphertext: Uint8Array): Uint8Array {
    const plaintext = this.cs.decryptWithAd(this.h, ciphertext)
    this.mixHash(ciphertext)
    return plaintext
  }

  /** The two transport keys: initiator -> responder, responder -> initiator. */
  split(): [Uint8Array, Uint8Array] {
    return noiseHkdf2(this.ck, EMPTY)
  }

  clone(): SymmetricState {
    return new SymmetricState(this.ck, this.h, this.cs.clone())
  }

  wipe(): void {
    this.ck.fill(0)
    this.cs.wipe()
  }
}

export interface KeyPair {
  privateKey: Uint8Array
  publicKey: Uint8Array
}

/** X25519 with the checks Noise leaves to the application: no error escapes untyped, no all-zero output. */
export const dh = (backend: CryptoBackend, privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array => {
  let out: Uint8Array
  try {
    out = backend.x25519(privateKey, publicKey)
  } catch {
    throw new HandshakeError('bad_public_key', 'X25519 rejected the public key (low order)')
  }
  let acc = 0
  for (let i = 0; i < out.length; i++) acc |= out[i]
  if (acc === 0 || out.length !== X25519_KEY_BYTES) throw new HandshakeError('bad_public_key', 'X25519 output is all zeros (low-order public key)')
  return out
}

export const generateKeyPair = (rng: Rng, backend: CryptoBackend): KeyPair => {
  const privateKey = new Uint8Array(X25519_KEY_BYTES)
  rng.fillBytes(privateKey)
  return { privateKey, publicKey: backend.x25519PublicKey(privateKey) }
}

export interface HandshakeStateOptions {
  pattern: HandshakePattern
  protocolName: string
  initiator: boolean
  prologue: Uint8Array
  rng: Rng
  backend: CryptoBackend
  /** Our static key pair (responder of NK). */
  s?: KeyPair
  /** The peer's static public key known in advance (initiator of NK). */
  rs?: Uint8Array
}

/** Runs one handshake pattern (section 5.3); each message is processed at most once. */
export class HandshakeState {
  private ss: SymmetricState
  private readonly opts: HandshakeStateOptions
  private e: KeyPair | null = null
  private re: Uint8Array | null = null
  private messageIndex = 0

  constructor(opts: HandshakeStateOptions) {
    this.opts = opts
    this.ss = SymmetricState.initialize(opts.protocolName, opts.backend)
    this.ss.mixHash(opts.prologue)
    for (const token of opts.pattern.responderPreMessage) {
      if (token !== 's') continue
      const key = opts.initiator ? opts.rs : opts.s?.publicKey
      if (key === undefined) throw new UsageError(ErrorCode.INTERNAL_ERROR, 'pattern needs the responder static key')
      this.ss.mixHash(key)
    }
  }

  get finished(): boolean {
    return this.messageIndex >= this.opts.pattern.messages.length
  }

  /** Whether the next message is ours to write. */
  get ourTurn(): boolean {
    return !this.finished && (this.messageIndex % 2 === 0) === this.opts.initiator
  }

  get remoteEphemeralPublicKey(): Uint8Array | null {
    return this.re
  }

  writeMessage(payload: Uint8Array): Uint8Array {
    if (!this.ourTurn) throw new UsageError(ErrorCode.INTERNAL_ERROR, 'not our turn to write a handshake message')
    const parts: Uint8Array[] = []
    for (const token of this.opts.pattern.messages[this.messageIndex]) {
      if (token === 'e') {
        this.e = generateKeyPair(this.opts.rng, this.opts.backend)
        parts.push(this.e.publicKey)
        this.ss.mixHash(this.e.publicKey)
      } else {
        this.mixDh(token)
      }
    }
    parts.push(this.ss.encryptAndHash(payload))
    this.messageIndex++
    const length = parts.reduce((n, p) => n + p.length, 0)
    if (length > MAX_NOISE_MESSAGE_BYTES) throw new UsageError(ErrorCode.INTERNAL_ERROR, `handshake message of ${length} bytes exceeds ${MAX_NOISE_MESSAGE_BYTES}`)
    const out = new Uint8Array(length)
    let o = 0
    for (const p of parts) {
      out.set(p, o)
      o += p.length
    }
    return out
  }

  /**
   * Processes the peer's next message and returns its payload. All or nothing: on a
   * HandshakeError the state is as before the call, so a forged message does not
   * spoil the handshake for the genuine one that may follow.
   */
  readMessage(message: Uint8Array): Uint8Array {
    if (this.finished || this.ourTurn) throw new UsageError(ErrorCode.INTERNAL_ERROR, 'not our turn to read a handshake message')
    if (message.length > MAX_NOISE_MESSAGE_BYTES) throw new HandshakeError('bad_length', `handshake message of ${message.length} bytes`)
    const saved = this.ss.clone()
    const savedRe = this.re
    try {
      let o = 0
      for (const token of this.opts.pattern.messages[this.messageIndex]) {
        if (token === 'e') {
          if (message.length - o < X25519_KEY_BYTES) throw new HandshakeError('bad_length', 'handshake message too short for an ephemeral key')
          this.re = message.slice(o, o + X25519_KEY_BYTES)
          o += X25519_KEY_BYTES
          this.ss.mixHash(this.re)
        } else {
          this.mixDh(token)
        }
      }
      const rest = message.subarray(o)
      if (this.ss.hasKey() && rest.length < AEAD_TAG_BYTES) throw new HandshakeError('bad_length', 'handshake message too short for its tag')
      const payload = this.ss.decryptAndHash(rest)
      this.messageIndex++
      return payload
    } catch (err) {
      this.ss = saved
      this.re = savedRe
      throw err
    }
  }

  /** After the last message: the transport secrets and the handshake hash. Wipes ephemeral secrets. */
  split(): { initiatorToResponder: Uint8Array; responderToInitiator: Uint8Array; handshakeHash: Uint8Array } {
    if (!this.finished) throw new UsageError(ErrorCode.INTERNAL_ERROR, 'handshake not finished')
    const [initiatorToResponder, responderToInitiator] = this.ss.split()
    const handshakeHash = this.ss.handshakeHash.slice()
    this.ss.wipe()
    this.e?.privateKey.fill(0)
    return { initiatorToResponder, responderToInitiator, handshakeHash }
  }

  private mixDh(token: Exclude<Token, 'e'>): void {
    const { backend, initiator } = this.opts
    if (token === 'ee') {
      this.ss.mixKey(dh(backend, this.requireE().privateKey, this.requireRe()))
      return
    }
    // 'es': initiator's ephemeral with responder's static.
    if (initiator) {
      const rs = this.opts.rs
      if (rs === undefined) throw new UsageError(ErrorCode.INTERNAL_ERROR, 'es needs the responder static key')
      this.ss.mixKey(dh(backend, this.requireE().privateKey, rs))
    } else {
      const s = this.opts.s
      if (s === undefined) throw new UsageError(ErrorCode.INTERNAL_ERROR, 'es needs our static key')
      this.ss.mixKey(dh(backend, s.privateKey, this.requireRe()))
    }
  }

  private requireE(): KeyPair {
    if (this.e === null) throw new UsageError(ErrorCode.INTERNAL_ERROR, 'no local ephemeral key yet')
    return this.e
  }

  private requireRe(): Uint8Array {
    if (this.re === null) throw new UsageError(ErrorCode.INTERNAL_ERROR, 'no remote ephemeral key yet')
    return this.re
  }
}
