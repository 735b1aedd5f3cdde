import { copyToDatagram } from '../datagram-pool.js'
import { awaitingKeysProtection } from '../protection.js'
import { SentPacket } from '../recovery/sent-packets.js'
import { MessageState } from '../streams/outbound-message.js'
import type { OutboundMessage } from '../streams/outbound-message.js'
import { TraceName } from '../trace.js'
import { ackFrameLimitedRanges, encodeAck, type AckFrame } from '../wire/frames/ack.js'
import { encodeAbandon, abandonLength } from '../wire/frames/abandon.js'
import { closeLength, encodeClose } from '../wire/frames/close.js'
import { dataBlockedLength, encodeDataBlocked } from '../wire/frames/data-blocked.js'
import { FrameType } from '../wire/frames/frame-type.js'
import { cryptoHandshakeLength, encodeCryptoHandshake } from '../wire/frames/crypto-handshake.js'
import { encodeHello, helloLength } from '../wire/frames/hello.js'
import { encodeMaxData, maxDataLength } from '../wire/frames/max-data.js'
import { encodeMaxStreamData, maxStreamDataLength } from '../wire/frames/max-stream-data.js'
import { encodeMessage, messageOverhead, type MessageFrame } from '../wire/frames/message.js'
import { encodePathChallenge } from '../wire/frames/path-challenge.js'
import { encodePathResponse } from '../wire/frames/path-response.js'
import { encodeLongHeader, encodeShortHeader, longHeaderLength, shortHeaderLength } from '../wire/packet-header.js'
import { encodeTruncated, packetNumberLength } from '../wire/pn-encoding.js'
import { Writer } from '../wire/writer.js'
import { RecordKind, SentRecord } from './sent-record.js'
import { sameBytes } from '../bytes.js'
import type { Session } from './session.js'

/**
 * One scratch buffer for building packets, shared by every session: packets are built
 * synchronously and copied out, so an idle session holds no send buffer at all.
 */
const scratch = new Writer(65_536)
/** Writes the header at the start of the same buffer once the payload is known. */
const headerScratch = new Writer(scratch.buf, 0)
/** Reused argument object for PacketProtection.seal. */
const sealArgs = { start: 0, payloadStart: 0, payloadEnd: 0, packetNumber: 0 }

/** Clients pad their Initial datagrams so a server never amplifies (QUIC: 1200 bytes). */
export const MIN_INITIAL_DATAGRAM_BYTES = 1200

/** Reused frame object for MESSAGE encoding (the hot path allocates no frame objects). */
const scratchMessage: MessageFrame = {
  type: FrameType.MESSAGE,
  streamId: 0,
  msgSeq: 0,
  msgLength: 0,
  fragOffset: 0,
  data: new Uint8Array(0),
}

/**
 * Build the next datagram: ACK first, then control frames, then stream data by
 * priority (retransmissions before new data), within the congestion window, the
 * pacer and the peer's flow-control credit. Returns undefined when nothing is due.
 */
export const buildPacket = (s: Session, nowMs: number): Uint8Array | undefined => {
  if (s.state === 'closing') return buildClosePacket(s, nowMs)
  const isLong = s.state === 'connecting'
  const budget = s.amplificationBudgetBytes()
  // Too little budget for a useful packet: wait until the client sends more or validates.
  if (budget < 64) return undefined
  const maxBytes = Math.min(isLong ? s.config.maxDatagramBytes : s.maxDatagramBytes, budget)
  const packetNumber = s.nextPacketNumber
  const pnLength = packetNumberLength(packetNumber, s.tracker.largestAcked >= 0 ? s.tracker.largestAcked : undefined)
  const truncatedPn = encodeTruncated(packetNumber, pnLength)
  const longFields = isLong
    ? {
        type: 'initial' as const,
        dcid: s.remoteCid,
        scid: s.localCid,
        token: s.retryToken ?? undefined,
        truncatedPn,
        pnLength,
        payloadLength: 0,
        lengthFieldBytes: 2 as const,
      }
    : undefined
  const headerBytes = longFields !== undefined ? longHeaderLength(longFields) : shortHeaderLength(pnLength)
  const protection = isLong ? s.initialProtection : s.protection
  const end = maxBytes - protection.overheadBytes
  const w = scratch
  w.reset()
  w.offset = headerBytes

  // What may go out now. The congestion controller is only consulted when there is data
  // to send, so a hibernated session answering a keepalive does not recreate it.
  const probing = s.probesPending > 0
  const streamWork = s.state === 'established' && anyStreamWork(s)
  let mayCarryData = false
  let cwndFull = false
  let pacedUntil = 0
  if (streamWork || probing) {
    cwndFull = s.tracker.bytesInFlight + maxBytes > s.cc.congestionWindowBytes
    mayCarryData = (!cwndFull || probing) && s.state === 'established'
    if (mayCarryData && !probing) {
      const t = s.pacer.earliestSendTimeMs(nowMs, maxBytes, s.cc.pacingRateBytesPerMs(s.rtt.smoothedRttMs))
      if (t > nowMs) {
        pacedUntil = t
        mayCarryData = false
      }
    }
  }
  const hasStreamWork = mayCarryData && streamWork
  const hasControl = hasControlWork(s)
  const ackDue = s.ackTracker.ackDue(nowMs)
  if (!hasStreamWork && !hasControl && !ackDue) {
    s.pacingBlockedUntilMs = pacedUntil
    const cc = s.existingCc()
    if (!streamWork && cc !== null && s.state === 'established' && s.tracker.bytesInFlight < cc.congestionWindowBytes) {
      s.rate.onAppLimited(s.tracker.bytesInFlight)
      cc.onAppLimited?.(nowMs, s.tracker.bytesInFlight)
    }
    return undefined
  }
  s.pacingBlockedUntilMs = 0

  let records: SentRecord[] | null = null
  const addRecord = (r: SentRecord): void => {
    if (records === null) records = [r]
    else records.push(r)
  }
  let ackEliciting = false
  let largestAckedInAck = -1

  // 1. ACK (limited to what fits, newest ranges first).
  if (s.ackTracker.ackPending) {
    const ranges = s.ackTracker.received.descendingInclusive(s.config.maxAckRanges)
    if (ranges.length > 0) {
      const full: AckFrame = {
        type: FrameType.ACK,
        largestAcked: ranges[0].largest,
        ackDelayMicros: s.ackTracker.ackDelayMicros(nowMs),
        ranges,
      }
      const frame = ackFrameLimitedRanges(full, Math.min(end - w.offset, 256))
      if (frame !== undefined) {
        encodeAck(w, frame)
        largestAckedInAck = frame.largestAcked
        s.ackTracker.onAckSent()
      }
    } else {
      // Everything received was already acknowledged and confirmed: nothing to report.
      s.ackTracker.onAckSent()
    }
  }

  // 2. Control frames.
  if (s.helloPending) {
    const message = s.handshake?.outgoing
    if (message !== undefined && message !== null) {
      const frame = { type: FrameType.CRYPTO_HANDSHAKE, message } as const
      if (end - w.offset >= cryptoHandshakeLength(frame)) {
        encodeCryptoHandshake(w, frame)
        s.helloPending = false
        ackEliciting = true
        addRecord(new SentRecord(RecordKind.hello))
      }
    } else if (s.handshake === null && end - w.offset >= helloLength({ type: FrameType.HELLO, params: s.localParams() })) {
      encodeHello(w, { type: FrameType.HELLO, params: s.localParams() })
      s.helloPending = false
      ackEliciting = true
      addRecord(new SentRecord(RecordKind.hello))
    }
  }
  const path = s.path
  if (path !== null) {
    path.probeInLastPacket = false
    if (path.challengePending && path.challenge !== null && end - w.offset >= 9) {
      encodePathChallenge(w, { type: FrameType.PATH_CHALLENGE, data: path.challenge })
      path.challengePending = false
      path.probeInLastPacket = true
      ackEliciting = true
      addRecord(new SentRecord(RecordKind.pathChallenge, null, null, path.challengeId))
    }
    while (path.responses.length > 0 && end - w.offset >= 9) {
      encodePathResponse(w, { type: FrameType.PATH_RESPONSE, data: path.responses.shift()! })
      ackEliciting = true
    }
  }
  if (s.state === 'established') ackEliciting = writeFlowControl(s, w, end, addRecord) || ackEliciting

  // 3. Stream data.
  if (hasStreamWork) {
    const wrote = writeStreamData(s, w, end, addRecord)
    if (wrote) ackEliciting = true
  }
  if (!ackEliciting && (s.pingPending || s.probesPending > 0) && end - w.offset >= 1) {
    w.u8(FrameType.PING)
    ackEliciting = true
  }
  if (ackEliciting) s.pingPending = false
  if (w.offset === headerBytes) return undefined

  // Pad client Initials (anti-amplification) and make every packet long enough to parse.
  if (isLong && s.role === 'client') {
    while (w.offset < end) w.u8(FrameType.PADDING)
  }
  const payloadEnd = w.offset
  const header = headerScratch
  header.reset()
  if (longFields !== undefined) {
    longFields.payloadLength = payloadEnd - headerBytes + protection.overheadBytes
    encodeLongHeader(header, longFields)
  } else {
    encodeShortHeader(header, { dcid: s.remoteCid, truncatedPn, pnLength, keyPhase: 0 })
  }
  sealArgs.payloadStart = headerBytes
  sealArgs.payloadEnd = payloadEnd
  sealArgs.packetNumber = packetNumber
  const packetEnd = protection.seal(w.buf, sealArgs)
  const datagram = copyToDatagram(w.buf, 0, packetEnd)

  // Bookkeeping.
  s.nextPacketNumber++
  const packet = new SentPacket<SentRecord>({
    packetNumber,
    sentTimeMs: nowMs,
    sizeBytes: datagram.length,
    ackEliciting,
    inFlight: ackEliciting,
    records,
    largestAckedInAck,
  })
  if (ackEliciting) {
    s.rate.onPacketSent(nowMs, s.tracker.bytesInFlight, packet)
    s.lastSentAckElicitingMs = nowMs
    // Data or control frames in flight: probes are urgent again.
    if (records !== null) s.keepAliveProbing = false
  }
  s.tracker.onPacketSent(packet)
  if (ackEliciting) {
    s.cc.onPacketSent(nowMs, packet, s.tracker.bytesInFlight)
    s.pacer.onPacketSent(nowMs, datagram.length, s.cc.pacingRateBytesPerMs(s.rtt.smoothedRttMs))
    if (s.probesPending > 0) {
      s.probesPending--
      s.stats.probesSent++
      // Before the server holds any state a bare PING is useless: every probe repeats the HELLO.
      if (s.probesPending > 0 && s.role === 'client' && s.state === 'connecting' && !s.helloAcked) s.helloPending = true
    }
  }
  s.stats.packetsSent++
  s.stats.bytesSent += datagram.length
  if (!s.addressValidated) s.unvalidatedCreditBytes -= datagram.length
  s.lastSentMs = nowMs
  if (s.trace !== undefined) {
    s.emitTrace(nowMs, TraceName.packetSent, {
      packet_number: packetNumber,
      header: isLong ? 'initial' : 'short',
      size: datagram.length,
      ack_eliciting: ackEliciting,
      frames: records === null ? 0 : (records as SentRecord[]).length,
    })
  }
  return datagram
}

const anyStreamWork = (s: Session): boolean => {
  for (const stream of s.sendOrder) if (stream.hasWork) return true
  return false
}

const hasControlWork = (s: Session): boolean =>
  s.helloPending ||
  s.pingPending ||
  s.probesPending > 0 ||
  (s.path !== null && (s.path.responses.length > 0 || s.path.challengePending)) ||
  (s.state === 'established' &&
    (s.maxDataPending || s.dataBlockedPending || s.maxStreamDataPending !== null || (s.creditCheckDue && creditDue(s))))

/** Receive windows that should be advertised again (clears the check flag when none). */
const creditDue = (s: Session): boolean => {
  if (s.sessionRecvCredit.nextGrant() !== undefined) return true
  if (s.recvStreams !== null) for (const r of s.recvStreams.values()) if (r.credit?.nextGrant() !== undefined) return true
  s.creditCheckDue = false
  return false
}

/** MAX_DATA, MAX_STREAM_DATA, DATA_BLOCKED and ABANDON frames. Returns whether any was written. */
const writeFlowControl = (s: Session, w: Writer, end: number, addRecord: (r: SentRecord) => void): boolean => {
  let wrote = false
  const grant = s.sessionRecvCredit.nextGrant()
  if (grant !== undefined || s.maxDataPending) {
    const credit = s.sessionRecvCredit
    const maximum = grant ?? Math.max(credit.maxGrantedBytes, credit.consumedBytes + credit.windowBytes)
    if (end - w.offset >= maxDataLength({ type: FrameType.MAX_DATA, maximum })) {
      encodeMaxData(w, { type: FrameType.MAX_DATA, maximum })
      s.sessionRecvCredit.markGranted(maximum)
      s.maxDataPending = false
      addRecord(new SentRecord(RecordKind.maxData))
      wrote = true
    }
  }
  if (s.recvStreams !== null) {
    for (const r of s.recvStreams.values()) {
      const credit = r.credit
      if (credit === null) continue
      const streamGrant = credit.nextGrant()
      const repeat = s.maxStreamDataPending?.has(r.id) ?? false
      if (streamGrant === undefined && !repeat) continue
      const maximum = streamGrant ?? Math.max(credit.maxGrantedBytes, credit.consumedBytes + credit.windowBytes)
      const frame = { type: FrameType.MAX_STREAM_DATA, streamId: r.id, maximum } as const
      if (end - w.offset < maxStreamDataLength(frame)) break
      encodeMaxStreamData(w, frame)
      credit.markGranted(maximum)
      s.maxStreamDataPending?.delete(r.id)
      addRecord(new SentRecord(RecordKind.maxStreamData, null, null, r.id))
      wrote = true
    }
  }
  if (s.maxStreamDataPending !== null && s.maxStreamDataPending.size === 0) s.maxStreamDataPending = null
  if (s.dataBlockedPending && end - w.offset >= dataBlockedLength({ type: FrameType.DATA_BLOCKED, limit: s.sessionSendCredit.maxBytes })) {
    encodeDataBlocked(w, { type: FrameType.DATA_BLOCKED, limit: s.sessionSendCredit.maxBytes })
    s.dataBlockedPending = false
    wrote = true
  }
  for (const stream of s.sendOrder) {
    while (stream.abandons.length > 0) {
      const a = stream.abandons[0]
      const frame = { type: FrameType.ABANDON, streamId: stream.id, msgSeq: a.seq, flowCost: a.flowCost } as const
      if (end - w.offset < abandonLength(frame)) return wrote
      encodeAbandon(w, frame)
      stream.abandons.shift()
      addRecord(new SentRecord(RecordKind.abandon, stream, null, 0, a.seq, a.flowCost))
      wrote = true
    }
  }
  return wrote
}

/** Fill the rest of the packet with message fragments. Returns whether any was written. */
const writeStreamData = (s: Session, w: Writer, end: number, addRecord: (r: SentRecord) => void): boolean => {
  let wrote = false
  // Messages already in this packet: a hedged second copy must go in another packet.
  let inPacket: OutboundMessage | OutboundMessage[] | null = null
  for (const stream of s.sendOrder) {
    for (;;) {
      const choice = stream.peek(s.sessionSendCredit.available())
      if (choice === undefined) {
        if (stream.queuedFirstSends > 0 && !stream.blockedOnStreamCredit()) noteSessionBlocked(s)
        break
      }
      const msg = choice.msg
      if (choice.isRetransmission && msg.state === MessageState.live && contains(inPacket, msg)) return wrote
      const data = msg.fragData(choice.frag)
      const overhead = messageOverhead({
        streamId: stream.id,
        msgSeq: msg.seq,
        msgLength: msg.msgLength,
        fragOffset: msg.fragOffset(choice.frag),
        dataLength: data.length,
      })
      if (overhead + data.length > end - w.offset) return wrote
      scratchMessage.streamId = stream.id
      scratchMessage.msgSeq = msg.seq
      scratchMessage.msgLength = msg.msgLength
      scratchMessage.fragOffset = msg.fragOffset(choice.frag)
      scratchMessage.data = data
      encodeMessage(w, scratchMessage)
      const cost = stream.commit(choice)
      s.sessionSendCredit.chargedBytes += cost
      if (choice.isRetransmission) s.stats.fragmentsRetransmitted++
      addRecord(new SentRecord(RecordKind.fragment, stream, msg, choice.frag))
      inPacket = inPacket === null ? msg : Array.isArray(inPacket) ? (inPacket.push(msg), inPacket) : [inPacket, msg]
      wrote = true
      if (end - w.offset < 8) break
    }
    if (end - w.offset < 8) break
  }
  scratchMessage.data = EMPTY
  return wrote
}

const EMPTY = new Uint8Array(0)

const contains = (set: OutboundMessage | OutboundMessage[] | null, msg: OutboundMessage): boolean =>
  set === null ? false : Array.isArray(set) ? set.includes(msg) : set === msg

/** Remember to tell the peer we are blocked by its session credit (once per limit). */
const noteSessionBlocked = (s: Session): void => {
  const credit = s.sessionSendCredit
  if (credit.available() <= 0 && credit.blockedReportedAt !== credit.maxBytes) {
    credit.blockedReportedAt = credit.maxBytes
    s.dataBlockedPending = true
  }
}

/** In the closing state: one CLOSE frame, answered again if the peer keeps sending. */
const buildClosePacket = (s: Session, nowMs: number): Uint8Array | undefined => {
  if (!s.closeSendPending || s.closeFrame === null) return undefined
  s.closeSendPending = false
  const frame = { type: FrameType.CLOSE, errorCode: s.closeFrame.errorCode, reason: s.closeFrame.reason.slice(0, 512) } as const
  const packetNumber = s.nextPacketNumber++
  const pnLength = 4
  const w = scratch
  w.reset()
  // A client that never learnt the server's CID still speaks in Initial packets.
  // Without short-header keys (an encrypted handshake not finished) CLOSE goes in an Initial.
  const isLong =
    (s.role === 'client' && s.originalDcid !== undefined && sameBytes(s.remoteCid, s.originalDcid)) ||
    s.protection === awaitingKeysProtection
  const protection = isLong ? s.initialProtection : s.protection
  const fields = {
    type: 'initial' as const,
    dcid: s.remoteCid,
    scid: s.localCid,
    truncatedPn: encodeTruncated(packetNumber, pnLength),
    pnLength: pnLength as 4,
    payloadLength: closeLength(frame) + protection.overheadBytes,
  }
  if (isLong) encodeLongHeader(w, fields)
  else encodeShortHeader(w, { dcid: s.remoteCid, truncatedPn: fields.truncatedPn, pnLength, keyPhase: 0 })
  const payloadStart = w.offset
  encodeClose(w, frame)
  const packetEnd = protection.seal(w.buf, { start: 0, payloadStart, payloadEnd: w.offset, packetNumber })
  if (packetEnd > s.amplificationBudgetBytes()) return undefined // never amplify, even to say goodbye
  s.stats.packetsSent++
  s.stats.bytesSent += packetEnd
  if (!s.addressValidated) s.unvalidatedCreditBytes -= packetEnd
  s.emitTrace(nowMs, TraceName.packetSent, { packet_number: packetNumber, size: packetEnd, frames: 'close' })
  return w.buf.slice(0, packetEnd)
}
