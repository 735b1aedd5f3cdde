import { createAeadProtection, type AeadProtection } from '../crypto/aead-protection.js'
import type { CryptoBackend } from '../crypto/backend.js'
import { HandshakeError } from '../crypto/errors.js'
import { NoiseClient, NoiseServer, handshakePrologue, trafficSecretsFor, type KeyPair, type SessionKeys } from '../crypto/noise-nk.js'
import { sameBytes } from '../bytes.js'
import type { Rng } from '../rng.js'
import { CID_LENGTH, VERSION_V1 } from '../wire/packet-header.js'
import { Reader } from '../wire/reader.js'
import { type TransportParams, decodeTransportParams, encodeTransportParams, transportParamsLength } from '../wire/transport-params.js'
import { Writer } from '../wire/writer.js'

/** A client pins the server's static public key (from its configuration). */
export interface ClientSecurity {
  serverStaticPublicKey: Uint8Array
  backend?: CryptoBackend
  /** Rekey after this many packets sent (0 = only on demand). */
  keyUpdateAfterPackets?: number
  /** Rekey after this long on the same keys (0 = never by time). */
  keyUpdateAfterMs?: number
}

/** A server holds its static key pair. */
export interface ServerSecurity {
  staticKeyPair: KeyPair
  backend?: CryptoBackend
  keyUpdateAfterPackets?: number
  keyUpdateAfterMs?: number
}

export interface HandshakeOutcome {
  peerParams: TransportParams
  protection: AeadProtection
  keys: SessionKeys
}

/**
 * The encrypted session handshake (protocol-spec/handshake.md): Noise NK messages in
 * CRYPTO_HANDSHAKE frames. Message 1 carries the client's transport parameters,
 * message 2 the server's connection id and parameters; both are authenticated, and
 * the prologue binds the version and both connection ids the client chose.
 */
export class SecureHandshake {
  /** The message to (re)send in a CRYPTO_HANDSHAKE frame, once there is one. */
  outgoing: Uint8Array | null = null
  done = false
  private readonly role: 'client' | 'server'
  readonly security: ClientSecurity | ServerSecurity
  private readonly rng: Rng
  private client: NoiseClient | null = null
  /** Server: the message 1 we answered (a repeat gets the same message 2). */
  private answered: Uint8Array | null = null

  constructor(o: { role: 'client' | 'server'; security: ClientSecurity | ServerSecurity; rng: Rng }) {
    this.role = o.role
    this.security = o.security
    this.rng = o.rng
  }

  /** Client: write message 1 for the connection ids it picked. */
  start(o: { originalDcid: Uint8Array; clientScid: Uint8Array; params: TransportParams }): void {
    const security = this.security as ClientSecurity
    this.client = new NoiseClient({
      rng: this.rng,
      serverStaticPublicKey: security.serverStaticPublicKey,
      prologue: handshakePrologue({ version: VERSION_V1, originalDcid: o.originalDcid, clientScid: o.clientScid }),
      backend: security.backend,
    })
    this.outgoing = this.client.writeMessage1(encodeParams(o.params))
  }

  /**
   * Server: answer message 1. Returns the outcome the first time, undefined for a
   * repeat of the same message 1 (the caller resends `outgoing`). Throws HandshakeError.
   */
  onMessage1(o: {
    message: Uint8Array
    originalDcid: Uint8Array
    clientScid: Uint8Array
    serverCid: Uint8Array
    params: TransportParams
  }): HandshakeOutcome | undefined {
    if (this.done && this.answered === null) return undefined // released: a stale repeat
    if (this.answered !== null) {
      if (sameBytes(this.answered, o.message)) return undefined
      throw new HandshakeError('bad_length', 'a different message 1 on an established handshake')
    }
    const security = this.security as ServerSecurity
    const responder = NoiseServer.readMessage1({
      rng: this.rng,
      staticKeyPair: security.staticKeyPair,
      prologue: handshakePrologue({ version: VERSION_V1, originalDcid: o.originalDcid, clientScid: o.clientScid }),
      message: o.message,
      backend: security.backend,
    })
    const peerParams = decodeParams(responder.payload)
    const payload = new Uint8Array(1 + o.serverCid.length + transportParamsLength(o.params))
    const w = new Writer(payload)
    w.u8(o.serverCid.length)
    w.bytes(o.serverCid)
    encodeTransportParams(w, o.params)
    const { message2, keys } = responder.respond(payload)
    this.answered = o.message.slice()
    this.outgoing = message2
    this.done = true
    return { peerParams, protection: this.protection(keys), keys }
  }

  /** Client: message 2 from the server. Throws HandshakeError (a MITM lacks the pinned key). */
  onMessage2(o: { message: Uint8Array; serverCid: Uint8Array }): HandshakeOutcome & { serverCid: Uint8Array } {
    if (this.client === null || this.done) throw new HandshakeError('bad_length', 'unexpected message 2')
    const { payload, keys } = this.client.readMessage2(o.message)
    const r = new Reader(payload)
    const cidLength = r.u8()
    if (cidLength !== CID_LENGTH) throw new HandshakeError('bad_length', `server connection id of ${cidLength} bytes`)
    const serverCid = r.bytes(cidLength).slice()
    if (!sameBytes(serverCid, o.serverCid)) throw new HandshakeError('bad_key', 'the Initial header names another server connection id')
    const peerParams = decodeTransportParams(r.rest())
    this.done = true
    this.outgoing = null
    this.client = null
    return { peerParams, protection: this.protection(keys), keys, serverCid }
  }

  /**
   * The handshake is confirmed and long over: drop the messages kept for retransmission
   * (an idle server holds many sessions). A repeat of message 1 is ignored from now on.
   */
  release(): void {
    if (!this.done) return
    this.outgoing = null
    this.answered = null
    this.client = null
  }

  private protection(keys: SessionKeys): AeadProtection {
    const { sendSecret, recvSecret } = trafficSecretsFor(this.role, keys)
    return createAeadProtection({
      sendSecret,
      recvSecret,
      backend: this.security.backend,
      keyUpdateAfterPackets: this.security.keyUpdateAfterPackets ?? 0,
    })
  }
}

const encodeParams = (params: TransportParams): Uint8Array => {
  const out = new Uint8Array(transportParamsLength(params))
  encodeTransportParams(new Writer(out), params)
  return out
}

const decodeParams = (bytes: Uint8Array): TransportParams => {
  try {
    return decodeTransportParams(bytes)
  } catch (err) {
    throw new HandshakeError('bad_length', `transport parameters: ${(err as Error).message}`)
  }
}

