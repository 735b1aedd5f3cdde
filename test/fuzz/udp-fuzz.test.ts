/**
 * The fuzz test over real sockets (smaller than the sans-IO one): random and mutated
 * datagrams from several raw UDP sockets at the echo server on 127.0.0.1, while two
 * real clients are connected. The server must survive, the real sessions keep echoing,
 * and the counters must account for every datagram the server's socket received:
 * UdpEndpoint.stats.datagramsReceived == what the core saw == what moved a counter.
 *
 * PIGEON_SEED replays the datagram sequence; PIGEON_UDP_FUZZ_DATAGRAMS scales the run.
 * No sleeps: the sender waits for the server to read each batch by yielding to the
 * event loop until the server's receive count stops moving.
 */
import { type Socket, createSocket } from 'node:dgram'
import { once } from 'node:events'
import { setImmediate as nextTurn } from 'node:timers/promises'
import t from 'tap'
import { SeededRng } from '../../src/core/rng.js'
import type { Session } from '../../src/core/session/session.js'
import { formatAddress } from '../../src/io/address.js'
import { startEchoServer } from '../../src/io/server.js'
import { connect, messages, str, text } from '../io/helpers.js'
import { AccountingChecker, recordRetiredCorpus } from './harness.js'
import { Mutator, resealChecksums } from './mutator.js'

const SEED = Number(process.env.PIGEON_SEED ?? 20_261_123)
const DATAGRAMS = Number(process.env.PIGEON_UDP_FUZZ_DATAGRAMS ?? 50_000)
const HOST = '127.0.0.1'
const SOURCES = 8
const BATCH = 256
const MAX_SESSIONS = 500
/** Event-loop turns without a new datagram at the server before a batch counts as read. */
const IDLE_TURNS = 50

const unhandled: unknown[] = []
process.on('unhandledRejection', (reason) => unhandled.push(reason))

t.test(`${DATAGRAMS} fuzz datagrams over UDP at the echo server`, { timeout: 120_000 }, async (t) => {
  t.comment(`seed ${SEED} (replay with PIGEON_SEED=${SEED} PIGEON_UDP_FUZZ_DATAGRAMS=${DATAGRAMS})`)
  const server = await startEchoServer({ host: HOST, port: 0, maxSessions: MAX_SESSIONS })
  t.teardown(() => server.close())
  const core = server.endpoint.core

  // Check every datagram the socket hands to the core.
  const checker = new AccountingChecker(core)
  server.endpoint.on('event', (e) => {
    if (e.event.type === 'accepted') checker.noteAccepted(e.session)
  })
  const handle = core.handleDatagram.bind(core)
  let seen = 0
  /** Source ports of the fuzz sockets, and how many of their datagrams the core got. */
  const fuzzPorts = new Set<number>()
  let fuzzReceived = 0
  core.handleDatagram = (nowMs, bytes, from) => {
    if (fuzzPorts.has(from.port)) fuzzReceived++
    checker.check(bytes, { index: seen++, kind: 'udp', from: formatAddress(from) }, () => handle(nowMs, bytes, from))
  }

  // Two real clients, talking before, during and after the storm.
  const clients = await Promise.all([connect(HOST, server.port), connect(HOST, server.port)])
  t.teardown(() => Promise.all(clients.map((c) => c.close())))
  const liveServerSessions: Session[] = [...core.sessions()]
  t.equal(liveServerSessions.length, 2, 'two live sessions')
  for (const [i, c] of clients.entries()) {
    const one = messages(c, 1)
    c.send(0, text(`before ${i}`))
    t.equal(str((await one)[0].data), `before ${i}`)
  }

  // The storm, from several source ports.
  const sockets: Socket[] = []
  for (let i = 0; i < SOURCES; i++) {
    const s = createSocket('udp4')
    s.on('message', () => {}) // replies (echoes, version negotiation) are read and ignored
    s.bind(0, HOST)
    await once(s, 'listening')
    sockets.push(s)
  }
  t.teardown(() => Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))))
  for (const s of sockets) fuzzPorts.add(s.address().port)

  const rng = new SeededRng(SEED)
  const mutator = new Mutator({ rng: rng.fork(), corpus: recordRetiredCorpus(rng.nextU32(), 'checksum') })
  const started = performance.now()
  let sent = 0
  let sendErrors = 0
  const midway = Math.floor(DATAGRAMS / 2)
  let midwayEcho: Promise<unknown> | undefined
  while (sent < DATAGRAMS) {
    const n = Math.min(BATCH, DATAGRAMS - sent)
    const callbacks: Array<Promise<void>> = []
    for (let i = 0; i < n; i++) {
      const { kind, bytes } = mutator.next()
      if (kind === 'forged-initial' || rng.nextU32() % 2 === 0) resealChecksums(bytes)
      const socket = sockets[rng.nextU32() % SOURCES]
      callbacks.push(
        new Promise<void>((resolve) =>
          socket.send(bytes, server.port, HOST, (err) => {
            if (err) sendErrors++
            resolve()
          }),
        ),
      )
    }
    await Promise.all(callbacks)
    sent += n
    // Let the server read the batch (a datagram the kernel dropped never arrives).
    const target = sent - sendErrors
    for (let idle = 0, last = fuzzReceived; fuzzReceived < target && idle < IDLE_TURNS; ) {
      await nextTurn()
      if (fuzzReceived === last) idle++
      else {
        idle = 0
        last = fuzzReceived
      }
    }
    if (midwayEcho === undefined && sent >= midway) {
      // A real message in the middle of the storm.
      midwayEcho = messages(clients[0], 1)
      clients[0].send(0, text('in the storm'))
    }
  }
  const seconds = (performance.now() - started) / 1000
  t.equal(str(((await midwayEcho) as Array<{ data: Uint8Array }>)[0].data), 'in the storm', 'echoed during the storm')

  // The real sessions still work.
  for (const [i, c] of clients.entries()) {
    const one = messages(c, 1)
    c.send(0, text(`after ${i}`))
    t.equal(str((await one)[0].data), `after ${i}`, `client ${i} echoed after the storm`)
  }
  for (const s of liveServerSessions) t.ok(s.isEstablished, 'live server session still established')

  const udp = server.endpoint.stats
  const ep = core.stats
  t.comment(
    JSON.stringify({
      sent,
      sendErrors,
      fuzzReceived,
      lostInKernel: sent - sendErrors - fuzzReceived,
      datagramsPerSecond: Math.round(fuzzReceived / seconds),
      udp,
      endpoint: ep,
      sessions: checker.sessionTotals(),
      gaps: checker.gaps,
    }),
  )
  t.equal(udp.coreErrors, 0, 'the core never threw')
  t.same(unhandled, [], 'no unhandled rejection')
  t.ok(fuzzReceived >= 0.9 * sent, `the server read ${fuzzReceived} of ${sent} datagrams`)
  t.equal(udp.datagramsReceived, ep.datagramsReceived, 'every datagram the socket received reached the core')
  t.equal(checker.checked, ep.datagramsReceived, 'and was checked')
  t.ok(core.sessionCount <= MAX_SESSIONS, `sessions bounded (${core.sessionCount})`)
  t.equal(checker.overCounted, 0, 'no datagram counted twice at the endpoint')
  t.equal(checker.gaps.unexplained, 0, 'no datagram left uncounted for an unknown reason', { examples: checker.gapExamples.unexplained })
  const known = checker.gaps['version-negotiation-suppressed'] + checker.gaps['authenticated-packet-closed-session']
  t.equal(known, 0, 'every datagram moved a counter', {
    gaps: checker.gaps,
    examples: checker.gapExamples,
  })
})
