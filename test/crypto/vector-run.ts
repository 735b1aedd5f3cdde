/**
 * The deterministic run behind the test vectors of protocol-spec/handshake.md: seeded
 * keys, fixed inputs, every intermediate value named. vectors.test.ts re-derives them
 * and compares with the spec byte for byte; `npx tsx test/crypto/vector-run.ts` prints them.
 */
import { createAeadProtection, nextTrafficSecret, packetKeys, packetNonce } from '../../src/core/crypto/aead-protection.js'
import type { CryptoBackend } from '../../src/core/crypto/backend.js'
import { formatKeyLog } from '../../src/core/crypto/key-log.js'
import { handshakePrologue, NoiseClient, NoiseServer, staticKeyPairFromPrivate, trafficSecretsFor } from '../../src/core/crypto/noise-nk.js'
import { mintRetryToken } from '../../src/core/crypto/retry-token.js'
import { SeededRng } from '../../src/core/rng.js'
import { VERSION_V1 } from '../../src/core/wire/packet-header.js'
import { buildShortPacket, fixedBytesRng, hex, unhex } from './helpers.js'

const seeded32 = (seed: number): Uint8Array => {
  const out = new Uint8Array(32)
  new SeededRng(seed).fillBytes(out)
  return out
}

export const VECTOR_INPUTS = {
  originalDcid: unhex('8394c8f03e515708'),
  clientScid: unhex('f067a5502a4262b5'),
  payload1: new TextEncoder().encode('pigeon client hello'),
  payload2: new TextEncoder().encode('pigeon server hello'),
  /** The server's connection id: the DCID of client -> server short headers. */
  serverCid: unhex('1122334455667788'),
  packetPayload: unhex('01000000'),
  packetNumber: 0x1234,
  retryAddress: '192.0.2.1:4433',
  retryNowMs: 1_700_000_000_000,
}

/** [name, value] in spec order; values are lowercase hex except the key log text. */
export const computeVectors = (backend?: CryptoBackend): { vectors: Array<[string, string]>; keyLog: string } => {
  const I = VECTOR_INPUTS
  const staticPrivate = seeded32(0x50470001)
  const clientEphemeral = seeded32(1)
  const serverEphemeral = seeded32(2)
  const retryKey = seeded32(3)
  const server = staticKeyPairFromPrivate(staticPrivate, backend)
  const prologue = handshakePrologue({ version: VERSION_V1, originalDcid: I.originalDcid, clientScid: I.clientScid })
  const client = new NoiseClient({ rng: fixedBytesRng(clientEphemeral), serverStaticPublicKey: server.publicKey, prologue, backend })
  const message1 = client.writeMessage1(I.payload1)
  const responder = NoiseServer.readMessage1({ rng: fixedBytesRng(serverEphemeral), staticKeyPair: server, prologue, message: message1, backend })
  const { message2, keys } = responder.respond(I.payload2)
  const done = client.readMessage2(message2)
  if (hex(done.keys.handshakeHash) !== hex(keys.handshakeHash)) throw new Error('handshake hashes differ')

  const c = packetKeys(keys.clientToServer)
  const s = packetKeys(keys.serverToClient)
  const sealer = createAeadProtection({ ...trafficSecretsFor('client', keys), backend })
  const p0 = buildShortPacket({ packetNumber: I.packetNumber, payload: I.packetPayload, pnLength: 2, dcid: I.serverCid })
  const plain0 = hex(p0.buf.subarray(0, p0.payloadEnd))
  const sealed0 = hex(p0.buf.subarray(0, sealer.seal(p0.buf, p0)))
  // Key update: the next packet goes out in generation 1 (key phase 1).
  sealer.onPacketAcknowledged(I.packetNumber)
  sealer.keyUpdate()
  const ku1 = nextTrafficSecret(keys.clientToServer)
  const c1 = packetKeys(ku1)
  const p1 = buildShortPacket({ packetNumber: I.packetNumber + 1, payload: I.packetPayload, pnLength: 2, dcid: I.serverCid })
  const sealed1 = hex(p1.buf.subarray(0, sealer.seal(p1.buf, p1)))

  const token = mintRetryToken({ key: retryKey, nowMs: I.retryNowMs, address: I.retryAddress, originalDcid: I.originalDcid })

  const vectors: Array<[string, string]> = [
    ['hs-server-static-private', hex(staticPrivate)],
    ['hs-server-static-public', hex(server.publicKey)],
    ['hs-client-ephemeral-private', hex(clientEphemeral)],
    ['hs-server-ephemeral-private', hex(serverEphemeral)],
    ['hs-prologue', hex(prologue)],
    ['hs-payload1', hex(I.payload1)],
    ['hs-message1', hex(message1)],
    ['hs-payload2', hex(I.payload2)],
    ['hs-message2', hex(message2)],
    ['hs-handshake-hash', hex(keys.handshakeHash)],
    ['hs-client-secret', hex(keys.clientToServer)],
    ['hs-server-secret', hex(keys.serverToClient)],
    ['aead-client-key', hex(c.key)],
    ['aead-client-iv', hex(c.iv)],
    ['aead-server-key', hex(s.key)],
    ['aead-server-iv', hex(s.iv)],
    ['aead-nonce-1234', hex(packetNonce(c.iv, I.packetNumber))],
    ['aead-packet-plain', plain0],
    ['aead-packet-sealed', sealed0],
    ['ku-client-secret-1', hex(ku1)],
    ['ku-client-key-1', hex(c1.key)],
    ['ku-client-iv-1', hex(c1.iv)],
    ['aead-packet-phase1-sealed', sealed1],
    ['retry-key', hex(retryKey)],
    ['retry-token', hex(token)],
  ]
  return { vectors, keyLog: formatKeyLog({ keys }) }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { vectors, keyLog } = computeVectors()
  for (const [name, value] of vectors) console.log(`    vector ${name}: ${value}`)
  console.log(keyLog)
}
