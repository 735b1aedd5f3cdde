/**
 * Hibernation of an idle encrypted session (the chat server's 100,000 idle sessions):
 * after the login-like exchange and hibernateAfterMs of quiet, the server session holds
 * no congestion, sent-packet or queued-message state and no handshake messages; it
 * wakes up for the next message either way, and a stale repeat of the client's
 * handshake message changes nothing.
 */
import t from 'tap'
import { generateStaticKeyPair } from '../../src/core/crypto/noise-nk.js'
import { SeededRng } from '../../src/core/rng.js'
import { isHibernated } from '../../src/core/session/idle.js'
import { SimPair } from '../helpers/sim-pair.js'

const serverKeyPair = generateStaticKeyPair({ rng: new SeededRng(99) })
const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
const dec = (b: Uint8Array): string => new TextDecoder().decode(b)
const LINK = { delay: { baseMs: 10 } }

t.test('an idle encrypted server session sheds its state and still works afterwards', async (t) => {
  for (const seed of [1, 2, 3]) {
    const pair = new SimPair({ seed, up: LINK, down: LINK, secure: { serverKeyPair }, sessionConfig: { hibernateAfterMs: 1000 } })
    const initials = pair.captureClientDatagrams()
    t.ok(pair.connect(), `seed ${seed}: connected`)
    // A login-like exchange on stream 0, then nothing.
    pair.clientSend(0, enc('RESUME'))
    pair.net.runUntil({ untilMs: pair.net.nowMs + 1000, predicate: () => pair.atServer.length === 1 })
    pair.serverSend(0, enc('RESUME_OK'))
    pair.net.runUntil({ untilMs: pair.net.nowMs + 1000, predicate: () => pair.atClient.length === 1 })
    const server = pair.serverSession!
    pair.net.runUntil({ untilMs: pair.net.nowMs + 3000 })
    t.ok(isHibernated(server), `seed ${seed}: server hibernated`)
    t.ok(isHibernated(pair.clientSession), 'client hibernated')
    const stream = server.sendStream(0)
    t.equal(stream.heldMessages, 0, 'no message kept in the send queues')
    t.equal(server.handshake?.outgoing, null, 'handshake message 2 released')
    t.equal(server.originalDcid, undefined)
    t.same(server.debugSizes(), { sentPacketsTracked: 0, ackRanges: 0, recvPendingMessages: 0, liveSendMessages: 0, retransmitQueue: 0, events: 0, sendBufferBytes: 0 })

    // A stale copy of the client's first Initial (message 1): the server no longer knows
    // its connection id, so it is a new (never completed) handshake; ours is untouched.
    pair.net.inject('client', 'server', initials[0].slice())
    pair.net.runUntil({ untilMs: pair.net.nowMs + 200 })
    t.ok(server.isEstablished, 'a replayed handshake does not disturb the session')
    t.ok(pair.clientSession.isEstablished)

    // Both directions wake up and keep their sequence numbers.
    server.send(pair.net.nowMs, 0, enc('push'))
    pair.server.wake(server)
    pair.net.nodeWake('server')
    pair.clientSend(0, enc('more'))
    pair.net.runUntil({ untilMs: pair.net.nowMs + 2000, predicate: () => pair.atServer.length === 2 && pair.atClient.length === 2 })
    t.same(pair.atServer.map((m) => [m.seq, dec(m.data)]), [[0, 'RESUME'], [1, 'more']], `seed ${seed}: client -> server after hibernation`)
    t.same(pair.atClient.map((m) => [m.seq, dec(m.data)]), [[0, 'RESUME_OK'], [1, 'push']], `seed ${seed}: server -> client after hibernation`)
    t.same(pair.eventsOf('server', 'closed'), [])
  }
})

t.test('a hibernated server session answers a keepalive and goes straight back to sleep', async (t) => {
  for (const seed of [5, 6]) {
    // Server keepalives off (the server never sends them), the client's every 2 s.
    const pair = new SimPair({
      seed,
      up: LINK,
      down: LINK,
      secure: { serverKeyPair },
      sessionConfig: { hibernateAfterMs: 1000 },
      clientSessionConfig: { keepAliveIntervalMs: 2000, keepAliveJitterFraction: 0 },
    })
    t.ok(pair.connect(), `seed ${seed}: connected`)
    pair.clientSend(0, enc('RESUME'))
    pair.net.runUntil({ untilMs: pair.net.nowMs + 1000, predicate: () => pair.atServer.length === 1 })
    const server = pair.serverSession!
    pair.net.runUntil({ untilMs: pair.net.nowMs + 1500, predicate: () => isHibernated(server) })
    t.ok(isHibernated(server), `seed ${seed}: hibernated after the exchange`)
    for (let k = 0; k < 3; k++) {
      const received = server.stats.packetsReceived
      const sent = server.stats.packetsSent
      pair.net.runUntil({ untilMs: pair.net.nowMs + 3000, predicate: () => server.stats.packetsSent > sent })
      t.equal(server.stats.packetsReceived, received + 1, `keepalive ${k}: one packet in`)
      t.equal(server.stats.packetsSent, sent + 1, `keepalive ${k}: one ACK out`)
      t.equal(server.lastSentMs, server.lastReceivedMs, `keepalive ${k}: answered at once, not after maxAckDelayMs`)
      t.ok(isHibernated(server), `keepalive ${k}: asleep again right after answering`)
      t.same(server.debugSizes(), { sentPacketsTracked: 0, ackRanges: 0, recvPendingMessages: 0, liveSendMessages: 0, retransmitQueue: 0, events: 0, sendBufferBytes: 0 })
      pair.net.runUntil({ untilMs: pair.net.nowMs + 100 })
      t.equal(pair.clientSession.tracker.ackElicitingInFlight, 0, `keepalive ${k}: the client has its ACK`)
    }
    // Still a working session in both directions.
    pair.clientSend(0, enc('more'))
    server.send(pair.net.nowMs, 0, enc('push'))
    pair.server.wake(server)
    pair.net.nodeWake('server')
    pair.net.runUntil({ untilMs: pair.net.nowMs + 2000, predicate: () => pair.atServer.length === 2 && pair.atClient.length === 1 })
    t.same(pair.atServer.map((m) => dec(m.data)), ['RESUME', 'more'])
    t.same(pair.atClient.map((m) => dec(m.data)), ['push'])
    t.same(pair.eventsOf('server', 'closed'), [])
  }
})

t.test('a lost handshake reply is still resent before the session may hibernate', async (t) => {
  const seed = 4
  const pair = new SimPair({ seed, up: LINK, down: { ...LINK, blocked: true }, secure: { serverKeyPair }, sessionConfig: { hibernateAfterMs: 100 } })
  pair.net.runUntil({ untilMs: 2000 })
  t.notOk(pair.clientSession.isEstablished, 'message 2 lost so far')
  t.ok(pair.serverSession !== undefined && pair.serverSession.handshake?.outgoing !== null, 'the server keeps message 2 while unconfirmed')
  pair.net.setLink('server', 'client', LINK)
  t.ok(pair.connect(), `seed ${seed}: connected once the link is back`)
})
