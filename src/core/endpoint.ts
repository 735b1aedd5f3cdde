import { type PacketProtection, nullProtection } from './protection.js'
import type { Rng } from './rng.js'
import type { SessionConfig } from './session/config.js'
import type { SessionEvent } from './session/events.js'
import type { ClientSecurity, ServerSecurity } from './session/secure-handshake.js'
import { Session } from './session/session.js'
import { TimerHeap, type TimerItem } from './timer-heap.js'
import type { TraceSink } from './trace.js'
import { CID_LENGTH, VERSION_V1, decodePacketHeader, encodeVersionNegotiation, isLikelyPigeonPacket, peekDestinationCid, versionNegotiationLength } from './wire/packet-header.js'
import { Writer } from './wire/writer.js'
import { DecodeError } from './errors.js'

/** Smallest datagram that may open a session (client Initials are padded to it). */
export const MIN_INITIAL_DATAGRAM_BYTES = 1200

export interface EndpointOptions {
  rng: Rng
  /** Accept sessions from clients (server role). */
  server: boolean
  sessionConfig?: Partial<SessionConfig>
  trace?: TraceSink
  /** Protection for each new session (default: none). */
  protection?: () => PacketProtection
  /** Refuse new sessions beyond this many. */
  maxSessions?: number
  /** Server: encrypt every session with this static key pair (Noise NK + ChaCha20-Poly1305). */
  security?: ServerSecurity
}

export interface EndpointStats {
  datagramsReceived: number
  datagramsSent: number
  sessionsAccepted: number
  sessionsClosed: number
  droppedNotPigeon: number
  droppedUnknownSession: number
  droppedMalformed: number
  droppedTooSmallInitial: number
  droppedUnauthenticatedInitial: number
  droppedSessionLimit: number
  versionNegotiationsSent: number
  addressChanges: number
  pathChallenges: number
}

/** Event from one of the endpoint's sessions. */
export interface EndpointEvent<A> {
  session: Session
  address: A
  event: SessionEvent | { type: 'accepted' } | { type: 'address_changed'; from: A }
}

class Entry<A> implements TimerItem {
  deadlineMs = Infinity
  /** Queued for pollTransmit. */
  dirty = false
  /** A new address the peer seems to use, being validated. */
  candidate: A | undefined = undefined
  constructor(
    readonly session: Session,
    public address: A,
    /** Map keys: our CID, and (server) the CID the client first addressed, or NaN. */
    readonly key: number,
    readonly originalKey: number,
  ) {}
}

/**
 * Map key of a connection id: 53 of its bits as a number (cheaper to hash than a
 * string). Keys of our own CIDs are unique by construction (see register); a client's
 * chosen Initial DCID that collides is refused, and sessions compare full CIDs anyway.
 */
const cidKey = (cid: Uint8Array): number => {
  if (cid.length < 7) {
    let k = cid.length
    for (let i = 0; i < cid.length; i++) k = k * 256 + cid[i]
    return -k - 1
  }
  const hi = ((cid[0] << 24) | (cid[1] << 16) | (cid[2] << 8) | cid[3]) >>> 0
  const lo = ((cid[4] << 13) | (cid[5] << 5) | (cid[6] >>> 3)) >>> 0
  return hi * 2097152 + lo
}

/**
 * Many sessions behind one socket, still sans-IO: demultiplexes datagrams by
 * destination connection id, accepts new sessions, keeps ONE timer heap for all
 * sessions, and hands out datagrams with their destination address. `A` is whatever
 * the driver uses as an address (a string in the simulator, {address, port} for UDP).
 */
export class Endpoint<A> {
  readonly stats: EndpointStats = {
    datagramsReceived: 0,
    datagramsSent: 0,
    sessionsAccepted: 0,
    sessionsClosed: 0,
    droppedNotPigeon: 0,
    droppedUnknownSession: 0,
    droppedMalformed: 0,
    droppedTooSmallInitial: 0,
    droppedUnauthenticatedInitial: 0,
    droppedSessionLimit: 0,
    versionNegotiationsSent: 0,
    addressChanges: 0,
    pathChallenges: 0,
  }
  private readonly opts: EndpointOptions
  private readonly byCid = new Map<number, Entry<A>>()
  private readonly timers = new TimerHeap<Entry<A>>()
  private dirtyQueue: Array<Entry<A>> = []
  private dirtyHead = 0
  private events: Array<EndpointEvent<A>> = []
  private eventHead = 0
  /** Stateless replies (version negotiation) waiting to go out. */
  private statelessReplies: Array<{ bytes: Uint8Array; to: A }> = []
  private liveSessions = 0

  constructor(opts: EndpointOptions) {
    this.opts = opts
  }

  get sessionCount(): number {
    return this.liveSessions
  }

  /** Open a client session to `address`. Call pollTransmit afterwards. */
  connect(nowMs: number, address: A, config?: Partial<SessionConfig>, security?: ClientSecurity): Session {
    const session = new Session({
      role: 'client',
      nowMs,
      rng: this.opts.rng,
      config: config === undefined ? this.opts.sessionConfig : { ...this.opts.sessionConfig, ...config },
      trace: this.opts.trace,
      protection: (this.opts.protection ?? (() => nullProtection))(),
      security,
    })
    const entry = new Entry<A>(session, address, cidKey(session.localCid), NaN)
    this.register(entry)
    this.touch(entry)
    return entry.session
  }

  handleDatagram(nowMs: number, datagram: Uint8Array, from: A): void {
    this.stats.datagramsReceived++
    if (datagram.length === 0 || !isLikelyPigeonPacket(datagram[0])) {
      this.stats.droppedNotPigeon++
      return
    }
    const dcid = peekDestinationCid(datagram)
    if (dcid === undefined) {
      this.stats.droppedMalformed++
      return
    }
    const entry = this.byCid.get(cidKey(dcid))
    if (entry !== undefined) {
      const before = entry.session.stats.packetsReceived
      entry.session.handleDatagram(nowMs, datagram)
      const moved = entry.session.stats.packetsReceived > before && entry.session.lastPacketWasNewest
      if (moved && entry.address !== from && !sameAddress(entry.address, from)) {
        // The newest authenticated packet came from a new address: the peer may have moved
        // (NAT rebinding, new network). Older packets (reordered or replayed) never count.
        // We keep sending to the old address until the new one answers a PATH_CHALLENGE,
        // so a forged source address cannot redirect the session's traffic.
        if (entry.candidate === undefined || !sameAddress(entry.candidate, from)) {
          entry.candidate = from
          entry.session.startPathValidation()
          this.stats.pathChallenges++
        }
      }
      this.touch(entry)
      return
    }
    if ((datagram[0] & 0x80) === 0) {
      this.stats.droppedUnknownSession++
      return
    }
    this.acceptInitial(nowMs, datagram, from)
  }

  handleTimeout(nowMs: number): void {
    for (;;) {
      const entry = this.timers.popDue(nowMs)
      if (entry === undefined) break
      entry.session.handleTimeout(nowMs)
      this.touch(entry)
    }
  }

  pollTransmit(nowMs: number): { bytes: Uint8Array; to: A } | undefined {
    if (this.statelessReplies.length > 0) {
      this.stats.datagramsSent++
      return this.statelessReplies.shift()
    }
    while (this.dirtyHead < this.dirtyQueue.length) {
      const entry = this.dirtyQueue[this.dirtyHead]
      const bytes = entry.session.isClosed ? undefined : entry.session.pollTransmit(nowMs)
      if (bytes !== undefined) {
        this.stats.datagramsSent++
        const probe = entry.session.lastPacketWasPathProbe && entry.candidate !== undefined
        return { bytes, to: probe ? entry.candidate! : entry.address }
      }
      entry.dirty = false
      this.dirtyHead++
      this.afterActivity(entry)
    }
    this.dirtyQueue.length = 0
    this.dirtyHead = 0
    return undefined
  }

  pollTimeout(): number | undefined {
    const t = this.timers.peekMs()
    return t === Infinity ? undefined : t
  }

  pollEvent(): EndpointEvent<A> | undefined {
    if (this.eventHead >= this.events.length) return undefined
    const e = this.events[this.eventHead++]
    if (this.eventHead === this.events.length) {
      this.events.length = 0
      this.eventHead = 0
    }
    return e
  }

  /** The application queued something on `session`: make pollTransmit look at it. */
  wake(session: Session): void {
    const entry = this.byCid.get(cidKey(session.localCid))
    if (entry !== undefined) this.touch(entry)
  }

  /** Every session, for statistics and shutdown. */
  *sessions(): Iterable<Session> {
    const seen = new Set<Session>()
    for (const e of this.byCid.values()) {
      if (!seen.has(e.session)) {
        seen.add(e.session)
        yield e.session
      }
    }
  }

  private acceptInitial(nowMs: number, datagram: Uint8Array, from: A): void {
    let header
    try {
      header = decodePacketHeader(datagram, 0)
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err
      this.stats.droppedMalformed++
      return
    }
    if (header.type === 'unsupported-version') {
      this.sendVersionNegotiation(header.scid, header.dcid, from, datagram.length)
      return
    }
    if (!this.opts.server || header.type !== 'initial') {
      this.stats.droppedUnknownSession++
      return
    }
    if (datagram.length < MIN_INITIAL_DATAGRAM_BYTES) {
      this.stats.droppedTooSmallInitial++
      return
    }
    if (header.scid.length !== CID_LENGTH || header.dcid.length < CID_LENGTH) {
      this.stats.droppedMalformed++
      return
    }
    if (this.liveSessions >= (this.opts.maxSessions ?? Infinity)) {
      this.stats.droppedSessionLimit++
      return
    }
    const session = new Session({
      role: 'server',
      nowMs,
      rng: this.opts.rng,
      config: this.opts.sessionConfig,
      trace: this.opts.trace,
      protection: (this.opts.protection ?? (() => nullProtection))(),
      remoteCid: header.scid.slice(),
      security: this.opts.security,
    })
    session.originalDcid = header.dcid.slice()
    if (this.byCid.has(cidKey(session.originalDcid)) || this.byCid.has(cidKey(session.localCid))) {
      this.stats.droppedMalformed++
      return
    }
    session.handleDatagram(nowMs, datagram)
    if (session.stats.packetsReceived === 0) {
      // The Initial did not authenticate (corrupted or forged): keep no state for it.
      this.stats.droppedUnauthenticatedInitial++
      return
    }
    const entry = new Entry<A>(session, from, cidKey(session.localCid), cidKey(session.originalDcid))
    this.register(entry)
    this.stats.sessionsAccepted++
    this.pushEvent({ session, address: from, event: { type: 'accepted' } })
    this.touch(entry)
  }

  private sendVersionNegotiation(dcid: Uint8Array, scid: Uint8Array, to: A, receivedBytes: number): void {
    const fields = { dcid, scid, versions: [VERSION_V1] }
    const length = versionNegotiationLength(fields)
    // Never send more than we received (anti-amplification), and bound the queue.
    if (length > receivedBytes || this.statelessReplies.length >= 64) return
    const w = new Writer(length)
    encodeVersionNegotiation(w, fields)
    this.statelessReplies.push({ bytes: w.finish(), to })
    this.stats.versionNegotiationsSent++
  }

  private register(entry: Entry<A>): void {
    this.byCid.set(entry.key, entry)
    if (!Number.isNaN(entry.originalKey)) this.byCid.set(entry.originalKey, entry)
    this.liveSessions++
    this.timers.validCountHint = this.liveSessions
  }

  /** Mark for transmit polling. */
  private touch(entry: Entry<A>): void {
    if (!entry.dirty) {
      entry.dirty = true
      this.dirtyQueue.push(entry)
    }
    this.drainEvents(entry)
  }

  private afterActivity(entry: Entry<A>): void {
    this.drainEvents(entry)
    const session = entry.session
    if (session.isClosed) {
      this.unregister(entry)
      return
    }
    this.timers.schedule(entry, session.pollTimeout() ?? Infinity)
  }

  private drainEvents(entry: Entry<A>): void {
    for (;;) {
      const event = entry.session.pollEvent()
      if (event === undefined) return
      if (event.type === 'path_validated') {
        if (entry.candidate === undefined) continue
        const old = entry.address
        entry.address = entry.candidate
        entry.candidate = undefined
        this.stats.addressChanges++
        this.pushEvent({ session: entry.session, address: entry.address, event: { type: 'address_changed', from: old } })
        continue
      }
      this.pushEvent({ session: entry.session, address: entry.address, event })
    }
  }

  private unregister(entry: Entry<A>): void {
    if (this.byCid.get(entry.key) !== entry) return
    this.byCid.delete(entry.key)
    if (this.byCid.get(entry.originalKey) === entry) this.byCid.delete(entry.originalKey)
    this.timers.schedule(entry, Infinity)
    this.liveSessions--
    this.stats.sessionsClosed++
  }

  private pushEvent(e: EndpointEvent<A>): void {
    this.events.push(e)
  }
}

/** Addresses compare by value when they are objects like {address, port}. */
const sameAddress = (a: unknown, b: unknown): boolean => {
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return a === b
  const x = a as Record<string, unknown>
  const y = b as Record<string, unknown>
  return x.address === y.address && x.port === y.port
}
