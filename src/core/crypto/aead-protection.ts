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
import { AEAD_NONCE_BYTES, AEAD_TAG_BYTES, type AeadCipher, type CryptoBackend, nobleBackend } from './backend.js'
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

interface Generation {
  generation: number
  secret: Uint8Array
  key: Uint8Array
  cipher: AeadCipher
  iv: Uint8Array
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

const makeGeneration = (backend: CryptoBackend, secret: Uint8Array, generation: number): Generation => {
  const { key, iv } = packetKeys(secret)
  return { generation, secret, key, cipher: backend.chacha20poly1305(key), iv }
}

const wipe = (g: Generation | null): void => {
  if (g === null) return
  g.secret.fill(0)
  g.key.fill(0)
}

const checkSecret = (secret: Uint8Array, what: string): Uint8Array => {
  if (!(secret instanceof Uint8Array) || secret.length !== 32) throw new UsageError(ErrorCode.INTERNAL_ERROR, `${what} must be 32 bytes`)
  return secret.slice()
}

export const createAeadProtection = (o: AeadProtectionOptions): AeadProtection => {
  const backend = o.backend ?? nobleBackend
  const window = new ReplayWindow(o.replayWindowPackets ?? 2048)
  const autoUpdateAfter = o.keyUpdateAfterPackets ?? 0
  const nonce = new Uint8Array(AEAD_NONCE_BYTES)
  const stats: AeadStats = { sealed: 0, opened: 0, replayed: 0, tooOld: 0, undecryptable: 0, truncated: 0, keyUpdates: 0, peerKeyUpdates: 0 }

  let send = makeGeneration(backend, checkSecret(o.sendSecret, 'sendSecret'), 0)
  /** First packet number sealed with `send` (-1: none yet), and whether the peer acknowledged one. */
  let sendFirstPn = -1
  let sendAcked = false
  let sealedInGeneration = 0
  let lastSealedPn = -1

  let recv = makeGeneration(backend, checkSecret(o.recvSecret, 'recvSecret'), 0)
  /** Smallest packet number accepted with `recv`: older packets of the other phase belong to `prev`. */
  let recvLowestPn = Infinity
  let prev: Generation | null = null
  /** Derived on first need (a packet in the other phase), kept until used. */
  let next: Generation | null = null

  const phaseOf = (g: Generation): 0 | 1 => (g.generation & 1) as 0 | 1

  const advanceSend = (): void => {
    const old = send
    send = makeGeneration(backend, nextTrafficSecret(old.secret), old.generation + 1)
    wipe(old)
    sendFirstPn = -1
    sendAcked = false
    sealedInGeneration = 0
  }

  const canUpdateKeys = (): boolean => send.generation === recv.generation && sendAcked

  const promote = (g: Generation, packetNumber: number): void => {
    wipe(prev)
    prev = recv
    recv = g
    next = null
    recvLowestPn = packetNumber
    if (send.generation < recv.generation) {
      advanceSend()
      stats.peerKeyUpdates++
    }
  }

  const tryOpen = (packet: Uint8Array, headerLength: number, packetNumber: number, keyPhase: 0 | 1): Uint8Array | null => {
    const end = packet.length
    if (!(Number.isSafeInteger(packetNumber) && packetNumber >= 0 && Number.isInteger(headerLength) && headerLength >= 1 && end - headerLength >= AEAD_TAG_BYTES)) {
      stats.truncated++
      return null
    }
    const verdict = window.check(packetNumber)
    if (verdict !== 'fresh') {
      if (verdict === 'duplicate') stats.replayed++
      else stats.tooOld++
      return null
    }
    let g: Generation | null
    if (keyPhase === phaseOf(recv)) g = recv
    else if (packetNumber < recvLowestPn && prev !== null) g = prev
    else if (packetNumber < recvLowestPn && recv.generation > 0) g = null // the previous keys are gone
    else g = next ??= makeGeneration(backend, nextTrafficSecret(recv.secret), recv.generation + 1)
    if (g === null || !g.cipher.open(packetNonce(g.iv, packetNumber, nonce), packet.subarray(0, headerLength), packet, headerLength, end)) {
      stats.undecryptable++
      return null
    }
    window.accept(packetNumber)
    stats.opened++
    if (g === next) promote(g, packetNumber)
    else if (g === recv && packetNumber < recvLowestPn) recvLowestPn = packetNumber
    // Packets of the previous generation are all older than recvLowestPn; once that
    // falls out of the replay window they would be refused anyway.
    if (prev !== null && recvLowestPn <= window.largest - window.sizePackets) {
      wipe(prev)
      prev = null
    }
    return packet.subarray(headerLength, end - AEAD_TAG_BYTES)
  }

  const protection: AeadProtection = {
    name: 'chacha20-poly1305',
    overheadBytes: AEAD_TAG_BYTES,
    get sealKeyPhase() {
      return phaseOf(send)
    },
    get keyPhase() {
      return phaseOf(send)
    },
    get sendGeneration() {
      return send.generation
    },
    get recvGeneration() {
      return recv.generation
    },
    stats,
    get canUpdateKeys() {
      return canUpdateKeys()
    },
    get integrityLimitReached() {
      return stats.undecryptable >= CHACHA20_POLY1305_INTEGRITY_LIMIT
    },

    seal(buf, opts) {
      const { start, payloadStart, payloadEnd, packetNumber } = opts
      if (payloadEnd + AEAD_TAG_BYTES > buf.length || !(start < payloadStart && payloadStart <= payloadEnd)) {
        throw new UsageError(ErrorCode.INTERNAL_ERROR, 'seal: no room for the tag or bad packet bounds')
      }
      // A repeated nonce under one key would leak the keystream and the Poly1305 key.
      if (!(Number.isSafeInteger(packetNumber) && packetNumber > lastSealedPn)) {
        throw new UsageError(ErrorCode.INTERNAL_ERROR, `seal: packet number ${packetNumber} not above ${lastSealedPn} (nonce reuse)`)
      }
      const phase = phaseOf(send)
      if (opts.keyPhase !== undefined && opts.keyPhase !== phase) throw new UsageError(ErrorCode.INTERNAL_ERROR, 'seal: header key phase differs from sealKeyPhase')
      if ((buf[start] & FORM_BIT) === 0) buf[start] = (buf[start] & ~KEY_PHASE_BIT) | (phase << 5)
      send.cipher.seal(packetNonce(send.iv, packetNumber, nonce), buf.subarray(start, payloadStart), buf, payloadStart, payloadEnd)
      lastSealedPn = packetNumber
      if (sendFirstPn < 0) sendFirstPn = packetNumber
      stats.sealed++
      sealedInGeneration++
      if (autoUpdateAfter > 0 && sealedInGeneration >= autoUpdateAfter && canUpdateKeys()) {
        advanceSend()
        stats.keyUpdates++
      }
      return payloadEnd + AEAD_TAG_BYTES
    },

    open(packet, opts) {
      try {
        const keyPhase = opts.keyPhase ?? (packet.length > 0 && (packet[0] & FORM_BIT) === 0 ? (((packet[0] & KEY_PHASE_BIT) >>> 5) as 0 | 1) : phaseOf(recv))
        return tryOpen(packet, opts.headerLength, opts.packetNumber, keyPhase)
      } catch {
        stats.undecryptable++
        return null
      }
    },

    keyUpdate() {
      if (!canUpdateKeys()) throw new UsageError(ErrorCode.INTERNAL_ERROR, 'key update not allowed yet: previous update unconfirmed')
      advanceSend()
      stats.keyUpdates++
    },

    onPacketAcknowledged(packetNumber) {
      if (sendFirstPn >= 0 && packetNumber >= sendFirstPn) sendAcked = true
    },

    discardPreviousKeys() {
      wipe(prev)
      prev = null
    },
  }
  return protection
}
