import { type PacketProtection, nullProtection } from './protection.js'
import type { Rng } from './rng.js'
import type { SessionConfig } from './session/config.js'
import type { SessionEvent } from './session/events.js'
import type { ClientSecurity, ServerSecurity } from './session/secure-handshake.js'
import { Session } from './session/session.js'
import { TimerHeap, type TimerItem } from './timer-heap.js'
import type { TraceSink } from './trace.js'
import type { AddressLimiter } from './address-limiter.js'
import { mintRetryToken, validateRetryToken } from './crypto/retry-token.js'
import { CID_LENGTH, VERSION_V1, decodePacketHeader, encodeRetry, encodeVersionNegotiation, isLikelyPigeonPacket, peekDestinationCid, retryLength, versionNegotiationLength } from './wire/packet-header.js'
import { Writer } from './wire/writer.js'
import { DecodeError } from './errors.js'

/** Slots a drained queue keeps for reuse; a larger one is dropped. */
const QUEUE_KEEP_SLOTS = 1024

/** Smallest datagram that may open a session (client Initials are padded to it). */
export const MIN_INITIAL_DATAGRAM_BYTES = 1200

export interface EndpointOptions<A = unknown> {
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
  /**
   * Server: stateless address validation. Every new client first gets a RETRY carrying a
   * token bound to its address; only an Initial that returns a valid token creates state.
   */
  retry?: { key: Uint8Array; lifetimeMs?: number }
  /** How an address is named inside retry tokens (default: `${address}:${port}` or String(a)). */
  addressKey?: (address: A) => string
  /** Server: rate limit on new handshakes per address (checked before any state is kept). */
  handshakeLimiter?: AddressLimiter
  /** The key the handshake limiter buckets by (default: the IP without the port). */
  limiterKey?: (address: A) => string
  /** SSLKEYLOGFILE-style sink for encrypted sessions' secrets (off unless given). */
  keyLog?: (lines: string) => void
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
  /** Initials that authenticated but whose handshake failed (wrong server key, bad HELLO): answered with a CLOSE, no state kept. */
  refusedInitials: number
  droppedSessionLimit: number
  versionNegotiationsSent: number
  retriesSent: number
  droppedBadToken: number
  droppedRateLimited: number
  /** Unsupported version whose negotiation reply we suppressed (would amplify, or queue full). */
  droppedUnsupportedVersion: number
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
    /**
     * Server: the map key of the CID the client first addressed, kept only until the
     * handshake is over (null then, or for clients). Our own CID's key is recomputed
     * from the session when needed: an idle session's entry stays small.
     */
    public originalKey: number | null,
  ) {}

  get key(): number {
    return cidKey(this.session.localCid)
  }
}

/**
 * Map key of a connection id: 53 of its bits as a number (cheaper to hash than a
 * string). Keys of our own CIDs are unique by construction (see register); a client's
 * chosen Initial DCID that collides is refused, and sessions compare full CIDs anyway.
 */
export const cidKey = (cid: Uint8Array): number => {
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
    refusedInitials: 0,
    droppedSessionLimit: 0,
    versionNegotiationsSent: 0,
    retriesSent: 0,
    droppedBadToken: 0,
    droppedRateLimited: 0,
    droppedUnsupportedVersion: 0,
    addressChanges: 0,
    pathChallenges: 0,
  }
  private readonly opts: EndpointOptions<A>
  private readonly byCid = new Map<number, Entry<A>>()
  private readonly timers = new TimerHeap<Entry<A>>()
  /**
   * FIFO queues, drained by index and reused: truncating an array (length = 0) drops its
   * backing store, and the next push allocates a new one, once per datagram. Drained
   * slots are cleared so no session is kept alive by a stale reference.
   */
  private dirtyQueue: Array<Entry<A> | undefined> = []
  private dirtyHead = 0
  private dirtyTail = 0
  private events: Array<EndpointEvent<A> | undefined> = []
  private eventHead = 0
  private eventTail = 0
  /** Stateless replies (version negotiation) waiting to go out. */
  private statelessReplies: Array<{ bytes: Uint8Array; to: A }> = []
  private liveSessions = 0

  constructor(opts: EndpointOptions<A>) {
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
      keyLog: this.opts.keyLog,
    })
    const entry = new Entry<A>(session, address, null)
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
    while (this.dirtyHead < this.dirtyTail) {
      const entry = this.dirtyQueue[this.dirtyHead]!
      const bytes = entry.session.isClosed ? undefined : entry.session.pollTransmit(nowMs)
      if (bytes !== undefined) {
        this.stats.datagramsSent++
        const probe = entry.session.lastPacketWasPathProbe && entry.candidate !== undefined
        return { bytes, to: probe ? entry.candidate! : entry.address }
      }
      entry.dirty = false
      this.dirtyQueue[this.dirtyHead++] = undefined
      this.afterActivity(entry)
    }
    this.dirtyHead = 0
    this.dirtyTail = 0
    // A burst over very many sessions may have grown the queue: let that memory go.
    if (this.dirtyQueue.length > QUEUE_KEEP_SLOTS) this.dirtyQueue = []
    return undefined
  }

  pollTimeout(): number | undefined {
    const t = this.timers.peekMs()
    return t === Infinity ? undefined : t
  }

  pollEvent(): EndpointEvent<A> | undefined {
    if (this.eventHead >= this.eventTail) return undefined
    const e = this.events[this.eventHead]!
    this.events[this.eventHead++] = undefined
    if (this.eventHead === this.eventTail) {
      this.eventHead = 0
      this.eventTail = 0
      if (this.events.length > QUEUE_KEEP_SLOTS) this.events = []
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
    const limiter = this.opts.handshakeLimiter
    if (limiter !== undefined && !limiter.allow(this.limiterKeyOf(from), nowMs)) {
      this.stats.droppedRateLimited++
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
    let originalDcid = header.dcid
    let localCid: Uint8Array | undefined
    const retry = this.opts.retry
    if (retry !== undefined) {
      const address = this.addressKeyOf(from)
      if (header.token.length === 0) {
        this.sendRetry(nowMs, { to: from, address, clientScid: header.scid, originalDcid: header.dcid, receivedBytes: datagram.length })
        return
      }
      const verdict = validateRetryToken({ key: retry.key, nowMs, address, token: header.token })
      if (!verdict.ok) {
        this.stats.droppedBadToken++
        return
      }
      // The client now addresses the CID we chose in the RETRY: it becomes ours.
      originalDcid = verdict.originalDcid
      localCid = header.dcid.slice()
      if (localCid.length !== CID_LENGTH) {
        this.stats.droppedMalformed++
        return
      }
    }
    const session = new Session({
      role: 'server',
      nowMs,
      rng: this.opts.rng,
      config: this.opts.sessionConfig,
      trace: this.opts.trace,
      protection: (this.opts.protection ?? (() => nullProtection))(),
      remoteCid: header.scid.slice(),
      localCid,
      security: this.opts.security,
      keyLog: this.opts.keyLog,
    })
    session.originalDcid = originalDcid.slice()
    // A valid retry token proves the client receives at this address.
    if (localCid !== undefined) session.addressValidated = true
    if ((localCid === undefined && this.byCid.has(cidKey(session.originalDcid))) || this.byCid.has(cidKey(session.localCid))) {
      this.stats.droppedMalformed++
      return
    }
    session.handleDatagram(nowMs, datagram)
    if (session.stats.packetsReceived === 0) {
      if (session.state === 'closing') {
        // The packet authenticated but its handshake failed (a client pinning another server
        // key, a malformed HELLO): tell the client why, statelessly, in one CONNECTION_CLOSE
        // no larger than its Initial; otherwise it would only find out by timing out.
        this.stats.refusedInitials++
        const close = session.pollTransmit(nowMs)
        if (close !== undefined && close.length <= datagram.length && this.statelessReplies.length < 64) {
          this.statelessReplies.push({ bytes: close, to: from })
        }
        return
      }
      // The Initial did not authenticate (corrupted or forged): keep no state for it.
      this.stats.droppedUnauthenticatedInitial++
      return
    }
    const entry = new Entry<A>(session, from, localCid === undefined ? cidKey(session.originalDcid) : null)
    this.register(entry)
    this.stats.sessionsAccepted++
    this.pushEvent({ session, address: from, event: { type: 'accepted' } })
    this.touch(entry)
  }

  /** Answer an Initial without a token with a RETRY (stateless; never larger than the Initial). */
  private sendRetry(
    nowMs: number,
    o: { to: A; address: string; clientScid: Uint8Array; originalDcid: Uint8Array; receivedBytes: number },
  ): void {
    if (this.statelessReplies.length >= 64) {
      this.stats.droppedRateLimited++
      return
    }
    const retryCid = new Uint8Array(CID_LENGTH)
    this.opts.rng.fillBytes(retryCid)
    const token = mintRetryToken({ key: this.opts.retry!.key, nowMs, address: o.address, originalDcid: o.originalDcid, lifetimeMs: this.opts.retry!.lifetimeMs })
    const fields = { dcid: o.clientScid, scid: retryCid, token }
    const length = retryLength(fields)
    if (length > o.receivedBytes) {
      this.stats.droppedMalformed++
      return
    }
    const w = new Writer(length)
    encodeRetry(w, fields)
    this.statelessReplies.push({ bytes: w.finish(), to: o.to })
    this.stats.retriesSent++
  }

  private limiterKeyOf(address: A): string {
    if (this.opts.limiterKey !== undefined) return this.opts.limiterKey(address)
    if (typeof address === 'object' && address !== null) return String((address as { address?: unknown }).address)
    return String(address)
  }

  private addressKeyOf(address: A): string {
    if (this.opts.addressKey !== undefined) return this.opts.addressKey(address)
    if (typeof address === 'object' && address !== null) {
      const a = address as { address?: unknown; port?: unknown }
      return `${String(a.address)}:${String(a.port)}`
    }
    return String(address)
  }

  private sendVersionNegotiation(dcid: Uint8Array, scid: Uint8Array, to: A, receivedBytes: number): void {
    const fields = { dcid, scid, versions: [VERSION_V1] }
    const length = versionNegotiationLength(fields)
    // Never send more than we received (anti-amplification), and bound the queue.
    if (length > receivedBytes || this.statelessReplies.length >= 64) {
      this.stats.droppedUnsupportedVersion++
      return
    }
    const w = new Writer(length)
    encodeVersionNegotiation(w, fields)
    this.statelessReplies.push({ bytes: w.finish(), to })
    this.stats.versionNegotiationsSent++
  }

  private register(entry: Entry<A>): void {
    this.byCid.set(entry.key, entry)
    if (entry.originalKey !== null) this.byCid.set(entry.originalKey, entry)
    this.liveSessions++
    this.timers.validCountHint = this.liveSessions
  }

  /** Mark for transmit polling. */
  private touch(entry: Entry<A>): void {
    if (!entry.dirty) {
      entry.dirty = true
      this.dirtyQueue[this.dirtyTail++] = entry
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
    // The handshake is long over (the session dropped its original CID): so does the map.
    if (entry.originalKey !== null && session.originalDcid === undefined) this.forgetOriginalKey(entry)
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

  private forgetOriginalKey(entry: Entry<A>): void {
    if (entry.originalKey !== null && this.byCid.get(entry.originalKey) === entry) this.byCid.delete(entry.originalKey)
    entry.originalKey = null
  }

  private unregister(entry: Entry<A>): void {
    const key = entry.key
    if (this.byCid.get(key) !== entry) return
    this.byCid.delete(key)
    this.forgetOriginalKey(entry)
    this.timers.schedule(entry, Infinity)
    this.liveSessions--
    this.stats.sessionsClosed++
  }

  private pushEvent(e: EndpointEvent<A>): void {
    this.events[this.eventTail++] = e
  }
}

/** Addresses compare by value when they are objects like {address, port}. */
const sameAddress = (a: unknown, b: unknown): boolean => {
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return a === b
  const x = a as Record<string, unknown>
  const y = b as Record<string, unknown>
  return x.address === y.address && x.port === y.port
}
