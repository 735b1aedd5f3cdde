/**
 * Property: over random lossy networks (up to 50 % loss, bursts, reordering,
 * duplication, corruption), every message is delivered exactly once, in order on
 * ordered streams, with its exact content, or the sender is told it expired; and the
 * session's buffers drain back to empty. fast-check prints the failing seed and case.
 */
import fc from 'fast-check'
import t from 'tap'
import type { ImpairmentConfig } from '../../src/sim/models/index.js'
import { generateStaticKeyPair } from '../../src/core/crypto/noise-nk.js'
import { SeededRng } from '../../src/core/rng.js'
import { SimPair } from '../helpers/sim-pair.js'

const RUNS = Number(process.env.PIGEON_PROPERTY_RUNS ?? 2500)
// A fixed seed by default, so CI runs the same 2,500 networks every time (a random seed made
// a rare failing network a CI failure of whichever change it happened to); a failure's
// seed replays it, and PIGEON_PROPERTY_SEED=random explores new networks.
const SEED_SETTING = process.env.PIGEON_PROPERTY_SEED
const SEED = SEED_SETTING === 'random' ? undefined : SEED_SETTING !== undefined ? Number(SEED_SETTING) : 0x50470001
/** Half the runs are encrypted sessions (Noise NK + ChaCha20-Poly1305). */
const serverKeyPair = generateStaticKeyPair({ rng: new SeededRng(1) })

const linkArb: fc.Arbitrary<ImpairmentConfig> = fc.record({
  lossKind: fc.constantFrom('bernoulli', 'gilbert-elliott'),
  loss: fc.double({ min: 0, max: 0.5, noNaN: true }),
  baseMs: fc.integer({ min: 1, max: 150 }),
  jitterMs: fc.integer({ min: 0, max: 40 }),
  reorder: fc.boolean(),
  dup: fc.double({ min: 0, max: 0.2, noNaN: true }),
  corrupt: fc.double({ min: 0, max: 0.1, noNaN: true }),
}).map((l) => ({
  loss:
    l.lossKind === 'bernoulli'
      ? { model: 'bernoulli' as const, probability: l.loss }
      : // Mean loss ~ p / (p + r) with bursts of mean length 1 / r.
        { model: 'gilbert-elliott' as const, p: Math.max(0.001, l.loss / 3), r: Math.max(0.34, 1 - l.loss) },
  delay: { baseMs: l.baseMs, jitterMs: l.jitterMs, distribution: 'uniform' as const, reorder: l.reorder },
  duplicateProbability: l.dup,
  corruptProbability: l.corrupt,
}))

interface PlannedMessage {
  streamId: number
  size: number
  atMs: number
  /** ms after sending at which it expires (undefined = never) */
  ttlMs?: number
}

const messageArb: fc.Arbitrary<PlannedMessage> = fc.record({
  streamId: fc.constantFrom(0, 0, 0, 4, 1, 2),
  size: fc.oneof(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 1000, max: 6000 })),
  atMs: fc.integer({ min: 0, max: 2000 }),
  ttlMs: fc.option(fc.integer({ min: 50, max: 3000 }), { nil: undefined }),
})

const payload = (tag: number, size: number): Uint8Array => {
  const b = new Uint8Array(size)
  for (let i = 0; i < size; i++) b[i] = (tag * 31 + i * 7) & 0xff
  return b
}

t.test('exactly-once, in-order delivery or reported expiry on lossy networks', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 2 ** 31 - 1 }),
      linkArb,
      linkArb,
      fc.array(messageArb, { minLength: 1, maxLength: 25 }),
      fc.array(messageArb, { minLength: 0, maxLength: 10 }),
      fc.boolean(),
      (seed, up, down, fromClient, fromServer, encrypted) => {
        const pair = new SimPair({ seed, up, down, secure: encrypted ? { serverKeyPair } : undefined })
        if (!pair.connectRetrying(120_000)) throw new Error(`seed ${seed}: no connection`)
        const start = pair.net.nowMs
        const sent = { client: new Map<string, Uint8Array>(), server: new Map<string, Uint8Array>() }
        // Sends refused because the session had already ended (dead link at extreme loss).
        const refused = { client: 0, server: 0 }
        const schedule = (side: 'client' | 'server', plan: PlannedMessage[]): void => {
          plan.forEach((m, i) => {
            pair.net.at(start + m.atMs, (now) => {
              const data = payload(i + (side === 'server' ? 1000 : 0), m.size)
              const expires = m.ttlMs === undefined ? undefined : now + m.ttlMs
              const session = side === 'client' ? pair.clientSession : pair.serverSession!
              if (!session.isActive()) {
                refused[side]++
                return
              }
              const seq = side === 'client' ? pair.clientSend(m.streamId, data, expires) : pair.serverSend(m.streamId, data, expires)
              sent[side].set(`${m.streamId}:${seq}`, data)
            })
          })
        }
        schedule('client', fromClient)
        schedule('server', fromServer)
        const resolved = (side: 'client' | 'server'): number =>
          pair.eventsOf(side, 'message_acked').length +
          pair.eventsOf(side, 'message_expired').length +
          pair.eventsOf(side, 'message_failed').length
        const done = (): boolean =>
          sent.client.size + refused.client === fromClient.length &&
          sent.server.size + refused.server === fromServer.length &&
          resolved('client') === sent.client.size &&
          resolved('server') === sent.server.size
        if (!pair.net.runUntil({ untilMs: start + 600_000, predicate: done, maxEvents: 200_000 })) {
          throw new Error(`seed ${seed}: not all messages resolved (${resolved('client')}/${fromClient.length}, ${resolved('server')}/${fromServer.length})`)
        }
        // Let in-flight retransmissions and ABANDONs settle.
        pair.net.runUntil({ untilMs: pair.net.nowMs + 5_000 })
        const gaveUp = (side: 'client' | 'server'): Ev[] => [...pair.eventsOf(side, 'message_expired'), ...pair.eventsOf(side, 'message_failed')]
        check(seed, 'client->server', sent.client, pair.atServer, gaveUp('client'), pair.eventsOf('client', 'message_acked'))
        check(seed, 'server->client', sent.server, pair.atClient, gaveUp('server'), pair.eventsOf('server', 'message_acked'))
        for (const s of [pair.clientSession, pair.serverSession!]) {
          const sizes = s.debugSizes()
          if (sizes.liveSendMessages !== 0 || sizes.sendBufferBytes !== 0 || sizes.recvPendingMessages > 32 || sizes.ackRanges > 32) {
            throw new Error(`seed ${seed}: buffers not drained ${JSON.stringify(sizes)}`)
          }
        }
      },
    ),
    // Replay a failure with the seed (and path) fast-check printed: PIGEON_PROPERTY_SEED, PIGEON_PROPERTY_PATH.
    { numRuns: RUNS, seed: SEED, path: process.env.PIGEON_PROPERTY_PATH },
  )
  t.pass(`${RUNS} random networks`)
  t.end()
})

type Ev = { event: { type: string; streamId?: number; seq?: number } }

function check(
  seed: number,
  dir: string,
  sent: Map<string, Uint8Array>,
  received: Array<{ streamId: number; seq: number; data: Uint8Array }>,
  expired: Ev[],
  acked: Ev[],
): void {
  const seen = new Set<string>()
  const lastSeq = new Map<number, number>()
  for (const m of received) {
    const key = `${m.streamId}:${m.seq}`
    if (seen.has(key)) throw new Error(`seed ${seed} ${dir}: ${key} delivered twice`)
    seen.add(key)
    const want = sent.get(key)
    if (want === undefined) throw new Error(`seed ${seed} ${dir}: ${key} delivered but never sent`)
    if (Buffer.compare(Buffer.from(want), Buffer.from(m.data)) !== 0) throw new Error(`seed ${seed} ${dir}: ${key} corrupted`)
    if ((m.streamId & 3) === 0) {
      const prev = lastSeq.get(m.streamId) ?? -1
      if (m.seq <= prev) throw new Error(`seed ${seed} ${dir}: ordered stream ${m.streamId} delivered ${m.seq} after ${prev}`)
      lastSeq.set(m.streamId, m.seq)
    }
  }
  const expiredKeys = new Set(expired.map((e) => `${e.event.streamId}:${e.event.seq}`))
  for (const e of acked) {
    const key = `${e.event.streamId}:${e.event.seq}`
    if (!seen.has(key)) throw new Error(`seed ${seed} ${dir}: ${key} acked but not delivered`)
  }
  for (const key of sent.keys()) {
    if (!seen.has(key) && !expiredKeys.has(key)) throw new Error(`seed ${seed} ${dir}: ${key} neither delivered nor reported expired/failed`)
  }
}
