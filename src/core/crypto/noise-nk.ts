/**
 * pigeon's 1-RTT handshake: the Noise NK pattern with X25519, ChaCha20-Poly1305 and
 * SHA-256 (protocol name "Noise_NK_25519_ChaChaPoly_SHA256", byte-compatible with any
 * Noise implementation given the same prologue).
 *
 *     NK:
 *       <- s
 *       ...
 *       -> e, es        message 1, client -> server: 32-byte e, then payload + 16-byte tag
 *       <- e, ee        message 2, server -> client: 32-byte e, then payload + 16-byte tag
 *
 * The client pins the server's static public key, so only the holder of the private
 * key can read message 1 or produce a message 2 the client accepts (a man in the
 * middle fails); the traffic secrets also depend on ee, so recording the traffic and
 * later stealing the static key reveals nothing after message 1 (forward secrecy).
 * Message 1's payload is encrypted to the server's static key only: it is neither
 * forward secret nor replay protected, so it should carry transport parameters, not
 * credentials. The prologue binds the protocol version and the connection ids.
 *
 * Sans-IO: messages in, messages out; randomness only from the injected Rng.
 */
import { ErrorCode, UsageError } from '../errors.js'
import type { Rng } from '../rng.js'
import { type CryptoBackend, nobleBackend, X25519_KEY_BYTES } from './backend.js'
import { HandshakeError } from './errors.js'
import { generateKeyPair, HandshakeState, type HandshakePattern, type KeyPair } from './noise-state.js'

export const NOISE_PROTOCOL_NAME = 'Noise_NK_25519_ChaChaPoly_SHA256'

export const NK: HandshakePattern = {
  name: 'NK',
  responderPreMessage: ['s'],
  messages: [
    ['e', 'es'],
    ['e', 'ee'],
  ],
}

/** Bytes a handshake message adds to its payload: ephemeral key + AEAD tag. */
export const HANDSHAKE_MESSAGE_OVERHEAD_BYTES = 32 + 16

export type { KeyPair }

/** What a completed handshake yields, the same on both sides. */
export interface SessionKeys {
  /** Traffic secret of the client -> server direction (32 bytes, Noise Split output 1). */
  clientToServer: Uint8Array
  /** Traffic secret of the server -> client direction (32 bytes, Split output 2). */
  serverToClient: Uint8Array
  /** The final handshake hash h: a channel binding both sides share (e.g. sign it to bind a login). */
  handshakeHash: Uint8Array
  /** Public: the first 32 bytes of message 1, visible on the wire; names this handshake in key logs. */
  clientEphemeralPublicKey: Uint8Array
}

/** The send / receive traffic secrets of one side, for createAeadProtection. */
export const trafficSecretsFor = (role: 'client' | 'server', keys: SessionKeys): { sendSecret: Uint8Array; recvSecret: Uint8Array } =>
  role === 'client'
    ? { sendSecret: keys.clientToServer, recvSecret: keys.serverToClient }
    : { sendSecret: keys.serverToClient, recvSecret: keys.clientToServer }

const PROLOGUE_LABEL = new TextEncoder().encode('pigeon')

/**
 * The prologue both sides mix into the handshake hash:
 *   "pigeon" (6 ASCII bytes) || version (u32) || len (u8) || originalDcid || len (u8) || clientScid
 * originalDcid is the DCID of the client's very first INITIAL (before any RETRY),
 * clientScid the client's own connection id. A middlebox that rewrites either, or the
 * version, makes message 1 fail authentication.
 */
export const handshakePrologue = (o: { version: number; originalDcid: Uint8Array; clientScid: Uint8Array }): Uint8Array => {
  if (o.originalDcid.length > 255 || o.clientScid.length > 255) throw new UsageError(ErrorCode.INTERNAL_ERROR, 'connection id too long for the prologue')
  const out = new Uint8Array(PROLOGUE_LABEL.length + 4 + 1 + o.originalDcid.length + 1 + o.clientScid.length)
  let i = 0
  out.set(PROLOGUE_LABEL, i)
  i += PROLOGUE_LABEL.length
  new DataView(out.buffer).setUint32(i, o.version >>> 0)
  i += 4
  out[i++] = o.originalDcid.length
  out.set(o.originalDcid, i)
  i += o.originalDcid.length
  out[i++] = o.clientScid.length
  out.set(o.clientScid, i)
  return out
}

/** A server's long-term key pair; randomness from the injected Rng (a CSPRNG in production). */
export const generateStaticKeyPair = (o: { rng: Rng; backend?: CryptoBackend }): KeyPair => generateKeyPair(o.rng, o.backend ?? nobleBackend)

/** The key pair of a stored 32-byte private key. */
export const staticKeyPairFromPrivate = (privateKey: Uint8Array, backend: CryptoBackend = nobleBackend): KeyPair => {
  checkKey(privateKey, 'static private key')
  return { privateKey, publicKey: backend.x25519PublicKey(privateKey) }
}

const checkKey = (key: Uint8Array, what: string): void => {
  if (!(key instanceof Uint8Array) || key.length !== X25519_KEY_BYTES) {
    throw new HandshakeError('bad_key', `${what} must be ${X25519_KEY_BYTES} bytes`)
  }
}

export interface NoiseClientOptions {
  rng: Rng
  /** The pinned server key from the client's configuration. */
  serverStaticPublicKey: Uint8Array
  prologue: Uint8Array
  backend?: CryptoBackend
}

export type NoiseClientState = 'start' | 'awaiting_message2' | 'done'

/** The initiator. writeMessage1 once, then readMessage2 until one succeeds. */
export class NoiseClient {
  private readonly hs: HandshakeState
  private sent: Uint8Array | null = null
  private keys: SessionKeys | null = null

  constructor(o: NoiseClientOptions) {
    checkKey(o.serverStaticPublicKey, 'server static public key')
    this.hs = new HandshakeState({
      pattern: NK,
      protocolName: NOISE_PROTOCOL_NAME,
      initiator: true,
      prologue: o.prologue,
      rng: o.rng,
      backend: o.backend ?? nobleBackend,
      rs: o.serverStaticPublicKey.slice(),
    })
  }

  get state(): NoiseClientState {
    return this.keys !== null ? 'done' : this.sent !== null ? 'awaiting_message2' : 'start'
  }

  /** Message 1 as sent: retransmit these same bytes, message 1 cannot be rebuilt. */
  get message1(): Uint8Array | null {
    return this.sent
  }

  writeMessage1(payload: Uint8Array = new Uint8Array(0)): Uint8Array {
    if (this.sent !== null) throw new UsageError(ErrorCode.INTERNAL_ERROR, 'message 1 already written')
    this.sent = this.hs.writeMessage(payload)
    return this.sent
  }

  /**
   * Authenticates the server's reply. Throws HandshakeError for anything but a message
   * 2 from the holder of the pinned key answering our message 1; the client state is
   * then unchanged, so the caller may drop the message and keep waiting.
   */
  readMessage2(message: Uint8Array): { payload: Uint8Array; keys: SessionKeys } {
    if (this.state !== 'awaiting_message2') throw new UsageError(ErrorCode.INTERNAL_ERROR, `readMessage2 in state ${this.state}`)
    const payload = this.hs.readMessage(message)
    const { initiatorToResponder, responderToInitiator, handshakeHash } = this.hs.split()
    const clientEphemeralPublicKey = (this.sent as Uint8Array).slice(0, X25519_KEY_BYTES)
    this.keys = { clientToServer: initiatorToResponder, serverToClient: responderToInitiator, handshakeHash, clientEphemeralPublicKey }
    return { payload, keys: this.keys }
  }
}

export interface NoiseServerReadOptions {
  rng: Rng
  staticKeyPair: KeyPair
  prologue: Uint8Array
  /** Message 1 as received. */
  message: Uint8Array
  backend?: CryptoBackend
}

/**
 * The responder. `NoiseServer.readMessage1` validates message 1 (throwing
 * HandshakeError, having kept no state) and returns a one-shot responder holding the
 * client's payload; `respond` writes message 2 and yields the session keys.
 */
export class NoiseServer {
  /** Message 1's decrypted payload. */
  readonly payload: Uint8Array
  readonly clientEphemeralPublicKey: Uint8Array
  private readonly hs: HandshakeState
  private responded = false

  private constructor(hs: HandshakeState, payload: Uint8Array) {
    this.hs = hs
    this.payload = payload
    this.clientEphemeralPublicKey = hs.remoteEphemeralPublicKey as Uint8Array
  }

  static readMessage1(o: NoiseServerReadOptions): NoiseServer {
    checkKey(o.staticKeyPair.privateKey, 'static private key')
    checkKey(o.staticKeyPair.publicKey, 'static public key')
    const hs = new HandshakeState({
      pattern: NK,
      protocolName: NOISE_PROTOCOL_NAME,
      initiator: false,
      prologue: o.prologue,
      rng: o.rng,
      backend: o.backend ?? nobleBackend,
      s: o.staticKeyPair,
    })
    const payload = hs.readMessage(o.message)
    return new NoiseServer(hs, payload)
  }

  respond(payload: Uint8Array = new Uint8Array(0)): { message2: Uint8Array; keys: SessionKeys } {
    if (this.responded) throw new UsageError(ErrorCode.INTERNAL_ERROR, 'message 2 already written')
    this.responded = true
    const message2 = this.hs.writeMessage(payload)
    const { initiatorToResponder, responderToInitiator, handshakeHash } = this.hs.split()
    return {
      message2,
      keys: { clientToServer: initiatorToResponder, serverToClient: responderToInitiator, handshakeHash, clientEphemeralPublicKey: this.clientEphemeralPublicKey },
    }
  }
}
