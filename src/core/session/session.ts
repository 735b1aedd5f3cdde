import type { CongestionController } from '../cc/controller.js'
import { DeliveryRateEstimator } from '../cc/delivery-rate.js'
import { createCongestionController } from '../cc/index.js'
import { Pacer } from '../cc/pacer.js'
import { DecodeError, ErrorCode, PigeonError, ProtocolError, UsageError, errorCodeName } from '../errors.js'
import { RecvCredit, SendCredit } from '../flow-control.js'
import { type PacketProtection, awaitingKeysProtection, checksumProtection, nullProtection } from '../protection.js'
import { AckTracker } from '../recovery/ack-tracker.js'
import { RttEstimator } from '../recovery/rtt.js'
import { SentPacketTracker, type SentPacket } from '../recovery/sent-packets.js'
import type { Rng } from '../rng.js'
import { MessageState, OutboundMessage } from '../streams/outbound-message.js'
import { REALTIME_MAX_PENDING_BYTES, RecvStream } from '../streams/recv-stream.js'
import { SendStream } from '../streams/send-stream.js'
import { StreamKind, isValidStreamKind, streamKindOf } from '../streams/stream-kind.js'
import { TraceName, type TraceSink } from '../trace.js'
import { CID_LENGTH, VERSION_V1, decodePacketHeader } from '../wire/packet-header.js'
import { decodePacketNumber } from '../wire/pn-encoding.js'
import { Reader } from '../wire/reader.js'
import { type TransportParams, resolveTransportParams } from '../wire/transport-params.js'
import { buildPacket } from './assemble.js'
import { type SessionConfig, resolveSessionConfig } from './config.js'
import { type SessionEvent, type SessionState, type SessionStats, newSessionStats } from './events.js'
import type { AeadProtection } from '../crypto/aead-protection.js'
import { formatKeyLog } from '../crypto/key-log.js'
import { handleFrames } from './receive.js'
import { type ClientSecurity, SecureHandshake, type ServerSecurity } from './secure-handshake.js'
import { RecordKind, type SentRecord } from './sent-record.js'
import { MIN_DATAGRAM_BYTES, maxChunkBytes } from './sizing.js'

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

/** A closing session repeats its CLOSE at most this often. */
const CLOSE_RESEND_INTERVAL_MS = 100

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')

/**
 * One session of the pigeon protocol, sans-IO (quinn-proto style): feed it datagrams
 * and timeouts with the current time, drain datagrams, its next deadline and events.
 * Nothing in here reads a clock, draws randomness of its own, or owns a timer.
 *
 * Fields are public for the sibling modules (assemble.ts, receive.ts) that make up the
 * session; applications use the methods.
 */
export class Session {
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
  private readonly keyLog: ((lines: string) => void) | undefined
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
  private ccState: CongestionController | null = null
  private rateState: DeliveryRateEstimator | null = null
  private pacerState: Pacer | null = null
  nextPacketNumber = 0
  ptoCount = 0
  probesPending = 0
  pacingBlockedUntilMs = 0
  lastReceivedMs: number
  lastSentAckElicitingMs: number
  lastSentMs: number
  /** When the current packet keys came into use (time-based key update). */
  keysSinceMs = 0
  /** Client: the token from the server's RETRY, carried in every later Initial. */
  retryToken: Uint8Array | null = null
  /** The last authenticated packet had the highest packet number so far (migration rule). */
  lastPacketWasNewest = false
  /**
   * Anti-amplification (server): until the client's address is validated — it answered
   * one of our packets, or presented a retry token — we send at most as many bytes as
   * we received from it.
   */
  addressValidated: boolean
  unvalidatedBytesReceived = 0
  unvalidatedBytesSent = 0

  // --- flow control and streams ---
  readonly sessionSendCredit: SendCredit
  readonly sessionRecvCredit: RecvCredit
  /** Send streams ordered by priority, then id (few per session: a list beats a Map). */
  sendOrder: SendStream[] = []
  recvStreams: Map<number, RecvStream> | null = null
  sendBufferBytes = 0
  nextExpiryMs = Infinity
  /** Receive credit was consumed since the last check: a window update may be due. */
  creditCheckDue = false

  // --- pending control frames ---
  helloPending: boolean
  helloAcked = false
  pingPending = false
  maxDataPending = false
  /** Stream ids whose MAX_STREAM_DATA must be (re)sent. */
  maxStreamDataPending: Set<number> | null = null
  dataBlockedPending = false
  /** Path validation state, created on first use (most sessions never migrate). */
  path: PathState | null = null
  closeFrame: { errorCode: number; reason: string } | null = null
  closeSendPending = false
  /** Only meaningful while closing or draining. */
  closeDeadlineMs = 0
  lastCloseResendMs = -CLOSE_RESEND_INTERVAL_MS

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

  /** Nothing in flight, queued or owed: the session can shed its per-flow state. */
  isQuiescent(): boolean {
    if (this.state !== 'established' || this.tracker.ackElicitingInFlight > 0 || this.ackTracker.ackPending) return false
    if (this.probesPending > 0 || this.pingPending || this.helloPending || (this.events !== null && this.eventHead < this.events.length)) return false
    for (const stream of this.sendOrder) if (stream.hasWork || stream.liveCount > 0) return false
    return true
  }

  /**
   * Release what an idle session does not need: congestion and pacing state, the record
   * of ACK-only packets, buffers. Everything is recreated on demand. Returns whether it did.
   */
  hibernate(): boolean {
    if (!this.isQuiescent()) return false
    this.ccState = null
    this.rateState = null
    this.pacerState = null
    this.pacingBlockedUntilMs = 0
    for (const p of this.tracker.drain()) p.records = null
    // Everything received was acknowledged and confirmed (quiescent): keep only the largest.
    this.ackTracker.received.clear()
    this.events = null
    this.eventHead = 0
    if (this.role === 'server') this.originalDcid = undefined
    return true
  }

  /** Hex connection id naming this session in traces (computed on first use). */
  get traceId(): string {
    if (this.traceIdCache === undefined) this.traceIdCache = hex(this.localCid)
    return this.traceIdCache
  }

  /** Pending events (null when none were ever queued or after hibernation). */
  private events: SessionEvent[] | null = null
  private eventHead = 0

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
    let limit = Math.min(this.config.maxMessageBytes, this.peerParams.maxMessageBytes)
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
    if (expiresAtMs <= nowMs) this.expireMessages(nowMs)
    return seq
  }

  /** Close gracefully: the peer is told with a CLOSE frame carrying `code`. */
  close(nowMs: number, code: number = ErrorCode.NO_ERROR, reason = ''): void {
    if (this.state === 'closing' || this.state === 'draining' || this.state === 'closed') return
    this.closeFrame = { errorCode: code, reason }
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
    if (this.state === 'closed' || this.state === 'draining') {
      this.stats.droppedAfterClose++
      return
    }
    if (this.state === 'closing') {
      // Answer with CLOSE again (the first one may have been lost) — but only to a packet
      // that authenticates, and at most once per CLOSE_RESEND_INTERVAL_MS, so garbage
      // cannot make us reflect CLOSE packets at our peer (RFC 9000 §10.2.1).
      this.stats.droppedAfterClose++
      if (nowMs >= this.lastCloseResendMs + CLOSE_RESEND_INTERVAL_MS && this.authenticates(datagram)) {
        this.lastCloseResendMs = nowMs
        this.closeSendPending = true
      }
      return
    }
    this.stats.bytesReceived += datagram.length
    if (!this.addressValidated) this.unvalidatedBytesReceived += datagram.length
    let offset = 0
    while (offset < datagram.length && this.isActive()) {
      let header
      try {
        header = decodePacketHeader(datagram, offset)
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err
        this.drop(nowMs, 'malformed_header')
        return
      }
      offset = header.packetEnd
      if (header.type === 'short') {
        if (!sameBytes(header.dcid, this.localCid)) {
          this.drop(nowMs, 'unknown_connection_id')
          continue
        }
      } else if (header.type === 'initial' || header.type === 'handshake') {
        if (header.version !== VERSION_V1) {
          this.drop(nowMs, 'unsupported_version')
          continue
        }
        const toUs = sameBytes(header.dcid, this.localCid) || (this.originalDcid !== undefined && sameBytes(header.dcid, this.originalDcid))
        if (!toUs) {
          this.drop(nowMs, 'unknown_connection_id')
          continue
        }
      } else if (header.type === 'retry') {
        // Stateless address validation: resend our Initial with the token, to the CID the
        // server picked. Only one RETRY is accepted, and only one naming our CID.
        if (this.role !== 'client' || this.state !== 'connecting' || this.retryToken !== null || !sameBytes(header.dcid, this.localCid) || header.scid.length !== CID_LENGTH) {
          this.drop(nowMs, 'unexpected_retry')
          continue
        }
        this.retryToken = header.token.slice()
        this.remoteCid.set(header.scid)
        this.helloPending = true
        this.emitTrace(nowMs, 'transport:packet_received', { header: 'retry', token_length: header.token.length })
        continue
      } else if (header.type === 'version-negotiation' && this.role === 'client' && this.state === 'connecting') {
        // Unauthenticated: one that lists our own version was triggered by a corrupted or
        // forged packet and is ignored (RFC 9000 §6.2).
        if (header.versions.includes(VERSION_V1)) {
          this.drop(nowMs, 'version_negotiation_lists_our_version')
          continue
        }
        this.closeWithError(nowMs, ErrorCode.VERSION_MISMATCH, `server speaks ${header.versions.map((v) => v.toString(16)).join(',')}`)
        return
      } else {
        this.drop(nowMs, `unexpected_${header.type}`)
        continue
      }
      let packetNumber: number
      try {
        packetNumber = decodePacketNumber({
          truncated: header.truncatedPn,
          lengthBytes: header.pnLength,
          largestReceived: this.ackTracker.largestReceived < 0 ? undefined : this.ackTracker.largestReceived,
        })
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err
        this.drop(nowMs, 'bad_packet_number')
        continue
      }
      const protection = header.type === 'short' ? this.protection : this.initialProtection
      const payload = protection.open(datagram.subarray(header.packetStart, header.packetEnd), {
        headerLength: header.headerLength,
        packetNumber,
      })
      if (payload === null) {
        this.stats.droppedUndecryptable++
        this.drop(nowMs, 'integrity_check_failed', false)
        continue
      }
      if (this.ackTracker.isDuplicate(packetNumber)) {
        this.stats.droppedDuplicate++
        this.drop(nowMs, 'duplicate', false)
        continue
      }
      if (header.type === 'initial' && this.role === 'client' && this.state === 'connecting' && header.scid.length === CID_LENGTH) {
        // Only an authenticated packet may tell us the server's connection id.
        this.remoteCid.set(header.scid)
      }
      this.onPacket(nowMs, packetNumber, payload, header.type === 'short', datagram.length)
    }
  }

  /** Whether the first packet of `datagram` passes this session's packet protection. */
  private authenticates(datagram: Uint8Array): boolean {
    try {
      const header = decodePacketHeader(datagram, 0)
      if (header.type !== 'short' && header.type !== 'initial' && header.type !== 'handshake') return false
      const packetNumber = decodePacketNumber({
        truncated: header.truncatedPn,
        lengthBytes: header.pnLength,
        largestReceived: this.ackTracker.largestReceived < 0 ? undefined : this.ackTracker.largestReceived,
      })
      const protection = header.type === 'short' ? this.protection : this.initialProtection
      return protection.open(datagram.slice(header.packetStart, header.packetEnd), { headerLength: header.headerLength, packetNumber }) !== null
    } catch (err) {
      if (err instanceof DecodeError) return false
      throw err
    }
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
    if (this.tracker.lossTimeMs <= nowMs) this.detectLosses(nowMs)
    else if (this.ptoDeadlineMs() <= nowMs) this.onProbeTimeout(nowMs)
    if (!this.isActive()) return
    const keepAlive = this.config.keepAliveIntervalMs
    if (keepAlive > 0 && this.state === 'established' && nowMs >= this.lastSentAckElicitingMs + keepAlive) this.pingPending = true
    if (this.nextExpiryMs <= nowMs) this.expireMessages(nowMs)
    if (this.pacingBlockedUntilMs <= nowMs) this.pacingBlockedUntilMs = 0
    if (this.keyUpdateDeadlineMs() <= nowMs) this.updateKeysByTime(nowMs)
    const hibernateAt = this.hibernateDeadlineMs()
    if (hibernateAt <= nowMs) this.hibernate()
  }

  /** When the keys are old enough to be replaced (Infinity: no time-based key update). */
  private keyUpdateDeadlineMs(): number {
    const afterMs = this.handshake?.security.keyUpdateAfterMs ?? 0
    if (afterMs <= 0 || this.state !== 'established' || this.protection === awaitingKeysProtection) return Infinity
    return this.keysSinceMs + afterMs
  }

  private updateKeysByTime(nowMs: number): void {
    const aead = this.protection as Partial<AeadProtection>
    if (aead.canUpdateKeys === true && aead.keyUpdate !== undefined) {
      aead.keyUpdate()
      this.emitTrace(nowMs, 'security:key_updated', { trigger: 'time', generation: aead.sendGeneration })
      this.keysSinceMs = nowMs
    } else {
      // The peer has not caught up with our last update yet: try again a little later.
      this.keysSinceMs += Math.min(this.rtt.smoothedRttMs, 1000)
    }
    // Make sure something goes out under the new keys so the peer follows.
    this.pingPending = true
  }

  /** When a quiet session sheds its per-flow state (Infinity: not now). */
  private hibernateDeadlineMs(): number {
    const after = this.config.hibernateAfterMs
    if (after <= 0 || this.isHibernated() || !this.isQuiescent()) return Infinity
    return Math.max(this.lastReceivedMs, this.lastSentMs) + after
  }

  isHibernated(): boolean {
    return this.ccState === null && this.rateState === null && this.pacerState === null && this.tracker.outstandingCount === 0
  }

  /** The next datagram to send, or undefined when there is nothing to send right now. */
  pollTransmit(nowMs: number): Uint8Array | undefined {
    if (this.state === 'closed' || this.state === 'draining') return undefined
    return buildPacket(this, nowMs)
  }

  /** Bytes we may still send before the peer's address is validated (Infinity once it is). */
  amplificationBudgetBytes(): number {
    return this.addressValidated ? Infinity : this.unvalidatedBytesReceived - this.unvalidatedBytesSent
  }

  /** Absolute time of the next deadline, or undefined when none is armed. */
  pollTimeout(): number | undefined {
    if (this.state === 'closed') return undefined
    if (this.state === 'closing' || this.state === 'draining') return this.closeDeadlineMs
    let t = this.lastReceivedMs + this.idleTimeoutMs
    if (this.ackTracker.ackPending && this.ackTracker.ackDeadlineMs < t) t = this.ackTracker.ackDeadlineMs
    const recovery = this.tracker.lossTimeMs !== Infinity ? this.tracker.lossTimeMs : this.ptoDeadlineMs()
    if (recovery < t) t = recovery
    const deadLink = this.deadLinkDeadlineMs()
    if (deadLink < t) t = deadLink
    if (this.config.keepAliveIntervalMs > 0 && this.state === 'established') {
      const k = this.lastSentAckElicitingMs + this.config.keepAliveIntervalMs
      if (k < t) t = k
    }
    if (this.pacingBlockedUntilMs > 0 && this.pacingBlockedUntilMs < t) t = this.pacingBlockedUntilMs
    if (this.nextExpiryMs < t) t = this.nextExpiryMs
    const hibernateAt = this.hibernateDeadlineMs()
    if (hibernateAt < t) t = hibernateAt
    const rekeyAt = this.keyUpdateDeadlineMs()
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

  private onPacket(nowMs: number, packetNumber: number, payload: Uint8Array, isShort: boolean, datagramBytes: number): void {
    let ackEliciting: boolean
    try {
      ackEliciting = handleFrames(this, nowMs, new Reader(payload))
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
    this.ackTracker.onPacketReceived(nowMs, packetNumber, ackEliciting)
    // A short-header packet proves the client got our handshake reply at this address.
    if (isShort && this.role === 'server') {
      this.addressValidated = true
      if (this.state === 'connecting') this.onEstablished(nowMs)
    }
    if (this.trace !== undefined) {
      this.emitTrace(nowMs, TraceName.packetReceived, { packet_number: packetNumber, size: datagramBytes, ack_eliciting: ackEliciting })
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

  /**
   * The peer seems to have moved: challenge the new address before sending there
   * (RFC 9000 §8.2), so a spoofed source address cannot redirect our traffic.
   */
  startPathValidation(): void {
    const data = new Uint8Array(8)
    this.rng.fillBytes(data)
    const path = this.pathState()
    path.challenge = data
    path.challengePending = true
    path.challengeId++
  }

  /** PATH_RESPONSE: the new address answered our challenge. */
  onPathResponse(data: Uint8Array): void {
    const path = this.path
    if (path === null || path.challenge === null || !sameBytes(data, path.challenge)) return
    path.challenge = null
    path.challengePending = false
    this.pushEvent({ type: 'path_validated' })
  }

  pathState(): PathState {
    if (this.path === null) this.path = new PathState()
    return this.path
  }

  /** The last datagram built carries our PATH_CHALLENGE: the driver sends it to the candidate address. */
  get lastPacketWasPathProbe(): boolean {
    return this.path !== null && this.path.probeInLastPacket
  }

  /** A CRYPTO_HANDSHAKE message (Noise NK). Throws HandshakeError on anything forged. */
  onCryptoHandshake(nowMs: number, message: Uint8Array): void {
    const hs = this.handshake
    if (hs === null) throw new ProtocolError(ErrorCode.PROTOCOL_VIOLATION, 'CRYPTO_HANDSHAKE on an unencrypted session')
    if (this.role === 'server') {
      if (this.originalDcid === undefined) return // established long ago: a stale repeat
      const outcome = hs.onMessage1({
        message,
        originalDcid: this.originalDcid,
        clientScid: this.remoteCid,
        serverCid: this.localCid,
        params: this.localParams(),
      })
      if (outcome !== undefined) {
        this.applyPeerParams(outcome.peerParams)
        this.protection = outcome.protection
        this.keysSinceMs = nowMs
        this.keyLog?.(formatKeyLog({ keys: outcome.keys }))
        this.emitTrace(nowMs, 'security:key_updated', { key_type: 'server_1rtt_secret', generation: 0 })
      }
      if (!this.helloAcked) this.helloPending = true
      return
    }
    if (this.state !== 'connecting') return
    const outcome = hs.onMessage2({ message, serverCid: this.remoteCid })
    this.protection = outcome.protection
    this.keysSinceMs = nowMs
    this.keyLog?.(formatKeyLog({ keys: outcome.keys }))
    this.applyPeerParams(outcome.peerParams)
    this.emitTrace(nowMs, 'security:key_updated', { key_type: 'client_1rtt_secret', generation: 0 })
    this.onEstablished(nowMs)
    // Confirm with an ack-eliciting short-header packet, probed until acknowledged.
    this.pingPending = true
  }

  onEstablished(nowMs: number): void {
    if (this.state !== 'connecting') return
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

  ptoDeadlineMs(): number {
    if (this.tracker.ackElicitingInFlight === 0) return Infinity
    const base = this.rtt.probeTimeoutMs(this.config.granularityMs) * this.config.ptoBackoff ** this.ptoCount
    return this.tracker.lastAckElicitingSentMs + Math.min(base, this.config.maxPtoMs)
  }

  persistentCongestionMs(): number {
    return 3 * this.rtt.probeTimeoutMs(this.config.granularityMs)
  }

  /** Run time/packet-threshold loss detection and react to what was lost. */
  detectLosses(nowMs: number): void {
    const { lost, persistentCongestion } = this.tracker.detectLosses(
      nowMs,
      this.rtt.lossDelayMs(this.config.granularityMs),
      this.persistentCongestionMs(),
    )
    if (lost.length === 0) return
    let lostBytes = 0
    let largestLostSentTimeMs = 0
    for (const p of lost) {
      lostBytes += p.sizeBytes
      if (p.sentTimeMs > largestLostSentTimeMs) largestLostSentTimeMs = p.sentTimeMs
      this.stats.packetsLost++
      if (this.trace !== undefined) {
        const trigger = p.packetNumber <= this.tracker.largestAcked - this.config.packetThreshold ? 'reordering_threshold' : 'time_threshold'
        this.emitTrace(nowMs, TraceName.packetLost, { packet_number: p.packetNumber, size: p.sizeBytes, trigger })
      }
      this.requeueRecords(nowMs, p, false)
    }
    this.cc.onLoss(nowMs, {
      lostBytes,
      largestLostSentTimeMs,
      persistentCongestion: persistentCongestion && this.rtt.hasSample,
      bytesInFlight: this.tracker.bytesInFlight,
    })
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

  private onProbeTimeout(nowMs: number): void {
    this.ptoCount++
    this.probesPending = 2
    let requeued = 0
    for (const p of this.tracker.oldestAckEliciting(2)) requeued += this.requeueRecords(nowMs, p, true)
    if (requeued === 0) this.pingPending = true
    if (this.trace !== undefined) this.emitTrace(nowMs, 'recovery:loss_timer_updated', { event_type: 'expired', pto_count: this.ptoCount })
  }

  /** Put back what a lost (or probed) packet carried; returns how many items were requeued. */
  requeueRecords(nowMs: number, p: SentPacket<SentRecord>, isProbe: boolean): number {
    const records = p.records
    if (records === null) return 0
    let n = 0
    for (const r of records) {
      switch (r.kind) {
        case RecordKind.fragment: {
          const msg = r.msg!
          if (msg.state !== MessageState.live || nowMs >= msg.expiresAtMs) break
          const small = msg.fragLength(r.index) <= this.config.duplicateRetransmitMaxBytes && !isProbe
          if (r.stream!.requeue(msg, r.index, small ? 2 : 1)) n++
          break
        }
        case RecordKind.maxData:
          this.maxDataPending = true
          n++
          break
        case RecordKind.maxStreamData:
          if (this.maxStreamDataPending === null) this.maxStreamDataPending = new Set()
          this.maxStreamDataPending.add(r.index)
          n++
          break
        case RecordKind.abandon:
          r.stream!.abandons.push({ seq: r.seq, flowCost: r.cost })
          n++
          break
        case RecordKind.pathChallenge:
          if (this.path !== null && this.path.challenge !== null && r.index === this.path.challengeId) {
            this.path.challengePending = true
            n++
          }
          break
        case RecordKind.hello:
          if (!this.helloAcked) {
            this.helloPending = true
            n++
          }
          break
        default:
          break
      }
    }
    return n
  }

  /** Fragment acknowledged: complete messages are reported and released. */
  onRecordAcked(r: SentRecord): void {
    if (r.kind === RecordKind.hello) {
      this.helloAcked = true
      return
    }
    if (r.kind !== RecordKind.fragment) return
    const msg = r.msg!
    if (msg.state !== MessageState.live || !msg.markAcked(r.index) || !msg.isComplete) return
    msg.state = MessageState.acked
    this.sendBufferBytes -= msg.msgLength
    msg.release()
    r.stream!.pruneLive()
    this.stats.messagesAcked++
    this.pushEvent({ type: 'message_acked', streamId: msg.streamId, seq: msg.seq })
  }

  /** Abandon every live message past its expiry; recompute the next expiry. */
  expireMessages(nowMs: number): void {
    let next = Infinity
    for (const stream of this.sendOrder) {
      if (stream.liveCount === 0) continue
      for (const msg of stream.liveMessages()) {
        if (msg.state !== MessageState.live) continue
        if (msg.expiresAtMs > nowMs) {
          if (msg.expiresAtMs < next) next = msg.expiresAtMs
          continue
        }
        msg.state = MessageState.abandoned
        this.sendBufferBytes -= msg.msgLength
        msg.release()
        this.stats.messagesExpired++
        if (stream.credit !== null) stream.abandons.push({ seq: msg.seq, flowCost: msg.chargedBytes })
        this.pushEvent({ type: 'message_expired', streamId: msg.streamId, seq: msg.seq })
        if (this.trace !== undefined) this.emitTrace(nowMs, TraceName.messageExpired, { stream_id: msg.streamId, seq: msg.seq })
      }
      stream.pruneLive()
    }
    this.nextExpiryMs = next
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

/**
 * Peers almost always send identical transport parameters, so sessions share one frozen
 * object per distinct set (bounded: past 1024 distinct sets, new ones are not cached).
 */
const internedParams = new Map<string, Required<TransportParams>>()
const internPeerParams = (params: TransportParams): Required<TransportParams> => {
  const resolved = resolveTransportParams(params)
  const key = Object.values(resolved).join(',')
  const known = internedParams.get(key)
  if (known !== undefined) return known
  const frozen = Object.freeze(resolved)
  if (internedParams.size < 1024) internedParams.set(key, frozen)
  return frozen
}

/** Path validation (RFC 9000 §8.2): our challenge to a new peer address, and the peer's to us. */
export class PathState {
  /** The challenge we sent (or must send) to a candidate address. */
  challenge: Uint8Array | null = null
  challengePending = false
  /** Which challenge a sent record refers to (a newer one supersedes it). */
  challengeId = 0
  /** The last datagram built carried our challenge. */
  probeInLastPacket = false
  /** PATH_RESPONSE payloads owed to the peer's challenges. */
  responses: Uint8Array[] = []
}

export const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

export const streamKindName = (streamId: number): string => ['ordered', 'unordered', 'realtime', 'reserved'][streamKindOf(streamId)]
