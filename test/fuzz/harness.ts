/**
 * Sans-IO fuzz harness: a server Endpoint with a few real client sessions established
 * through it (in-process client Endpoints, virtual time), then a stream of random and
 * mutated datagrams from a seeded Mutator. Every datagram the server receives (fuzz
 * and real) is checked to be counted by exactly one endpoint counter or by at least one
 * packet-level counter of the session it was routed to.
 */
import { cidKey, Endpoint, type EndpointStats } from '../../src/core/endpoint.js'
import { generateStaticKeyPair } from '../../src/core/crypto/noise-nk.js'
import type { ClientSecurity, ServerSecurity } from '../../src/core/session/secure-handshake.js'
import { nodeCryptoBackend } from '../../src/io/node-crypto-backend.js'
import { DecodeError } from '../../src/core/errors.js'
import { type PacketProtection, checksumProtection, nullProtection } from '../../src/core/protection.js'
import { SeededRng } from '../../src/core/rng.js'
import { type SessionStats, newSessionStats } from '../../src/core/session/events.js'
import type { Session } from '../../src/core/session/session.js'
import { decodePacketHeader, isLikelyPigeonPacket, peekDestinationCid } from '../../src/core/wire/packet-header.js'
import { type Mutation, Mutator, hexOf, resealChecksums } from './mutator.js'

/** 'encrypted': Noise NK handshake + ChaCha20-Poly1305 (Initials keep the CRC-32C trailer). */
export type ProtectionName = 'checksum' | 'null' | 'encrypted'

/** One server key for every encrypted fuzz run; OpenSSL backend so forged Initials are cheap to reject. */
const FUZZ_SERVER_KEY = generateStaticKeyPair({ rng: new SeededRng(4242), backend: nodeCryptoBackend })
const serverSecurity = (name: ProtectionName): ServerSecurity | undefined =>
  name === 'encrypted' ? { staticKeyPair: FUZZ_SERVER_KEY, backend: nodeCryptoBackend } : undefined
const clientSecurity = (name: ProtectionName): ClientSecurity | undefined =>
  name === 'encrypted' ? { serverStaticPublicKey: FUZZ_SERVER_KEY.publicKey, backend: nodeCryptoBackend } : undefined

export interface FuzzOptions {
  seed: number
  datagrams: number
  protection: ProtectionName
  liveClients?: number
  maxSessions?: number
  /** Virtual time between two fuzz datagrams (default 0.02 ms: 50,000 datagrams/s). */
  stepMs?: number
  /** Called a few times during the run (heap samples). */
  onSample?: (done: number) => void
}

export type GapClass = 'version-negotiation-suppressed' | 'authenticated-packet-closed-session' | 'unexplained'

export interface Reproducer {
  index: number
  /** Mutation, 'real' (a live client's datagram) or the driver's label. */
  kind: Mutation | 'real' | 'udp'
  from: string
  hex: string
  note?: string
}

export interface FuzzReport {
  seed: number
  protection: ProtectionName
  fuzzDatagrams: number
  realDatagrams: number
  serverDatagramsReceived: number
  /** Exceptions that escaped Endpoint.handleDatagram / handleTimeout / pollTransmit. */
  escapes: Reproducer[]
  escapeCount: number
  /** Datagrams no counter moved for, by cause. */
  gaps: Record<GapClass, number>
  gapExamples: Record<GapClass, Reproducer[]>
  /** Datagrams that moved more than one endpoint-level counter. */
  overCounted: number
  endpointStats: Record<string, number>
  /** Packet-level outcomes summed over every server session that ever existed. */
  sessionOutcomes: Record<string, number>
  mutations: Record<string, number>
  truncationPrefixes: number
  truncationPasses: number
  maxSessionsSeen: number
  sessionCountAtEnd: number
  /** Largest bytes sent / bytes received over the fake source addresses that got replies. */
  maxAmplification: number
  amplificationAddresses: number
  /** Fake addresses that were sent more bytes than they sent. */
  amplifiedAddresses: number
  amplifiedExamples: Array<{ rx: number; tx: number; datagrams: number; kinds: string[] }>
  /** Real sessions still working after the run: a message went each way on each. */
  liveSessionsWorking: number
  /** The live sessions' server sides still established. */
  serverLiveEstablished: number
  liveClients: number
  elapsedMs: number
}


/**
 * Endpoint counters of which exactly one moves for a datagram the endpoint settles itself:
 * every `dropped*` counter plus these replies/outcomes (whichever the endpoint has).
 */
const ENDPOINT_REPLY_OUTCOMES = ['versionNegotiationsSent', 'sessionsAccepted', 'retriesSent', 'statelessResetsSent', 'refusedInitials']
/** Per packet of a datagram routed to a session, one of: packetsReceived or a `dropped*` counter. */
export const SESSION_OUTCOMES: string[] = Object.keys(newSessionStats()).filter((k) => k === 'packetsReceived' || k.startsWith('dropped'))

/** The endpoint's outcome counter names, from its stats object (new drop reasons included automatically). */
export const endpointOutcomeNames = (stats: object): string[] =>
  Object.keys(stats).filter((k) => k.startsWith('dropped') || ENDPOINT_REPLY_OUTCOMES.includes(k))

const sum = (stats: object, names: readonly string[]): number => {
  const s = stats as Record<string, number>
  let n = 0
  for (let i = 0; i < names.length; i++) n += s[names[i]]
  return n
}

const protectionOf = (name: ProtectionName): PacketProtection => (name === 'null' ? nullProtection : checksumProtection)

const SERVER_CONFIG = { idleTimeoutMs: 10_000 }
const CLIENT_CONFIG = { keepAliveIntervalMs: 2_000 }
/** Fake source addresses the fuzz datagrams come from. */
const FAKE_ADDRESSES = 4096

const copy = (b: Uint8Array): Uint8Array => b.slice()

/** Record real traffic of a throwaway client/server pair: its packets go to no live session. */
export const recordRetiredCorpus = (seed: number, protection: ProtectionName): Uint8Array[] => {
  const rng = new SeededRng(seed)
  const prot = (): PacketProtection => protectionOf(protection)
  const server = new Endpoint<string>({ rng: rng.fork(), server: true, protection: prot, security: serverSecurity(protection) })
  const client = new Endpoint<string>({ rng: rng.fork(), server: false, protection: prot })
  const corpus: Uint8Array[] = []
  let nowMs = 0
  const pump = (): void => {
    for (let moved = true; moved; ) {
      moved = false
      for (let o = client.pollTransmit(nowMs); o !== undefined; o = client.pollTransmit(nowMs)) {
        corpus.push(copy(o.bytes))
        server.handleDatagram(nowMs, copy(o.bytes), 'client')
        moved = true
      }
      for (let o = server.pollTransmit(nowMs); o !== undefined; o = server.pollTransmit(nowMs)) {
        corpus.push(copy(o.bytes))
        client.handleDatagram(nowMs, copy(o.bytes), 'server')
        moved = true
      }
    }
  }
  const tick = (ms: number): void => {
    nowMs += ms
    client.handleTimeout(nowMs)
    server.handleTimeout(nowMs)
    pump()
  }
  const session = client.connect(nowMs, 'server', undefined, clientSecurity(protection))
  pump()
  let serverSession: Session | undefined
  for (let e = server.pollEvent(); e !== undefined; e = server.pollEvent()) if (e.event.type === 'accepted') serverSession = e.session
  if (serverSession === undefined || !session.isEstablished) throw new Error('recording pair did not connect')
  const sizes = [1, 60, 400, 1100, 5000]
  for (const [i, size] of sizes.entries()) {
    session.send(nowMs, i % 3, new Uint8Array(size).fill(i + 1))
    serverSession.send(nowMs, 0, new Uint8Array(size).fill(0x80 + i))
    client.wake(session)
    server.wake(serverSession)
    pump()
    tick(30)
  }
  session.close(nowMs, 0, 'done')
  client.wake(session)
  pump()
  tick(1000)
  return corpus
}

/**
 * Checks, datagram by datagram, that an Endpoint counts what it receives: wrap each
 * handleDatagram call in `check`. Sessions are learned from `noteAccepted` or, when the
 * endpoint accepted one the checker has not seen, by walking endpoint.sessions().
 */
export class AccountingChecker {
  readonly gaps: Record<GapClass, number> = { 'version-negotiation-suppressed': 0, 'authenticated-packet-closed-session': 0, unexplained: 0 }
  readonly gapExamples: Record<GapClass, Reproducer[]> = { 'version-negotiation-suppressed': [], 'authenticated-packet-closed-session': [], unexplained: [] }
  /** Datagrams that moved more than one endpoint-level counter. */
  overCounted = 0
  checked = 0
  /** Stats of every session seen, for totals (closed ones included). */
  readonly allSessionStats: SessionStats[] = []
  private readonly byKey = new Map<number, Session>()
  private readonly known = new WeakSet<Session>()
  private acceptedSeen = 0
  private readonly endpointNames: string[]

  constructor(private readonly endpoint: { readonly stats: EndpointStats; sessions(): Iterable<Session> }) {
    this.endpointNames = endpointOutcomeNames(endpoint.stats)
  }

  noteAccepted(session: Session): void {
    if (this.known.has(session)) return
    this.known.add(session)
    this.byKey.set(cidKey(session.localCid), session)
    if (session.originalDcid !== undefined) this.byKey.set(cidKey(session.originalDcid), session)
    this.allSessionStats.push(session.stats)
  }

  /** Forget sessions the endpoint has let go of (bounded map). */
  prune(): void {
    for (const [k, s] of this.byKey) if (s.isClosed) this.byKey.delete(k)
  }

  check(bytes: Uint8Array, meta: { index: number; kind: Reproducer['kind']; from: string }, handle: () => void): void {
    const stats = this.endpoint.stats
    if (stats.sessionsAccepted !== this.acceptedSeen) {
      // Accepted since we last looked (its event may not be out yet): learn it now.
      this.acceptedSeen = stats.sessionsAccepted
      for (const s of this.endpoint.sessions()) this.noteAccepted(s)
    }
    let target: Session | undefined
    if (bytes.length > 0 && isLikelyPigeonPacket(bytes[0])) {
      const dcid = peekDestinationCid(bytes)
      if (dcid !== undefined) target = this.byKey.get(cidKey(dcid))
    }
    const eBefore = sum(stats, this.endpointNames)
    const sBefore = target === undefined ? 0 : sum(target.stats, SESSION_OUTCOMES)
    const wasActive = target?.isActive() ?? false
    this.checked++
    try {
      handle()
    } finally {
      const eDelta = sum(stats, this.endpointNames) - eBefore
      const sDelta = target === undefined ? 0 : sum(target.stats, SESSION_OUTCOMES) - sBefore
      if (eDelta > 1) this.overCounted++
      if (eDelta + sDelta === 0) {
        const cls = classifyGap(bytes, target, wasActive)
        this.gaps[cls]++
        if (this.gapExamples[cls].length < 3) {
          this.gapExamples[cls].push({ ...meta, hex: hexOf(bytes, 120), note: target === undefined ? 'no session' : `session ${target.traceId} ${target.state}` })
        }
      }
    }
  }

  sessionTotals(): Record<string, number> {
    const totals: Record<string, number> = {}
    for (const name of SESSION_OUTCOMES) totals[name] = 0
    for (const st of this.allSessionStats) for (const name of SESSION_OUTCOMES) totals[name] += (st as unknown as Record<string, number>)[name]
    return totals
  }
}

export const runFuzz = (opts: FuzzOptions): FuzzReport => {
  const started = performance.now()
  const rng = new SeededRng(opts.seed)
  const stepMs = opts.stepMs ?? 0.02
  const liveCount = opts.liveClients ?? 3
  const maxSessions = opts.maxSessions ?? 1000
  const prot = (): PacketProtection => protectionOf(opts.protection)
  const server = new Endpoint<string>({ rng: rng.fork(), server: true, protection: prot, sessionConfig: SERVER_CONFIG, maxSessions, security: serverSecurity(opts.protection) })
  const clients = Array.from({ length: liveCount }, () => new Endpoint<string>({ rng: rng.fork(), server: false, protection: prot }))
  const clientIndex = new Map(clients.map((_, i) => [`c${i}`, i]))
  let nowMs = 0

  // --- accounting state ---
  const checker = new AccountingChecker(server)
  const escapes: Reproducer[] = []
  let escapeCount = 0
  let realDatagrams = 0
  let maxSessionsSeen = 0
  const liveCapture: Uint8Array[] = []
  let capturing = true
  /** Per fake address: bytes received from it, bytes sent to it. */
  const traffic = new Map<string, { rx: number; tx: number; datagrams: number; kinds: string[] }>()
  /** Messages the server got on the live sessions (echoed back by the harness). */
  const serverInbox: Array<{ session: Session; data: Uint8Array }> = []
  const clientInbox: Array<Array<Uint8Array>> = clients.map(() => [])
  /** Sessions accepted during setup: the live ones. */
  const liveAccepted: Session[] = []

  const escape = (index: number, kind: Reproducer['kind'], from: string, bytes: Uint8Array | undefined, err: unknown): void => {
    escapeCount++
    if (escapes.length < 10) escapes.push({ index, kind, from, hex: bytes === undefined ? '' : hexOf(bytes, 2000), note: String((err as Error)?.stack ?? err) })
  }

  const drainServerEvents = (): void => {
    for (let e = server.pollEvent(); e !== undefined; e = server.pollEvent()) {
      const ev = e.event
      if (ev.type === 'accepted') {
        checker.noteAccepted(e.session)
        if (capturing) liveAccepted.push(e.session)
      } else if (ev.type === 'message' && clientIndex.has(e.address)) {
        serverInbox.push({ session: e.session, data: ev.data })
      }
    }
  }

  const drainServerTransmit = (index: number): void => {
    for (;;) {
      let out
      try {
        out = server.pollTransmit(nowMs)
      } catch (err) {
        escape(index, 'real', 'server.pollTransmit', undefined, err)
        return
      }
      if (out === undefined) break
      const ci = clientIndex.get(out.to)
      if (ci !== undefined) {
        if (capturing) liveCapture.push(copy(out.bytes))
        clients[ci].handleDatagram(nowMs, copy(out.bytes), 'server')
      } else {
        const t = traffic.get(out.to)
        if (t !== undefined) t.tx += out.bytes.length
        else traffic.set(out.to, { rx: 0, tx: out.bytes.length, datagrams: 0, kinds: [] })
      }
    }
    drainServerEvents()
  }

  /** One datagram into the server, with the accounting check. */
  const deliver = (index: number, bytes: Uint8Array, from: string, kind: Reproducer['kind']): void => {
    checker.check(bytes, { index, kind, from }, () => {
      try {
        server.handleDatagram(nowMs, bytes, from)
      } catch (err) {
        escape(index, kind, from, bytes, err)
      }
    })
    drainServerTransmit(index)
  }

  const pumpClients = (): void => {
    for (let moved = true; moved; ) {
      moved = false
      for (const [i, c] of clients.entries()) {
        for (let o = c.pollTransmit(nowMs); o !== undefined; o = c.pollTransmit(nowMs)) {
          if (capturing) liveCapture.push(copy(o.bytes))
          realDatagrams++
          deliver(-1, copy(o.bytes), `c${i}`, 'real')
          moved = true
        }
        for (let e = c.pollEvent(); e !== undefined; e = c.pollEvent()) {
          if (e.event.type === 'message') clientInbox[i].push(e.event.data)
        }
      }
    }
    // Echo what the live sessions sent.
    if (serverInbox.length > 0) {
      for (const m of serverInbox.splice(0)) {
        if (!m.session.isActive()) continue
        m.session.send(nowMs, 0, m.data)
        server.wake(m.session)
      }
      drainServerTransmit(-1)
      pumpClients()
    }
  }

  const timers = (): void => {
    const t = server.pollTimeout()
    if (t !== undefined && t <= nowMs) {
      try {
        server.handleTimeout(nowMs)
      } catch (err) {
        escape(-1, 'real', 'server.handleTimeout', undefined, err)
      }
      drainServerTransmit(-1)
    }
    for (const c of clients) {
      const ct = c.pollTimeout()
      if (ct !== undefined && ct <= nowMs) c.handleTimeout(nowMs)
    }
    pumpClients()
  }

  // --- live sessions through the server ---
  const liveSessions = clients.map((c) => c.connect(nowMs, 'server', CLIENT_CONFIG, clientSecurity(opts.protection)))
  pumpClients()
  for (let i = 0; i < 20; i++) {
    nowMs += 5
    timers()
  }
  for (const [i, s] of liveSessions.entries()) {
    if (!s.isEstablished) throw new Error(`live client ${i} did not connect`)
    s.send(nowMs, 0, new TextEncoder().encode(`hello from c${i}`))
    s.send(nowMs, 1, new Uint8Array(3000).fill(i))
    clients[i].wake(s)
  }
  pumpClients()
  for (let i = 0; i < 20; i++) {
    nowMs += 5
    timers()
  }
  capturing = false
  const serverLive = new Set(liveAccepted)
  liveAccepted.length = 0
  if (serverLive.size !== liveCount) throw new Error(`server has ${serverLive.size} sessions, expected ${liveCount}`)

  // --- the corpus ---
  const retired = recordRetiredCorpus(rng.nextU32(), opts.protection)
  const mutRng = rng.fork()
  const retiredMut = new Mutator({ rng: mutRng, corpus: retired })
  const liveMut = new Mutator({ rng: mutRng, corpus: liveCapture })
  // Encrypted sessions: resealing the CRC lets mutations reach the handshake and frame decoders.
  const reseal = opts.protection !== 'null'

  const sampleEvery = Math.max(1, Math.floor(opts.datagrams / 8))
  let nextTickMs = nowMs + 10
  for (let i = 0; i < opts.datagrams; i++) {
    nowMs += stepMs
    const fromLive = mutRng.nextU32() % 2 === 0
    let kind = retiredMut.pick()
    let bytes: Uint8Array
    if (fromLive && !kind.startsWith('random') && kind !== 'empty') {
      // Without integrity protection any changed packet to a live session is accepted
      // by design, so live packets are only replayed and truncated there.
      if (opts.protection === 'null' && kind !== 'replay') kind = 'truncate-every-length'
      bytes = liveMut.next(kind).bytes
    } else {
      bytes = retiredMut.next(kind).bytes
      if (reseal && (kind === 'forged-initial' || mutRng.nextU32() % 2 === 0)) resealChecksums(bytes)
    }
    // Mostly fake sources; sometimes a live client's address (spoofed).
    const r = mutRng.nextU32()
    const from = r % 20 === 0 ? `c${r % liveCount}` : `f${r % FAKE_ADDRESSES}`
    if (from.startsWith('f')) {
      const t = traffic.get(from)
      const entry = t ?? { rx: 0, tx: 0, datagrams: 0, kinds: [] }
      if (t === undefined) traffic.set(from, entry)
      entry.rx += bytes.length
      entry.datagrams++
      if (entry.kinds.length < 8) entry.kinds.push(`${kind}:${bytes.length}`)
    }
    deliver(i, bytes, from, kind)
    if (nowMs >= nextTickMs) {
      nextTickMs = nowMs + 10
      timers()
      if (server.sessionCount > maxSessionsSeen) maxSessionsSeen = server.sessionCount
    }
    if ((i + 1) % sampleEvery === 0) {
      // Forget sessions the endpoint has let go of.
      checker.prune()
      opts.onSample?.(i + 1)
    }
  }

  // --- the live sessions still work ---
  const marks = clients.map((_, i) => clientInbox[i].length)
  for (const [i, s] of liveSessions.entries()) {
    if (!s.isActive()) continue
    s.send(nowMs, 0, new TextEncoder().encode(`after the storm c${i}`))
    clients[i].wake(s)
  }
  for (let i = 0; i < 100; i++) {
    nowMs += 5
    timers()
  }
  let liveSessionsWorking = 0
  for (const [i, s] of liveSessions.entries()) {
    const echoed = clientInbox[i].slice(marks[i]).some((d) => new TextDecoder().decode(d) === `after the storm c${i}`)
    if (s.isEstablished && echoed) liveSessionsWorking++
  }
  let serverLiveEstablished = 0
  for (const s of serverLive) if (s.isEstablished) serverLiveEstablished++

  let maxAmplification = 0
  let amplificationAddresses = 0
  let amplifiedAddresses = 0
  const amplifiedExamples: FuzzReport['amplifiedExamples'] = []
  for (const t of traffic.values()) {
    if (t.tx === 0) continue
    amplificationAddresses++
    if (t.tx > t.rx) {
      amplifiedAddresses++
      if (amplifiedExamples.length < 5) amplifiedExamples.push({ rx: t.rx, tx: t.tx, datagrams: t.datagrams, kinds: t.kinds })
    }
    const ratio = t.rx === 0 ? Infinity : t.tx / t.rx
    if (ratio > maxAmplification) maxAmplification = ratio
  }
  return {
    seed: opts.seed,
    protection: opts.protection,
    fuzzDatagrams: opts.datagrams,
    realDatagrams,
    serverDatagramsReceived: server.stats.datagramsReceived,
    escapes,
    escapeCount,
    gaps: checker.gaps,
    gapExamples: checker.gapExamples,
    overCounted: checker.overCounted,
    endpointStats: { ...server.stats },
    sessionOutcomes: checker.sessionTotals(),
    mutations: { ...retiredMut.counts, ...Object.fromEntries(Object.entries(liveMut.counts).map(([k, v]) => [k, v + retiredMut.counts[k as Mutation]])) },
    truncationPrefixes: liveMut.truncationPrefixes + retiredMut.truncationPrefixes,
    truncationPasses: Math.min(liveMut.truncationPasses, retiredMut.truncationPasses),
    maxSessionsSeen,
    sessionCountAtEnd: server.sessionCount,
    maxAmplification,
    amplificationAddresses,
    amplifiedAddresses,
    amplifiedExamples,
    liveSessionsWorking,
    serverLiveEstablished,
    liveClients: liveCount,
    elapsedMs: performance.now() - started,
  }
}

const classifyGap = (bytes: Uint8Array, target: Session | undefined, wasActive: boolean): GapClass => {
  if (target !== undefined && wasActive && !target.isActive()) return 'authenticated-packet-closed-session'
  if (target === undefined && bytes.length > 0 && (bytes[0] & 0x80) !== 0) {
    try {
      if (decodePacketHeader(bytes, 0).type === 'unsupported-version') return 'version-negotiation-suppressed'
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err
    }
  }
  return 'unexplained'
}
