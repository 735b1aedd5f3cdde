import type { CongestionController } from '../cc/controller.js'
import { DeliveryRateEstimator } from '../cc/delivery-rate.js'
import { createCongestionController } from '../cc/index.js'
import { Pacer } from '../cc/pacer.js'
import { ErrorCode, PigeonError, UsageError, errorCodeName } from '../errors.js'
import { packBooleanFields } from '../packed-flags.js'
import { RecvCredit, SendCredit } from '../flow-control.js'
import { type PacketProtection, awaitingKeysProtection, checksumProtection, nullProtection } from '../protection.js'
import { AckTracker, AckUrgency } from '../recovery/ack-tracker.js'
import { RttEstimator } from '../recovery/rtt.js'
import { SentPacketTracker } from '../recovery/sent-packets.js'
import type { Rng } from '../rng.js'
import { MessageState, OutboundMessage } from '../streams/outbound-message.js'
import { REALTIME_MAX_PENDING_BYTES, RecvStream } from '../streams/recv-stream.js'
import { SendStream } from '../streams/send-stream.js'
import { StreamKind, isValidStreamKind, streamKindOf } from '../streams/stream-kind.js'
import { TraceName, type TraceSink } from '../trace.js'
import { CID_LENGTH } from '../wire/packet-header.js'
import { Reader } from '../wire/reader.js'
import type { TransportParams } from '../wire/transport-params.js'
import { buildPacket } from './assemble.js'
import { type SessionConfig, resolveSessionConfig } from './config.js'
import { type SessionEvent, type SessionState, type SessionStats, newSessionStats } from './events.js'
import { CLOSE_RESEND_INTERVAL_MS, handleDatagram } from './incoming.js'
import { answerWhileHibernated, hibernate, hibernateDeadlineMs, isHibernated } from './idle.js'
import { PathState, startPathValidation } from './path.js'
import { internPeerParams } from './peer-params.js'
import { handleFrames } from './receive.js'
import { detectLosses, expireMessages, onProbeTimeout, ptoDeadlineMs } from './recovery.js'
import { type ClientSecurity, SecureHandshake, type ServerSecurity } from './secure-handshake.js'
import { keyUpdateDeadlineMs, updateKeysByTime } from './security.js'
import type { SentRecord } from './sent-record.js'
import { MIN_DATAGRAM_BYTES, maxChunkBytes, sendableMessageBytes } from './sizing.js'
import { drawKeepAliveJitter, keepAliveDeadlineMs, onKeepAlive } from './keepalive.js'

export interface SessionOptions {
  role: 'client' | 'server'
  nowMs: number
  rng: Rng
  config?: Partial<SessionConfig>
  trace?: TraceSink
  protection?: PacketProtection
  /** Our connection id (8 bytes); random when omitted. */
  localCid?: Uint8Array
  /** Server: the client's connection id (its Initial's source CID). */
  remoteCid?: Uint8Array
  /**
   * Encrypt the session (Noise NK handshake, then ChaCha20-Poly1305): a client pins the
   * server's public key, a server holds its key pair. Without it the session runs the
   * plaintext HELLO handshake under `protection`.
   */
  security?: ClientSecurity | ServerSecurity
  /** Receives SSLKEYLOGFILE-style lines with the session's traffic secrets (debugging only). */
  keyLog?: (lines: string) => void
}

export interface SendOptions {
  /** Give up (stop retransmitting, report message_expired) at this absolute time. */
  expiresAtMs?: number
}


const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')

/**
 * One session of the pigeon protocol, sans-IO (quinn-proto style): feed it datagrams
 * and timeouts with the current time, drain datagrams, its next deadline and events.
 * Nothing in here reads a clock, draws randomness of its own, or owns a timer.
 *
 * Fields are public for the sibling modules that make up the session (incoming.ts,
 * receive.ts, assemble.ts, recovery.ts, security.ts, path.ts, idle.ts, keepalive.ts);
 * applications use the methods.
 */
export class Session {
  /**
   * The boolean fields declared below (helloPending, pingPending, addressValidated, ...)
   * live as bits of this one number, behind accessors on the prototype: an idle session's
   * memory counts, and each own boolean field costs a word (see PACKED_FLAGS).
   */
  flags = 0
  readonly role: 'client' | 'server'
  readonly config: SessionConfig
  readonly rng: Rng
  readonly trace: TraceSink | undefined
  /** Protection of short-header packets (the AEAD once an encrypted handshake is done). */
  protection: PacketProtection
  /** Protection of long-header (Initial) packets. */
  readonly initialProtection: PacketProtection
  /** Trailer bytes of short-header packets (fragment sizing, known before the keys). */
  readonly shortOverheadBytes: number
  /** The encrypted handshake, when the session is secured. */
  readonly handshake: SecureHandshake | null
  readonly keyLog: ((lines: string) => void) | undefined
  readonly localCid: Uint8Array
  readonly remoteCid: Uint8Array
  /** The CID the client first addressed (server accepts Initial packets to it). */
  originalDcid: Uint8Array | undefined
  private traceIdCache: string | undefined
  state: SessionState = 'connecting'
  readonly stats: SessionStats = newSessionStats()

  // --- peer parameters (defaults until its HELLO arrives) ---
  peerParams: Required<TransportParams>
  maxDatagramBytes: number
  idleTimeoutMs: number

  // --- recovery ---
  readonly rtt: RttEstimator
  readonly tracker: SentPacketTracker<SentRecord>
  readonly ackTracker: AckTracker
  ccState: CongestionController | null = null
  rateState: DeliveryRateEstimator | null = null
  pacerState: Pacer | null = null
  nextPacketNumber = 0
  ptoCount = 0
  probesPending = 0
  pacingBlockedUntilMs = 0
  lastReceivedMs: number
  lastSentAckElicitingMs: number
  lastSentMs: number
  /** When the current packet keys came into use (time-based key update). */
  keysSinceMs = 0
  /** How much earlier than keepAliveIntervalMs the next keepalive goes out (whole ms, see keepAliveJitterFraction). */
  keepAliveJitterMs = 0
  /**
   * Everything ack-eliciting in flight is keepalive PINGs (and their probes): the probe
   * timeout has a floor (keepAliveProbeMinMs) and probes go out one at a time.
   */
  declare keepAliveProbing: boolean
  /** Client: the token from the server's RETRY, carried in every later Initial. */
  retryToken: Uint8Array | null = null
  /** The last authenticated packet had the highest packet number so far (migration rule). */
  declare lastPacketWasNewest: boolean
  /**
   * Anti-amplification (server): until the client's address is validated — it answered
   * one of our packets, or presented a retry token — we send at most as many bytes as
   * we received from it: bytes received minus bytes sent from it so far (one field: an
   * idle session's memory counts).
   */
  declare addressValidated: boolean
  unvalidatedCreditBytes = 0

  // --- flow control and streams ---
  readonly sessionSendCredit: SendCredit
  readonly sessionRecvCredit: RecvCredit
  /** Send streams ordered by priority, then id (few per session: a list beats a Map). */
  sendOrder: SendStream[] = []
  recvStreams: Map<number, RecvStream> | null = null
  sendBufferBytes = 0
  nextExpiryMs = Infinity
  /** Receive credit was consumed since the last check: a window update may be due. */
  declare creditCheckDue: boolean

  // --- pending control frames ---
  declare helloPending: boolean
  declare helloAcked: boolean
  declare pingPending: boolean
  declare maxDataPending: boolean
  /** Stream ids whose MAX_STREAM_DATA must be (re)sent. */
  maxStreamDataPending: Set<number> | null = null
  declare dataBlockedPending: boolean
  /** Path validation state, created on first use (most sessions never migrate). */
  path: PathState | null = null
  /** Our CLOSE, and when we last repeated it (closing only). */
  closeFrame: { errorCode: number; reason: string; lastResendMs: number } | null = null
  declare closeSendPending: boolean
  /** Only meaningful while closing or draining. */
  closeDeadlineMs = 0

  /**
   * Congestion controller, delivery-rate estimator and pacer are created on first use
   * and dropped when the session goes quiet (see hibernate): a congestion window is
   * stale after an idle period anyway (RFC 2861 restarts it), and an idle session
   * should cost as little memory as possible.
   */
  get cc(): CongestionController {
    if (this.ccState === null) {
      this.ccState = createCongestionController(this.config.congestionController, { maxDatagramBytes: this.config.maxDatagramBytes, rng: this.rng })
    }
    return this.ccState
  }

  /** The congestion controller if it exists (without creating one). */
  existingCc(): CongestionController | null {
    return this.ccState
  }

  get rate(): DeliveryRateEstimator {
    if (this.rateState === null) this.rateState = new DeliveryRateEstimator()
    return this.rateState
  }

  get pacer(): Pacer {
    if (this.pacerState === null) this.pacerState = new Pacer({ maxBurstBytes: this.config.pacerBurstPackets * this.config.maxDatagramBytes })
    return this.pacerState
  }

  /** Hex connection id naming this session in traces (computed on first use). */
  get traceId(): string {
    if (this.traceIdCache === undefined) this.traceIdCache = hex(this.localCid)
    return this.traceIdCache
  }

  /** Pending events (null when none were ever queued or after hibernation). */
  events: SessionEvent[] | null = null
  eventHead = 0

  constructor(opts: SessionOptions) {
    this.role = opts.role
    this.config = resolveSessionConfig(opts.config)
    this.rng = opts.rng
    this.trace = opts.trace
    if (opts.security !== undefined) {
      this.handshake = new SecureHandshake({ role: opts.role, security: opts.security, rng: opts.rng })
      this.initialProtection = checksumProtection
      this.protection = awaitingKeysProtection
    } else {
      this.handshake = null
      this.protection = opts.protection ?? nullProtection
      this.initialProtection = this.protection
    }
    this.shortOverheadBytes = this.protection.overheadBytes
    this.keyLog = opts.keyLog
    // Both connection ids live in one 16-byte buffer (an idle session's memory counts).
    const cids = new Uint8Array(2 * CID_LENGTH)
    this.localCid = cids.subarray(0, CID_LENGTH)
    this.remoteCid = cids.subarray(CID_LENGTH)
    if (opts.localCid !== undefined) this.localCid.set(opts.localCid)
    else this.rng.fillBytes(this.localCid)
    if (opts.remoteCid !== undefined) this.remoteCid.set(opts.remoteCid)
    else this.rng.fillBytes(this.remoteCid)
    if (this.role === 'client') this.originalDcid = this.remoteCid.slice()
    this.peerParams = internPeerParams({})
    this.maxDatagramBytes = this.config.maxDatagramBytes
    this.idleTimeoutMs = this.config.idleTimeoutMs
    this.rtt = new RttEstimator({ initialRttMs: this.config.initialRttMs, maxAckDelayMs: this.peerParams.maxAckDelayMs })
    this.tracker = new SentPacketTracker<SentRecord>({ packetThreshold: this.config.packetThreshold })
    this.ackTracker = new AckTracker(this.config)
    this.sessionSendCredit = new SendCredit(this.peerParams.initialMaxData)
    this.sessionRecvCredit = new RecvCredit(this.config.sessionWindowBytes)
    this.lastReceivedMs = opts.nowMs
    this.lastSentAckElicitingMs = opts.nowMs
    this.lastSentMs = opts.nowMs
    this.helloPending = this.role === 'client'
    this.addressValidated = this.role === 'client'
    if (this.handshake !== null && this.role === 'client') {
      this.handshake.start({ originalDcid: this.remoteCid.slice(), clientScid: this.localCid, params: this.localParams() })
    }
    this.emitTrace(opts.nowMs, TraceName.sessionStateUpdated, { new: 'connecting', role: this.role })
  }

  // ---------------------------------------------------------------- application API

  /** Queue a message on a stream; returns its sequence number. Call pollTransmit after. */
  send(nowMs: number, streamId: number, data: Uint8Array, opts: SendOptions = {}): number {
    if (this.state === 'closing' || this.state === 'draining' || this.state === 'closed') {
      throw new UsageError(ErrorCode.APPLICATION_CLOSE, `session is ${this.state}`)
    }
    if (!Number.isSafeInteger(streamId) || streamId < 0 || !isValidStreamKind(streamId)) {
      throw new UsageError(ErrorCode.STREAM_LIMIT_ERROR, `invalid stream id ${streamId}`)
    }
    if (streamId >= this.peerParams.maxStreams) {
      throw new UsageError(ErrorCode.STREAM_LIMIT_ERROR, `stream id ${streamId} >= peer limit ${this.peerParams.maxStreams}`)
    }
    let limit = sendableMessageBytes(this)
    // A realtime receiver holds at most this much of an incomplete message.
    if (streamKindOf(streamId) === StreamKind.realtime) limit = Math.min(limit, REALTIME_MAX_PENDING_BYTES)
    if (data.length > limit) {
      throw new UsageError(ErrorCode.MESSAGE_TOO_LARGE, `message of ${data.length} bytes exceeds the limit of ${limit}`)
    }
    if (this.sendBufferBytes + data.length > this.config.maxSendBufferBytes) {
      throw new UsageError(ErrorCode.FLOW_CONTROL_ERROR, `send buffer full (${this.sendBufferBytes} bytes queued)`)
    }
    const stream = this.sendStream(streamId)
    let expiresAtMs = opts.expiresAtMs ?? Infinity
    if (stream.kind === StreamKind.realtime && expiresAtMs === Infinity) expiresAtMs = nowMs + this.config.realtimeDeadlineMs
    const seq = stream.nextSeq
    const msg = new OutboundMessage({
      streamId,
      seq,
      data,
      expiresAtMs,
      chunkBytes: maxChunkBytes({
        // Before the peer's HELLO only the protocol minimum is sure to fit.
        maxDatagramBytes: this.state === 'established' ? this.maxDatagramBytes : MIN_DATAGRAM_BYTES,
        protectionOverheadBytes: this.shortOverheadBytes,
        streamId,
        seq,
        msgLength: data.length,
      }),
    })
    stream.enqueue(msg)
    this.sendBufferBytes += data.length
    if (expiresAtMs < this.nextExpiryMs) this.nextExpiryMs = expiresAtMs
    this.stats.messagesSent++
    if (this.trace !== undefined) {
      this.emitTrace(nowMs, TraceName.messageSent, { stream_id: streamId, seq, length: data.length, fragments: msg.fragCount })
    }
    if (expiresAtMs <= nowMs) expireMessages(this, nowMs)
    return seq
  }

  /** Close gracefully: the peer is told with a CLOSE frame carrying `code`. */
  close(nowMs: number, code: number = ErrorCode.NO_ERROR, reason = ''): void {
    if (this.state === 'closing' || this.state === 'draining' || this.state === 'closed') return
    this.closeFrame = { errorCode: code, reason, lastResendMs: -CLOSE_RESEND_INTERVAL_MS }
    this.closeSendPending = true
    this.enterTerminal(nowMs, 'closing', { type: 'closed', code, reason, byPeer: false })
  }

  /** Connecting or established (not closing, draining or closed). */
  isActive(): boolean {
    return this.state === 'connecting' || this.state === 'established'
  }

  get isClosed(): boolean {
    return this.state === 'closed'
  }

  get isEstablished(): boolean {
    return this.state === 'established'
  }

  // ---------------------------------------------------------------- sans-IO driving

  /** One datagram from the peer. `datagram` must not be reused by the caller afterwards. */
  handleDatagram(nowMs: number, datagram: Uint8Array): void {
    handleDatagram(this, nowMs, datagram)
  }

  /** Call when `nowMs >= pollTimeout()`. */
  handleTimeout(nowMs: number): void {
    if (this.state === 'closed') return
    if (this.state === 'closing' || this.state === 'draining') {
      if (nowMs >= this.closeDeadlineMs) this.setState(nowMs, 'closed')
      return
    }
    if (nowMs >= this.lastReceivedMs + this.idleTimeoutMs) {
      this.pushEvent({ type: 'closed', code: ErrorCode.IDLE_TIMEOUT, reason: 'idle timeout', byPeer: false })
      this.setState(nowMs, 'closed')
      this.releaseAll()
      return
    }
    if (this.deadLinkDeadlineMs() <= nowMs) {
      this.onDeadLink(nowMs)
      return
    }
    if (this.tracker.lossTimeMs <= nowMs) detectLosses(this, nowMs)
    else if (ptoDeadlineMs(this) <= nowMs) onProbeTimeout(this, nowMs)
    if (!this.isActive()) return
    if (keepAliveDeadlineMs(this) <= nowMs) onKeepAlive(this)
    if (this.nextExpiryMs <= nowMs) expireMessages(this, nowMs)
    if (this.pacingBlockedUntilMs <= nowMs) this.pacingBlockedUntilMs = 0
    if (keyUpdateDeadlineMs(this) <= nowMs) updateKeysByTime(this, nowMs)
    const hibernateAt = hibernateDeadlineMs(this)
    if (hibernateAt <= nowMs) hibernate(this)
  }

  /** The next datagram to send, or undefined when there is nothing to send right now. */
  pollTransmit(nowMs: number): Uint8Array | undefined {
    if (this.state === 'closed' || this.state === 'draining') return undefined
    if (!isHibernated(this)) return buildPacket(this, nowMs)
    return answerWhileHibernated(this, buildPacket(this, nowMs))
  }

  /** Bytes we may still send before the peer's address is validated (Infinity once it is). */
  amplificationBudgetBytes(): number {
    return this.addressValidated ? Infinity : this.unvalidatedCreditBytes
  }

  /** Absolute time of the next deadline, or undefined when none is armed. */
  pollTimeout(): number | undefined {
    if (this.state === 'closed') return undefined
    if (this.state === 'closing' || this.state === 'draining') return this.closeDeadlineMs
    let t = this.lastReceivedMs + this.idleTimeoutMs
    if (this.ackTracker.ackPending && this.ackTracker.ackDeadlineMs < t) t = this.ackTracker.ackDeadlineMs
    const recovery = this.tracker.lossTimeMs !== Infinity ? this.tracker.lossTimeMs : ptoDeadlineMs(this)
    if (recovery < t) t = recovery
    const deadLink = this.deadLinkDeadlineMs()
    if (deadLink < t) t = deadLink
    const keepAliveAt = keepAliveDeadlineMs(this)
    if (keepAliveAt < t) t = keepAliveAt
    if (this.pacingBlockedUntilMs > 0 && this.pacingBlockedUntilMs < t) t = this.pacingBlockedUntilMs
    if (this.nextExpiryMs < t) t = this.nextExpiryMs
    const hibernateAt = hibernateDeadlineMs(this)
    if (hibernateAt < t) t = hibernateAt
    const rekeyAt = keyUpdateDeadlineMs(this)
    if (rekeyAt < t) t = rekeyAt
    return t
  }

  pollEvent(): SessionEvent | undefined {
    const events = this.events
    if (events === null || this.eventHead >= events.length) return undefined
    const e = events[this.eventHead++]
    if (this.eventHead === events.length) {
      events.length = 0
      this.eventHead = 0
    }
    return e
  }

  // ---------------------------------------------------------------- internals

  onPacket(nowMs: number, packetNumber: number, payload: Uint8Array, isShort: boolean, datagramBytes: number): void {
    let urgency: AckUrgency
    try {
      urgency = handleFrames(this, nowMs, new Reader(payload))
    } catch (err) {
      if (err instanceof PigeonError) {
        this.stats.droppedProtocolViolation++
        this.closeWithError(nowMs, err.code, err.message)
        return
      }
      throw err
    }
    this.stats.packetsReceived++
    this.lastReceivedMs = nowMs
    this.lastPacketWasNewest = packetNumber > this.ackTracker.largestReceived
    this.ackTracker.onPacketReceived(nowMs, packetNumber, urgency)
    // A short-header packet proves the client got our handshake reply at this address.
    if (isShort && this.role === 'server') {
      this.addressValidated = true
      if (this.state === 'connecting') this.onEstablished(nowMs)
    }
    if (this.trace !== undefined) {
      this.emitTrace(nowMs, TraceName.packetReceived, { packet_number: packetNumber, size: datagramBytes, ack_eliciting: urgency !== AckUrgency.none })
    }
  }

  /** Apply the peer's transport parameters from its HELLO. */
  applyPeerParams(params: TransportParams): void {
    this.peerParams = internPeerParams(params)
    this.maxDatagramBytes = Math.max(1200, Math.min(this.config.maxDatagramBytes, this.peerParams.maxDatagramBytes))
    this.idleTimeoutMs = Math.min(this.config.idleTimeoutMs, this.peerParams.maxIdleTimeoutMs)
    this.rtt.maxAckDelayMs = this.peerParams.maxAckDelayMs
    // The peer's windows replace the defaults assumed before its HELLO, smaller or not.
    // Nothing has been charged yet: no data goes out before the handshake.
    this.sessionSendCredit.maxBytes = this.peerParams.initialMaxData
    for (const stream of this.sendOrder) if (stream.credit !== null) stream.credit.maxBytes = this.peerParams.initialMaxStreamData
  }

  localParams(): TransportParams {
    return {
      maxIdleTimeoutMs: this.config.idleTimeoutMs,
      maxDatagramBytes: this.config.maxDatagramBytes,
      initialMaxData: this.config.sessionWindowBytes,
      initialMaxStreamData: this.config.streamWindowBytes,
      maxStreams: this.config.maxStreams,
      maxAckDelayMs: this.config.maxAckDelayMs,
      maxMessageBytes: this.config.maxMessageBytes,
    }
  }

  /** The last datagram built carries our PATH_CHALLENGE: the driver sends it to the candidate address. */
  get lastPacketWasPathProbe(): boolean {
    return this.path !== null && this.path.probeInLastPacket
  }

  /** The peer seems to have moved: challenge its new address (see path.ts). */
  startPathValidation(): void {
    startPathValidation(this)
  }

  onEstablished(nowMs: number): void {
    if (this.state !== 'connecting') return
    drawKeepAliveJitter(this)
    this.setState(nowMs, 'established')
    this.pushEvent({ type: 'connected' })
  }

  sendStream(streamId: number): SendStream {
    let s: SendStream | undefined
    for (const candidate of this.sendOrder) if (candidate.id === streamId) s = candidate
    if (s === undefined) {
      s = new SendStream({ id: streamId, initialMaxBytes: this.peerParams.initialMaxStreamData })
      this.sendOrder.push(s)
      this.sendOrder.sort((a, b) => a.priority - b.priority || a.id - b.id)
    }
    return s
  }

  recvStream(streamId: number): RecvStream {
    if (this.recvStreams === null) this.recvStreams = new Map()
    let s = this.recvStreams.get(streamId)
    if (s === undefined) {
      s = new RecvStream({ id: streamId, windowBytes: this.config.streamWindowBytes, sessionCredit: this.sessionRecvCredit })
      this.recvStreams.set(streamId, s)
    }
    return s
  }

  /** While ack-eliciting data is outstanding, silence this long means the link is dead. */
  private deadLinkDeadlineMs(): number {
    return this.tracker.ackElicitingInFlight > 0 ? this.lastReceivedMs + this.config.deadLinkTimeoutMs : Infinity
  }

  private onDeadLink(nowMs: number): void {
    const silentMs = nowMs - this.lastReceivedMs
    this.pushEvent({ type: 'dead_link', silentMs })
    this.closeWithError(nowMs, ErrorCode.DEAD_LINK, `nothing heard for ${Math.round(silentMs)} ms`)
  }

  /** Deliver a message to the application. */
  deliver(nowMs: number, streamId: number, seq: number, data: Uint8Array): void {
    this.creditCheckDue = true
    this.stats.messagesDelivered++
    this.pushEvent({ type: 'message', streamId, seq, data })
    if (this.trace !== undefined) this.emitTrace(nowMs, TraceName.messageDelivered, { stream_id: streamId, seq, length: data.length })
  }

  onPeerClose(nowMs: number, errorCode: number, reason: string): void {
    this.enterTerminal(nowMs, 'draining', { type: 'closed', code: errorCode, reason, byPeer: true })
  }

  closeWithError(nowMs: number, code: number, reason: string): void {
    if (this.trace !== undefined) this.emitTrace(nowMs, TraceName.sessionClosed, { code: errorCodeName(code), reason })
    this.close(nowMs, code, reason)
  }

  private enterTerminal(nowMs: number, state: 'closing' | 'draining', event: SessionEvent): void {
    this.closeDeadlineMs = nowMs + 3 * this.rtt.probeTimeoutMs(this.config.granularityMs)
    this.setState(nowMs, state)
    this.pushEvent(event)
    this.releaseAll()
  }

  /**
   * Drop every queued message and buffer: nothing more will be sent or delivered. Each
   * message not yet acknowledged is reported failed, so the application always learns
   * the fate of what it sent (acked, expired or failed).
   */
  private releaseAll(): void {
    for (const stream of this.sendOrder) {
      for (const msg of stream.liveMessages()) {
        if (msg.state !== MessageState.live) continue
        msg.state = MessageState.abandoned
        msg.release()
        this.pushEvent({ type: 'message_failed', streamId: msg.streamId, seq: msg.seq })
      }
    }
    for (const p of this.tracker.drain()) p.records = null
    this.sendOrder = []
    this.recvStreams = null
    this.sendBufferBytes = 0
    this.nextExpiryMs = Infinity
  }

  setState(nowMs: number, state: SessionState): void {
    if (this.state === state) return
    const old = this.state
    this.state = state
    this.emitTrace(nowMs, TraceName.sessionStateUpdated, { old, new: state })
  }

  pushEvent(e: SessionEvent): void {
    if (this.events === null) this.events = [e]
    else this.events.push(e)
  }

  drop(nowMs: number, reason: string, countMalformed = true): void {
    if (reason === 'unknown_connection_id') this.stats.droppedUnknownConnection++
    else if (countMalformed) this.stats.droppedMalformed++
    if (this.trace !== undefined) this.emitTrace(nowMs, TraceName.packetDropped, { trigger: reason })
  }

  emitTrace(nowMs: number, name: string, data: Record<string, unknown>): void {
    if (this.trace !== undefined) this.trace({ time: nowMs, name, data, session: this.traceId })
  }


  /** Internal sizes, for tests asserting bounded memory. */
  debugSizes(): Record<string, number> {
    let recvPending = 0
    if (this.recvStreams !== null) for (const r of this.recvStreams.values()) recvPending += r.pendingCount
    let live = 0
    let retx = 0
    for (const s of this.sendOrder) {
      live += s.liveCount
      retx += s.retransmitQueueLength
    }
    return {
      sentPacketsTracked: this.tracker.outstandingCount,
      ackRanges: this.ackTracker.received.rangeCount,
      recvPendingMessages: recvPending,
      liveSendMessages: live,
      retransmitQueue: retx,
      events: this.events === null ? 0 : this.events.length - this.eventHead,
      sendBufferBytes: this.sendBufferBytes,
    }
  }
}

/** Session's boolean state, one bit each of `flags` (see packBooleanFields). */
const PACKED_FLAGS = [
  'helloPending', 'helloAcked', 'pingPending', 'maxDataPending', 'dataBlockedPending',
  'closeSendPending', 'creditCheckDue', 'lastPacketWasNewest', 'keepAliveProbing', 'addressValidated',
] as const satisfies ReadonlyArray<keyof Session>

packBooleanFields(Session.prototype, PACKED_FLAGS)
