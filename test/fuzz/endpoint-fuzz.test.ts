/**
 * Issue 3, "What it must show": at least 1,000,000 random and mutated datagrams at a
 * server endpoint: no crash, no unhandled rejection, heap bounded, the drop counters
 * account for every one; and the real sessions established through it keep working.
 *
 * Sans-IO (virtual time, seeded): PIGEON_SEED replays a run, PIGEON_FUZZ_DATAGRAMS sets
 * the number of fuzz datagrams per protection (default 1,000,000 each, checksum and none).
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t from 'tap'
import { Endpoint } from '../../src/core/endpoint.js'
import { type PacketProtection, checksumProtection, nullProtection } from '../../src/core/protection.js'
import { SeededRng } from '../../src/core/rng.js'
import type { Session } from '../../src/core/session/session.js'
import { type FuzzReport, type ProtectionName, SESSION_OUTCOMES, endpointOutcomeNames, runFuzz } from './harness.js'

const SEED = Number(process.env.PIGEON_SEED ?? 20_261_122)
const DATAGRAMS = Number(process.env.PIGEON_FUZZ_DATAGRAMS ?? 1_000_000)
const MAX_SESSIONS = 1000
/** Heap growth allowed by the end of the run (up to 1000 half-open sessions are legitimately held). */
const HEAP_GROWTH_LIMIT_BYTES = 32 << 20
/** Growth allowed between the middle and the end of the run (the session table is full by then). */
const HEAP_LATE_GROWTH_LIMIT_BYTES = 8 << 20

/** global.gc without --expose-gc on the command line (tap runs the file with plain node). */
const gc: () => void = (() => {
  const exposed = (globalThis as { gc?: () => void }).gc
  if (exposed !== undefined) return exposed
  setFlagsFromString('--expose_gc')
  return runInNewContext('gc') as () => void
})()

const heapUsed = (): number => {
  for (let i = 0; i < 3; i++) gc()
  return process.memoryUsage().heapUsed
}

const mb = (bytes: number): string => `${(bytes / 1048576).toFixed(1)} MB`

const unhandled: unknown[] = []
process.on('unhandledRejection', (reason) => unhandled.push(reason))
process.on('uncaughtException', (err) => unhandled.push(err))

const summary = (r: FuzzReport): Record<string, unknown> => ({
  seed: r.seed,
  protection: r.protection,
  fuzzDatagrams: r.fuzzDatagrams,
  realDatagrams: r.realDatagrams,
  datagramsPerSecond: Math.round((r.fuzzDatagrams + r.realDatagrams) / (r.elapsedMs / 1000)),
  gaps: r.gaps,
  endpoint: r.endpointStats,
  sessions: r.sessionOutcomes,
  maxSessionsSeen: r.maxSessionsSeen,
  maxAmplification: Number(r.maxAmplification.toFixed(2)),
  amplifiedAddresses: r.amplifiedAddresses,
  truncationPrefixes: r.truncationPrefixes,
  truncationPasses: r.truncationPasses,
})

for (const protection of ['checksum', 'null', 'encrypted'] as ProtectionName[]) {
  t.test(`${DATAGRAMS} fuzz datagrams at a server endpoint (${protection} protection)`, async (t) => {
    t.comment(`seed ${SEED} (replay with PIGEON_SEED=${SEED} PIGEON_FUZZ_DATAGRAMS=${DATAGRAMS})`)
    const heapBefore = heapUsed()
    const samples: number[] = []
    const report = runFuzz({
      seed: SEED,
      datagrams: DATAGRAMS,
      protection,
      maxSessions: MAX_SESSIONS,
      // Heap after a full gc while the endpoint (and its sessions) are alive.
      onSample: () => samples.push(heapUsed()),
    })
    const heapAfter = samples[samples.length - 1]
    const growth = heapAfter - heapBefore
    // Growth over the second half of the run: flat if memory is bounded.
    const lateGrowth = heapAfter - samples[Math.floor(samples.length / 2) - 1]
    t.comment(JSON.stringify(summary(report)))
    t.comment(`heap (after gc) before ${mb(heapBefore)}, at each eighth of the run ${samples.map(mb).join(' ')}; released after the run ${mb(heapUsed())}`)

    // No crash.
    t.equal(report.escapeCount, 0, 'no exception escaped the endpoint', { escapes: report.escapes })
    t.same(unhandled, [], 'no unhandled rejection or uncaught exception')

    // The real sessions keep working.
    t.equal(report.liveSessionsWorking, report.liveClients, 'every live session echoed a message after the fuzz')
    t.equal(report.serverLiveEstablished, report.liveClients, 'their server sides are still established')

    // Bounded memory.
    t.ok(report.maxSessionsSeen <= MAX_SESSIONS, `sessions never exceeded maxSessions (${report.maxSessionsSeen})`)
    t.ok(samples.length >= Math.min(8, DATAGRAMS), 'heap sampled at each eighth of the run')
    t.ok(growth < HEAP_GROWTH_LIMIT_BYTES, `heap growth with ${report.sessionCountAtEnd} sessions alive ${mb(growth)} < ${mb(HEAP_GROWTH_LIMIT_BYTES)}`)
    t.ok(lateGrowth < HEAP_LATE_GROWTH_LIMIT_BYTES, `heap growth over the second half ${mb(lateGrowth)} < ${mb(HEAP_LATE_GROWTH_LIMIT_BYTES)}`)

    // Every datagram accounted for. The harness checks each datagram: one endpoint
    // outcome counter moved, or a packet-level counter of the session it was routed to.
    const ep = report.endpointStats
    t.equal(ep.datagramsReceived, report.fuzzDatagrams + report.realDatagrams, 'the endpoint saw every datagram')
    t.equal(report.overCounted, 0, 'no datagram moved two endpoint outcome counters')
    t.equal(report.gaps.unexplained, 0, 'no datagram left every counter unmoved for an unknown reason', { examples: report.gapExamples.unexplained })
    // Known gaps in the endpoint's accounting (see the report to the lead): a datagram with
    // an unsupported version whose version-negotiation reply is suppressed (reply larger
    // than the datagram, or the stateless queue full) counts nowhere; a packet that passes
    // integrity but whose frames are invalid closes its session and counts nowhere.
    const known = report.gaps['version-negotiation-suppressed'] + report.gaps['authenticated-packet-closed-session']
    t.equal(known, 0, 'every datagram moved a counter', {
      gaps: report.gaps,
      examples: report.gapExamples,
    })

    // Anti-amplification toward addresses that never validated (issue 3: ratio <= 1).
    t.ok(report.maxAmplification <= 1, `bytes sent / received per fake source address <= 1 (max ${report.maxAmplification.toFixed(2)})`, {
      examples: report.amplifiedExamples,
    })

    // The run exercised what it claims to.
    for (const [kind, n] of Object.entries(report.mutations)) t.ok(n > 0 || DATAGRAMS < 100_000, `mutation ${kind} used (${n})`)
    if (DATAGRAMS >= 1_000_000) t.ok(report.truncationPasses >= 1, 'every prefix of every captured packet was sent')
    t.ok(ep.droppedNotPigeon > 0 && ep.droppedUnknownSession > 0 && ep.droppedMalformed > 0 && ep.droppedTooSmallInitial > 0, 'drops at the endpoint')
    t.ok(report.sessionOutcomes.droppedDuplicate > 0 && report.sessionOutcomes.droppedMalformed > 0, 'drops inside sessions')
    if (protection === 'checksum') t.ok(report.sessionOutcomes.droppedUndecryptable > 0, 'integrity failures')
  })
}

t.test('a fuzz run is deterministic for its seed', async (t) => {
  const a = runFuzz({ seed: SEED + 1, datagrams: 20_000, protection: 'checksum' })
  const b = runFuzz({ seed: SEED + 1, datagrams: 20_000, protection: 'checksum' })
  const key = (r: FuzzReport): string => JSON.stringify([r.endpointStats, r.sessionOutcomes, r.mutations, r.gaps, r.maxAmplification])
  t.equal(key(a), key(b))
})

// ---- Regression tests for the gaps the fuzz found ----

const hex = (s: string): Uint8Array => Uint8Array.from(s.match(/../g) ?? [], (x) => Number.parseInt(x, 16))

/** A client and server endpoint with one session between them; returns the server's session. */
const establishedPair = (protection: PacketProtection): { server: Endpoint<string>; session: Session } => {
  const rng = new SeededRng(SEED)
  const server = new Endpoint<string>({ rng, server: true, protection: () => protection })
  const client = new Endpoint<string>({ rng, server: false, protection: () => protection })
  client.connect(0, 'server')
  for (let moved = true; moved; ) {
    moved = false
    for (let o = client.pollTransmit(0); o !== undefined; o = client.pollTransmit(0)) {
      server.handleDatagram(0, o.bytes, 'peer')
      moved = true
    }
    for (let o = server.pollTransmit(0); o !== undefined; o = server.pollTransmit(0)) {
      client.handleDatagram(0, o.bytes, 'server')
      moved = true
    }
  }
  let session: Session | undefined
  for (let e = server.pollEvent(); e !== undefined; e = server.pollEvent()) if (e.event.type === 'accepted') session = e.session
  if (session === undefined || !session.isEstablished) throw new Error('no session')
  return { server, session }
}

const outcomeTotal = (server: Endpoint<string>, session?: Session): number => {
  const ep = server.stats as unknown as Record<string, number>
  let n = 0
  for (const k of endpointOutcomeNames(ep)) n += ep[k]
  if (session !== undefined) for (const k of SESSION_OUTCOMES) n += (session.stats as unknown as Record<string, number>)[k]
  return n
}

t.test('an unsupported-version datagram too short for a version-negotiation reply is counted', async (t) => {
  const server = new Endpoint<string>({ rng: new SeededRng(1), server: true })
  // Long header, version 0x01020000, DCID length 0, SCID length 1: the reply (12 bytes) would exceed the 8 received.
  server.handleDatagram(0, hex('c801020000000001'), 'x')
  t.equal(server.stats.datagramsReceived, 1)
  t.equal(outcomeTotal(server), 1, 'counted (e.g. droppedUnsupportedVersion)')
})

t.test('an authenticated packet with an invalid frame closes its session and is counted', async (t) => {
  for (const protection of [nullProtection, checksumProtection]) {
    const { server, session } = establishedPair(protection)
    // Short header, pn length 1, the session's CID, pn 100, one unknown frame type 0x1f; sealed.
    const packet = new Uint8Array(11 + protection.overheadBytes)
    packet[0] = 0x40
    packet.set(session.localCid, 1)
    packet[9] = 100
    packet[10] = 0x1f
    protection.seal(packet, { start: 0, payloadStart: 10, payloadEnd: 11, packetNumber: 100 })
    const before = outcomeTotal(server, session)
    server.handleDatagram(1, packet, 'peer')
    t.equal(session.state, 'closing', `${protection.name}: the protocol error closes the session`)
    t.equal(outcomeTotal(server, session) - before, 1, `${protection.name}: the packet is counted`)
  }
})

t.test('a closing session does not reflect CLOSE to its peer for garbage with its CID', async (t) => {
  const { server, session } = establishedPair(checksumProtection)
  session.close(1, 0, 'bye')
  server.wake(session)
  while (server.pollTransmit(1) !== undefined);
  let received = 0
  let sentToPeer = 0
  for (let i = 0; i < 100; i++) {
    // 10 bytes of garbage with the session's CID, from an attacker: fails the checksum.
    const junk = new Uint8Array(10)
    junk[0] = 0x40
    junk.set(session.localCid, 1)
    server.handleDatagram(2, junk, 'attacker')
    received += junk.length
    for (let o = server.pollTransmit(2); o !== undefined; o = server.pollTransmit(2)) if (o.to === 'peer') sentToPeer += o.bytes.length
  }
  t.comment(JSON.stringify({ attackerSentBytes: received, reflectedToPeerBytes: sentToPeer }))
  t.ok(sentToPeer <= received, `reflected ${sentToPeer} bytes for ${received} received`)
})
