/**
 * Packet protection after the handshake: ChaCha20-Poly1305 over every packet, with
 * per-direction keys, a nonce built from the packet number, an anti-replay window and
 * key updates (QUIC-style, RFC 9001 section 6). See protocol-spec/handshake.md.
 *
 *   key   = HKDF-Expand-Label(secret, "key", "", 32)
 *   iv    = HKDF-Expand-Label(secret, "iv", "", 12)
 *   nonce = iv XOR (packet number as 64-bit big-endian, right-aligned in 12 bytes)
 *   AAD   = the packet header; the 16-byte tag follows the encrypted payload
 *   next secret (key update) = HKDF-Expand-Label(secret, "ku", "", 32)
 *
 * The key-phase bit (0x20 of a short header's first byte) is the low bit of the
 * sender's key generation. seal() writes it itself, so the caller's header may carry
 * any value there; open() reads it from the packet unless told otherwise.
 */
import { ErrorCode, UsageError } from '../errors.js'
import type { PacketProtection } from '../protection.js'
import { AEAD_NONCE_BYTES, AEAD_TAG_BYTES, type CryptoBackend, nobleBackend } from './backend.js'
import { hkdfExpandLabel } from './kdf.js'
import { ReplayWindow } from './replay-window.js'

const FORM_BIT = 0x80
const KEY_PHASE_BIT = 0x20
const TWO_32 = 4294967296
/** RFC 9001 section 6.6: forgeries tolerated per ChaCha20-Poly1305 key set before the session must close. */
export const CHACHA20_POLY1305_INTEGRITY_LIMIT = 2 ** 36

export interface AeadProtectionOptions {
  /** Our traffic secret (32 bytes): trafficSecretsFor(role, keys).sendSecret. */
  sendSecret: Uint8Array
  recvSecret: Uint8Array
  backend?: CryptoBackend
  /** Packets remembered by the anti-replay window (multiple of 32). Default 2048. */
  replayWindowPackets?: number
  /**
   * Start a key update by itself once this many packets were sealed in the current
   * generation and an update is allowed (see canUpdateKeys). 0 (default): only on keyUpdate().
   */
  keyUpdateAfterPackets?: number
}

export interface AeadSealOptions {
  start: number
  payloadStart: number
  payloadEnd: number
  packetNumber: number
  /** If given, must equal sealKeyPhase (a cross-check of the caller's header). */
  keyPhase?: 0 | 1
}

export interface AeadOpenOptions {
  headerLength: number
  packetNumber: number
  /** The packet's key-phase bit; read from a short header's first byte when omitted. */
  keyPhase?: 0 | 1
}

export interface AeadStats {
  sealed: number
  opened: number
  /** Refused: packet number already accepted (inside the window). */
  replayed: number
  /** Refused: packet number below the replay window. */
  tooOld: number
  /** Refused: tag did not verify (forged, tampered, wrong key) or its keys are gone. */
  undecryptable: number
  /** Refused: shorter than header + tag, or nonsensical arguments. */
  truncated: number
  /** Key updates we started. */
  keyUpdates: number
  /** Key updates the peer started (we followed). */
  peerKeyUpdates: number
}

export interface AeadProtection extends PacketProtection {
  /** Key phase to put in short headers now (seal() also writes it). */
  readonly sealKeyPhase: 0 | 1
  /** Alias of sealKeyPhase. */
  readonly keyPhase: 0 | 1
  readonly sendGeneration: number
  readonly recvGeneration: number
  readonly stats: AeadStats
  /**
   * Whether keyUpdate() may be called: the peer has caught up with our current send
   * generation, and one of our packets sealed in it has been acknowledged (so the peer
   * is ready to recognise the next phase).
   */
  readonly canUpdateKeys: boolean
  /** Too many forgeries for this key (RFC 9001 section 6.6): close the session. */
  readonly integrityLimitReached: boolean
  seal(buf: Uint8Array, opts: AeadSealOptions): number
  /** Decrypts in place; returns the payload (a view on `packet`) or null. Never throws. */
  open(packet: Uint8Array, opts: AeadOpenOptions): Uint8Array | null
  /** Starts a key update: the next packet sealed uses the next generation. Throws UsageError unless canUpdateKeys. */
  keyUpdate(): void
  /** The session tells us which packets the peer acknowledged (any ACKed packet number will do). */
  onPacketAcknowledged(packetNumber: number): void
  /** Forget the previous receive keys now (e.g. three PTOs after a key update). */
  discardPreviousKeys(): void
}

/** Packet key and IV of one traffic secret. */
export const packetKeys = (secret: Uint8Array): { key: Uint8Array; iv: Uint8Array } => ({
  key: hkdfExpandLabel({ secret, label: 'key', length: 32 }),
  iv: hkdfExpandLabel({ secret, label: 'iv', length: AEAD_NONCE_BYTES }),
})

/** The traffic secret of the next key generation. */
export const nextTrafficSecret = (secret: Uint8Array): Uint8Array => hkdfExpandLabel({ secret, label: 'ku', length: 32 })

/** nonce = iv XOR packet number (64-bit big-endian in the last 8 bytes). Writes into `out`. */
export const packetNonce = (iv: Uint8Array, packetNumber: number, out: Uint8Array = new Uint8Array(AEAD_NONCE_BYTES)): Uint8Array => {
  out.set(iv)
  return xorPacketNumber(out, packetNumber)
}

const xorPacketNumber = (out: Uint8Array, packetNumber: number): Uint8Array => {
  const hi = Math.floor(packetNumber / TWO_32)
  const lo = packetNumber >>> 0
  out[4] ^= hi >>> 24
  out[5] ^= (hi >>> 16) & 0xff
  out[6] ^= (hi >>> 8) & 0xff
  out[7] ^= hi & 0xff
  out[8] ^= lo >>> 24
  out[9] ^= (lo >>> 16) & 0xff
  out[10] ^= (lo >>> 8) & 0xff
  out[11] ^= lo & 0xff
  return out
}

/*
 * An idle server holds tens of thousands of sessions, so a session's packet protection
 * is a handful of objects: one buffer with the current send and receive generations
 * (secret | key | iv, 76 bytes each) and the replay window's bits; no closures, no
 * per-key cipher or KeyObject (the backend's stateless aeadSeal / aeadOpen take the key
 * bytes); one nonce scratch buffer shared by all. The previous and next receive
 * generations exist only around a key update.
 */
const SECRET_OFFSET = 0
const KEY_OFFSET = 32
const IV_OFFSET = 64
/** Bytes of one generation's key material. */
export const GENERATION_BYTES = IV_OFFSET + AEAD_NONCE_BYTES

/** secret | key | iv of one traffic secret (the secret is copied). */
export const generationMaterial = (secret: Uint8Array): Uint8Array => {
  const { key, iv } = packetKeys(secret)
  const m = new Uint8Array(GENERATION_BYTES)
  m.set(secret, SECRET_OFFSET)
  m.set(key, KEY_OFFSET)
  m.set(iv, IV_OFFSET)
  key.fill(0)
  return m
}

/** The material of the generation after the one at m[offset, offset + GENERATION_BYTES). */
const nextGeneration = (m: Uint8Array, offset = 0): Uint8Array => {
  const secret = nextTrafficSecret(m.subarray(offset + SECRET_OFFSET, offset + SECRET_OFFSET + 32))
  const next = generationMaterial(secret)
  secret.fill(0)
  return next
}

/** Shared by every session: seal / open are synchronous, so one scratch nonce will do. */
const NONCE = new Uint8Array(AEAD_NONCE_BYTES)

const nonceOf = (m: Uint8Array, offset: number, packetNumber: number): Uint8Array => {
  for (let i = 0; i < AEAD_NONCE_BYTES; i++) NONCE[i] = m[offset + IV_OFFSET + i]
  return xorPacketNumber(NONCE, packetNumber)
}

const keyOf = (m: Uint8Array, offset: number): Uint8Array => m.subarray(offset + KEY_OFFSET, offset + KEY_OFFSET + 32)

/** Layout of a protection's one buffer: send generation, receive generation, replay-window bits. */
const SEND_AT = 0
const RECV_AT = GENERATION_BYTES
/** Word-aligned start of the replay window's bits. */
const WINDOW_AT = (2 * GENERATION_BYTES + 3) & ~3

const wipe = (m: Uint8Array | null): void => {
  if (m !== null) m.fill(0)
}

const checkSecret = (secret: Uint8Array, what: string): Uint8Array => {
  if (!(secret instanceof Uint8Array) || secret.length !== 32) throw new UsageError(ErrorCode.INTERNAL_ERROR, `${what} must be 32 bytes`)
  return secret
}

/** -1 stands for "none yet" in packet-number fields (small integers keep the object compact). */
const NONE = -1

class AeadPacketProtection implements AeadProtection {
  readonly name = 'chacha20-poly1305'
  readonly overheadBytes = AEAD_TAG_BYTES
  private readonly backend: CryptoBackend
  private readonly window: ReplayWindow
  private readonly autoUpdateAfter: number
  /**
   * The current send generation at SEND_AT, the current receive generation at RECV_AT,
   * the replay window's bits from WINDOW_AT: one allocation per session.
   */
  private readonly keys: Uint8Array

  private sendGen = 0
  /** First packet number sealed with `send` (NONE: none yet), and whether the peer acknowledged one. */
  private sendFirstPn = NONE
  private sendAcked = false
  private sealedInGeneration = 0
  private lastSealedPn = NONE

  private recvGen = 0
  /** Smallest packet number accepted with `recv` (NONE: none yet): older packets of the other phase belong to `prev`. */
  private recvLowestPn = NONE
  /** The previous receive generation (recvGen - 1) while its packets may still arrive. */
  private prev: Uint8Array | null = null
  /** The next receive generation (recvGen + 1), derived on first need, kept until used. */
  private next: Uint8Array | null = null

  private nSealed = 0
  private nOpened = 0
  private nReplayed = 0
  private nTooOld = 0
  private nUndecryptable = 0
  private nTruncated = 0
  private nKeyUpdates = 0
  private nPeerKeyUpdates = 0

  constructor(o: AeadProtectionOptions) {
    this.backend = o.backend ?? nobleBackend
    const windowPackets = o.replayWindowPackets ?? 2048
    // ReplayWindow checks the size; a bad one must not size the buffer first.
    const windowWords = Number.isInteger(windowPackets) && windowPackets >= 32 ? windowPackets >>> 5 : 0
    this.keys = new Uint8Array(WINDOW_AT + 4 * windowWords)
    this.window = new ReplayWindow(windowPackets, new Uint32Array(this.keys.buffer, WINDOW_AT, windowWords))
    this.autoUpdateAfter = o.keyUpdateAfterPackets ?? 0
    this.install(SEND_AT, generationMaterial(checkSecret(o.sendSecret, 'sendSecret')))
    this.install(RECV_AT, generationMaterial(checkSecret(o.recvSecret, 'recvSecret')))
  }

  get sealKeyPhase(): 0 | 1 {
    return (this.sendGen & 1) as 0 | 1
  }

  get keyPhase(): 0 | 1 {
    return (this.sendGen & 1) as 0 | 1
  }

  get sendGeneration(): number {
    return this.sendGen
  }

  get recvGeneration(): number {
    return this.recvGen
  }

  get stats(): AeadStats {
    return {
      sealed: this.nSealed,
      opened: this.nOpened,
      replayed: this.nReplayed,
      tooOld: this.nTooOld,
      undecryptable: this.nUndecryptable,
      truncated: this.nTruncated,
      keyUpdates: this.nKeyUpdates,
      peerKeyUpdates: this.nPeerKeyUpdates,
    }
  }

  get canUpdateKeys(): boolean {
    return this.sendGen === this.recvGen && this.sendAcked
  }

  get integrityLimitReached(): boolean {
    return this.nUndecryptable >= CHACHA20_POLY1305_INTEGRITY_LIMIT
  }

  seal(buf: Uint8Array, opts: AeadSealOptions): number {
    const { start, payloadStart, payloadEnd, packetNumber } = opts
    if (payloadEnd + AEAD_TAG_BYTES > buf.length || !(start < payloadStart && payloadStart <= payloadEnd)) {
      throw new UsageError(ErrorCode.INTERNAL_ERROR, 'seal: no room for the tag or bad packet bounds')
    }
    // A repeated nonce under one key would leak the keystream and the Poly1305 key.
    if (!(Number.isSafeInteger(packetNumber) && packetNumber > this.lastSealedPn)) {
      throw new UsageError(ErrorCode.INTERNAL_ERROR, `seal: packet number ${packetNumber} not above ${this.lastSealedPn} (nonce reuse)`)
    }
    const phase = this.sendGen & 1
    if (opts.keyPhase !== undefined && opts.keyPhase !== phase) throw new UsageError(ErrorCode.INTERNAL_ERROR, 'seal: header key phase differs from sealKeyPhase')
    if ((buf[start] & FORM_BIT) === 0) buf[start] = (buf[start] & ~KEY_PHASE_BIT) | (phase << 5)
    const m = this.keys
    this.backend.aeadSeal(keyOf(m, SEND_AT), nonceOf(m, SEND_AT, packetNumber), buf.subarray(start, payloadStart), buf, payloadStart, payloadEnd)
    this.lastSealedPn = packetNumber
    if (this.sendFirstPn === NONE) this.sendFirstPn = packetNumber
    this.nSealed++
    this.sealedInGeneration++
    if (this.autoUpdateAfter > 0 && this.sealedInGeneration >= this.autoUpdateAfter && this.canUpdateKeys) {
      this.advanceSend()
      this.nKeyUpdates++
    }
    return payloadEnd + AEAD_TAG_BYTES
  }

  open(packet: Uint8Array, opts: AeadOpenOptions): Uint8Array | null {
    try {
      const keyPhase = opts.keyPhase ?? (packet.length > 0 && (packet[0] & FORM_BIT) === 0 ? (((packet[0] & KEY_PHASE_BIT) >>> 5) as 0 | 1) : ((this.recvGen & 1) as 0 | 1))
      return this.tryOpen(packet, opts.headerLength, opts.packetNumber, keyPhase)
    } catch {
      this.nUndecryptable++
      return null
    }
  }

  keyUpdate(): void {
    if (!this.canUpdateKeys) throw new UsageError(ErrorCode.INTERNAL_ERROR, 'key update not allowed yet: previous update unconfirmed')
    this.advanceSend()
    this.nKeyUpdates++
  }

  onPacketAcknowledged(packetNumber: number): void {
    if (this.sendFirstPn !== NONE && packetNumber >= this.sendFirstPn) this.sendAcked = true
  }

  discardPreviousKeys(): void {
    wipe(this.prev)
    this.prev = null
  }

  /** Copies a generation's material into place and wipes the copy. */
  private install(offset: number, material: Uint8Array): void {
    this.keys.set(material, offset)
    material.fill(0)
  }

  private advanceSend(): void {
    this.install(SEND_AT, nextGeneration(this.keys, SEND_AT))
    this.sendGen++
    this.sendFirstPn = NONE
    this.sendAcked = false
    this.sealedInGeneration = 0
  }

  /** The peer moved to the next generation: `next` becomes `recv`, `recv` becomes `prev`. */
  private promote(packetNumber: number): void {
    wipe(this.prev)
    this.prev = this.keys.slice(RECV_AT, RECV_AT + GENERATION_BYTES)
    this.install(RECV_AT, this.next!)
    this.recvGen++
    this.next = null
    this.recvLowestPn = packetNumber
    if (this.sendGen < this.recvGen) {
      this.advanceSend()
      this.nPeerKeyUpdates++
    }
  }

  private tryOpen(packet: Uint8Array, headerLength: number, packetNumber: number, keyPhase: 0 | 1): Uint8Array | null {
    const end = packet.length
    if (!(Number.isSafeInteger(packetNumber) && packetNumber >= 0 && Number.isInteger(headerLength) && headerLength >= 1 && end - headerLength >= AEAD_TAG_BYTES)) {
      this.nTruncated++
      return null
    }
    const verdict = this.window.check(packetNumber)
    if (verdict !== 'fresh') {
      if (verdict === 'duplicate') this.nReplayed++
      else this.nTooOld++
      return null
    }
    const older = this.recvLowestPn === NONE || packetNumber < this.recvLowestPn
    // `m` holds the keys at `at`: the current receive generation in this.keys, or prev / next.
    let m: Uint8Array | null
    let at = 0
    if (keyPhase === (this.recvGen & 1)) {
      m = this.keys
      at = RECV_AT
    } else if (older && this.prev !== null) m = this.prev
    else if (older && this.recvGen > 0) m = null // the previous keys are gone
    else m = this.next ??= nextGeneration(this.keys, RECV_AT)
    if (m === null || !this.backend.aeadOpen(keyOf(m, at), nonceOf(m, at, packetNumber), packet.subarray(0, headerLength), packet, headerLength, end)) {
      this.nUndecryptable++
      return null
    }
    this.window.accept(packetNumber)
    this.nOpened++
    if (m === this.next) this.promote(packetNumber)
    else if (m === this.keys && (this.recvLowestPn === NONE || packetNumber < this.recvLowestPn)) this.recvLowestPn = packetNumber
    // Packets of the previous generation are all older than recvLowestPn; once that
    // falls out of the replay window they would be refused anyway.
    if (this.prev !== null && this.recvLowestPn <= this.window.largest - this.window.sizePackets) {
      wipe(this.prev)
      this.prev = null
    }
    return packet.subarray(headerLength, end - AEAD_TAG_BYTES)
  }
}

export const createAeadProtection = (o: AeadProtectionOptions): AeadProtection => new AeadPacketProtection(o)
