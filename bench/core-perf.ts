/**
 * CPU and memory of the protocol core alone (no sockets, no crypto): packets per second
 * through two endpoints wired back to back, and heap per idle session at 100,000
 * sessions. The reference measured in the same run is the wire codec alone (encode and
 * decode of the same packets), i.e. the floor any session logic adds to.
 */
import { Endpoint } from '../src/core/endpoint.js'
import { nullProtection } from '../src/core/protection.js'
import { SeededRng } from '../src/core/rng.js'
import { FrameType } from '../src/core/wire/frames/frame-type.js'
import { decodeFrame } from '../src/core/wire/frames/index.js'
import { encodeMessage } from '../src/core/wire/frames/message.js'
import { decodePacketHeader, encodeShortHeader } from '../src/core/wire/packet-header.js'
import { Reader } from '../src/core/wire/reader.js'
import { Writer } from '../src/core/wire/writer.js'
import { type BenchReport, round } from './report.js'

const pump = (a: Endpoint<string>, b: Endpoint<string>, nowMs: number): number => {
  let n = 0
  for (;;) {
    let moved = false
    for (let out = a.pollTransmit(nowMs); out !== undefined; out = a.pollTransmit(nowMs)) {
      b.handleDatagram(nowMs, out.bytes, 'a')
      n++
      moved = true
    }
    for (let out = b.pollTransmit(nowMs); out !== undefined; out = b.pollTransmit(nowMs)) {
      a.handleDatagram(nowMs, out.bytes, 'b')
      n++
      moved = true
    }
    if (!moved) return n
  }
}

/** Datagrams per second through two sessions (each datagram sent by one and processed by the other). */
export const corePacketsPerSecond = (o: { messageBytes: number; durationMs: number; cc?: 'bbr' | 'cubic' | 'newreno' }): { packetsPerSecond: number; dataPackets: number; totalPackets: number } => {
  const rng = new SeededRng(1)
  const config = { congestionController: o.cc ?? ('cubic' as const), sessionWindowBytes: 64 << 20, streamWindowBytes: 32 << 20, maxSendBufferBytes: 64 << 20 }
  const client = new Endpoint<string>({ rng, server: false, sessionConfig: config, protection: () => nullProtection })
  const server = new Endpoint<string>({ rng, server: true, sessionConfig: config, protection: () => nullProtection })
  let nowMs = 0
  const session = client.connect(nowMs, 'b')
  pump(client, server, nowMs)
  while (server.pollEvent() !== undefined || client.pollEvent() !== undefined);
  const payload = new Uint8Array(o.messageBytes)
  let total = 0
  const before = session.stats.packetsSent
  const start = performance.now()
  while (performance.now() - start < o.durationMs) {
    for (let i = 0; i < 64; i++) session.send(nowMs, 1, payload)
    client.wake(session)
    for (let round = 0; round < 8; round++) {
      total += pump(client, server, nowMs)
      // Virtual time: advance enough that pacing and delayed ACK timers move along.
      nowMs += 1
      client.handleTimeout(nowMs)
      server.handleTimeout(nowMs)
    }
    while (server.pollEvent() !== undefined);
    while (client.pollEvent() !== undefined);
  }
  const seconds = (performance.now() - start) / 1000
  return { packetsPerSecond: total / seconds, dataPackets: session.stats.packetsSent - before, totalPackets: total }
}

/** The codec floor: encode + decode a short header and one MESSAGE frame, per second. */
export const codecPacketsPerSecond = (o: { messageBytes: number; durationMs: number }): number => {
  const w = new Writer(1500)
  const dcid = new Uint8Array(8).fill(1)
  const data = new Uint8Array(o.messageBytes)
  const frame = { type: FrameType.MESSAGE, streamId: 1, msgSeq: 0, msgLength: data.length, fragOffset: 0, data }
  let n = 0
  const start = performance.now()
  while (performance.now() - start < o.durationMs) {
    for (let i = 0; i < 1000; i++) {
      w.reset()
      encodeShortHeader(w, { dcid, truncatedPn: n & 0xffff, pnLength: 2, keyPhase: 0 })
      frame.msgSeq = n
      encodeMessage(w, frame)
      const bytes = w.buf.slice(0, w.offset)
      const h = decodePacketHeader(bytes, 0)
      const r = new Reader(bytes, h.payloadOffset)
      while (r.remaining > 0) decodeFrame(r)
      n++
    }
  }
  return n / ((performance.now() - start) / 1000)
}

/** Heap per established, idle server-side session, at `count` sessions. */
export const idleSessionHeapBytes = (count: number): { bytesPerSession: number; sessions: number; gcAvailable: boolean } => {
  const gc = (globalThis as { gc?: () => void }).gc
  const collect = (): number => {
    if (gc !== undefined) for (let i = 0; i < 3; i++) gc()
    return process.memoryUsage().heapUsed
  }
  const rng = new SeededRng(2)
  const before = collect()
  const server = new Endpoint<string>({ rng, server: true, protection: () => nullProtection })
  for (let i = 0; i < count; i++) {
    const client = new Endpoint<string>({ rng, server: false, protection: () => nullProtection })
    const s = client.connect(0, 'server')
    pump(client, server, 0)
    // Let the delayed ACKs go out so the server holds nothing in flight.
    client.handleTimeout(10)
    server.handleTimeout(10)
    pump(client, server, 10)
    if (!s.isEstablished) throw new Error('handshake did not complete')
    while (server.pollEvent() !== undefined);
  }
  // Idle long enough for every session to shed its per-flow state (hibernateAfterMs).
  server.handleTimeout(30_000)
  while (server.pollTransmit(30_000) !== undefined);
  while (server.pollEvent() !== undefined);
  const after = collect()
  const bytesPerSession = (after - before) / server.sessionCount
  return { bytesPerSession, sessions: server.sessionCount, gcAvailable: gc !== undefined }
}

export async function run(opts: { quick?: boolean } = {}): Promise<BenchReport> {
  const durationMs = opts.quick ? 1000 : 3000
  const codec = codecPacketsPerSecond({ messageBytes: 1000, durationMs })
  const bulk = corePacketsPerSecond({ messageBytes: 1000, durationMs })
  const chat = corePacketsPerSecond({ messageBytes: 60, durationMs })
  const idle = idleSessionHeapBytes(opts.quick ? 20_000 : 100_000)
  return {
    name: 'core-perf',
    table: [
      { measure: 'codec alone: encode+decode 1000-byte MESSAGE packets/s (reference)', value: Math.round(codec) },
      { measure: 'core: 1000-byte messages, datagrams/s (send+receive+ACK)', value: Math.round(bulk.packetsPerSecond) },
      { measure: 'core: 60-byte messages, datagrams/s (send+receive+ACK)', value: Math.round(chat.packetsPerSecond) },
      { measure: `heap per idle session at ${idle.sessions} sessions (bytes)`, value: Math.round(idle.bytesPerSession) },
    ],
    targets: [
      { metric: 'core datagrams/s, one core (1000-byte messages)', value: Math.round(bulk.packetsPerSecond), target: '>= 300000', pass: bulk.packetsPerSecond >= 300_000 },
      { metric: 'heap per idle session, bytes', value: round(idle.bytesPerSession, 0), target: '<= 2048', pass: idle.bytesPerSession <= 2048 && idle.gcAvailable },
    ],
    json: { codecPacketsPerSecond: codec, bulk, chat, idle },
  }
}
