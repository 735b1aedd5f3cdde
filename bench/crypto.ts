/**
 * Cost of the secure session's cryptography on one core, no sockets:
 *  - Noise NK handshakes per second, the server's side (read message 1 + write message 2)
 *    and the client's side (write message 1 + read message 2) timed separately, with
 *    the Node/OpenSSL backend (production) and the pure-JS noble backend (the core's default);
 *  - ChaCha20-Poly1305 packet protection: seal + open of 1200-byte datagrams, against
 *    the CRC-32C protection and no protection measured in the same run.
 * Each figure is the median of several rounds after a warm-up.
 */
import { createAeadProtection } from '../src/core/crypto/aead-protection.js'
import { type CryptoBackend, nobleBackend } from '../src/core/crypto/backend.js'
import { generateStaticKeyPair, handshakePrologue, NoiseClient, NoiseServer } from '../src/core/crypto/noise-nk.js'
import { checksumProtection, nullProtection, type PacketProtection } from '../src/core/protection.js'
import { SeededRng } from '../src/core/rng.js'
import { VERSION_V1 } from '../src/core/wire/packet-header.js'
import { CryptoRng } from '../src/io/crypto-rng.js'
import { nodeCryptoBackend } from '../src/io/node-crypto-backend.js'
import { type BenchReport, round } from './report.js'

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

export interface HandshakeRates {
  backend: string
  /** Server side: NoiseServer.readMessage1 + respond. */
  serverPerSecond: number
  /** Client side: new NoiseClient + writeMessage1 + readMessage2. */
  clientPerSecond: number
  /** Both sides of a handshake on the same core. */
  fullPerSecond: number
}

/** Handshakes with ~100-byte payloads (transport parameters), CSPRNG randomness. */
export const handshakeRates = (o: { backend: CryptoBackend; roundMs: number; rounds: number }): HandshakeRates => {
  const rng = new CryptoRng()
  const server = generateStaticKeyPair({ rng, backend: o.backend })
  const prologue = handshakePrologue({ version: VERSION_V1, originalDcid: new Uint8Array(8).fill(1), clientScid: new Uint8Array(8).fill(2) })
  const payload1 = new Uint8Array(100).fill(0x11)
  const payload2 = new Uint8Array(100).fill(0x22)
  const serverRates: number[] = []
  const clientRates: number[] = []
  const fullRates: number[] = []
  for (let round = 0; round <= o.rounds; round++) {
    let clientMs = 0
    let serverMs = 0
    let n = 0
    const start = performance.now()
    while (performance.now() - start < o.roundMs) {
      for (let i = 0; i < 16; i++) {
        const t0 = performance.now()
        const client = new NoiseClient({ rng, serverStaticPublicKey: server.publicKey, prologue, backend: o.backend })
        const message1 = client.writeMessage1(payload1)
        const t1 = performance.now()
        const { message2 } = NoiseServer.readMessage1({ rng, staticKeyPair: server, prologue, message: message1, backend: o.backend }).respond(payload2)
        const t2 = performance.now()
        client.readMessage2(message2)
        const t3 = performance.now()
        clientMs += t1 - t0 + (t3 - t2)
        serverMs += t2 - t1
        n++
      }
    }
    if (round === 0) continue // warm-up
    serverRates.push((n / serverMs) * 1000)
    clientRates.push((n / clientMs) * 1000)
    fullRates.push((n / (serverMs + clientMs)) * 1000)
  }
  return { backend: o.backend.name, serverPerSecond: median(serverRates), clientPerSecond: median(clientRates), fullPerSecond: median(fullRates) }
}

export const DATAGRAM_BYTES = 1200
const HEADER_BYTES = 13 // short header, 4-byte packet number

/** Packets per second through seal (sender) + open (receiver) of 1200-byte datagrams. */
export const protectionRate = (o: { sender: PacketProtection; receiver: PacketProtection; roundMs: number; rounds: number }): number => {
  const buf = new Uint8Array(DATAGRAM_BYTES)
  const payloadEnd = DATAGRAM_BYTES - o.sender.overheadBytes
  new SeededRng(1).fillBytes(buf)
  buf[0] = 0x43
  const rates: number[] = []
  let pn = 0
  for (let round = 0; round <= o.rounds; round++) {
    let n = 0
    const start = performance.now()
    let elapsed = 0
    while ((elapsed = performance.now() - start) < o.roundMs) {
      for (let i = 0; i < 64; i++) {
        const end = o.sender.seal(buf, { start: 0, payloadStart: HEADER_BYTES, payloadEnd, packetNumber: pn })
        if (o.receiver.open(buf.subarray(0, end), { headerLength: HEADER_BYTES, packetNumber: pn }) === null) throw new Error(`packet ${pn} did not open`)
        pn++
        n++
      }
    }
    if (round > 0) rates.push((n / elapsed) * 1000)
  }
  return median(rates)
}

const aeadPair = (backend: CryptoBackend): { sender: PacketProtection; receiver: PacketProtection } => {
  const a = new Uint8Array(32).fill(1)
  const b = new Uint8Array(32).fill(2)
  return { sender: createAeadProtection({ sendSecret: a, recvSecret: b, backend }), receiver: createAeadProtection({ sendSecret: b, recvSecret: a, backend }) }
}

export async function run(opts: { quick?: boolean } = {}): Promise<BenchReport> {
  const roundMs = opts.quick ? 300 : 1000
  const rounds = opts.quick ? 3 : 5
  const hsNode = handshakeRates({ backend: nodeCryptoBackend, roundMs, rounds })
  const hsNoble = handshakeRates({ backend: nobleBackend, roundMs, rounds })
  const aeadNode = protectionRate({ ...aeadPair(nodeCryptoBackend), roundMs, rounds })
  const aeadNoble = protectionRate({ ...aeadPair(nobleBackend), roundMs, rounds })
  const crc = protectionRate({ sender: checksumProtection, receiver: checksumProtection, roundMs, rounds })
  const none = protectionRate({ sender: nullProtection, receiver: nullProtection, roundMs, rounds })
  const mbps = (pps: number): number => round((pps * DATAGRAM_BYTES * 8) / 1e6, 0)
  return {
    name: 'crypto',
    table: [
      { measure: 'Noise NK handshakes/s, server side (node backend)', value: Math.round(hsNode.serverPerSecond) },
      { measure: 'Noise NK handshakes/s, client side (node backend)', value: Math.round(hsNode.clientPerSecond) },
      { measure: 'Noise NK handshakes/s, both sides on one core (node backend)', value: Math.round(hsNode.fullPerSecond) },
      { measure: 'Noise NK handshakes/s, server side (noble, pure JS)', value: Math.round(hsNoble.serverPerSecond) },
      { measure: 'Noise NK handshakes/s, client side (noble, pure JS)', value: Math.round(hsNoble.clientPerSecond) },
      { measure: `ChaCha20-Poly1305 seal+open ${DATAGRAM_BYTES}-byte packets/s (node backend)`, value: Math.round(aeadNode), mbitPerSecond: mbps(aeadNode) },
      { measure: `ChaCha20-Poly1305 seal+open ${DATAGRAM_BYTES}-byte packets/s (noble, pure JS)`, value: Math.round(aeadNoble), mbitPerSecond: mbps(aeadNoble) },
      { measure: `CRC-32C seal+open ${DATAGRAM_BYTES}-byte packets/s (reference)`, value: Math.round(crc), mbitPerSecond: mbps(crc) },
      { measure: `no protection ${DATAGRAM_BYTES}-byte packets/s (reference)`, value: Math.round(none), mbitPerSecond: mbps(none) },
    ],
    targets: [
      { metric: 'handshakes/s on one core, server side (node backend)', value: Math.round(hsNode.serverPerSecond), target: '>= 2000', pass: hsNode.serverPerSecond >= 2000 },
    ],
    json: { handshakes: [hsNode, hsNoble], protection: { datagramBytes: DATAGRAM_BYTES, aeadNode, aeadNoble, crc32c: crc, none } },
  }
}
