import { ErrorCode, ProtocolError } from '../errors.js'
import { isValidStreamKind } from '../streams/stream-kind.js'
import { TraceName } from '../trace.js'
import type { AckFrame } from '../wire/frames/ack.js'
import { FrameType } from '../wire/frames/frame-type.js'
import { decodeFrame } from '../wire/frames/index.js'
import type { MessageFrame } from '../wire/frames/message.js'
import type { Reader } from '../wire/reader.js'
import { AckUrgency } from '../recovery/ack-tracker.js'
import { onPathResponse, pathState } from './path.js'
import { onCryptoHandshake } from './security.js'
import { detectLosses, onRecordAcked } from './recovery.js'
import type { Session } from './session.js'

/**
 * Process every frame of one authenticated packet. Returns how soon it must be
 * acknowledged (not at all: it carried only ACK, PADDING or CLOSE). Protocol
 * violations throw ProtocolError / DecodeError; the session closes with their code.
 * Every frame handler is idempotent, so a duplicated or very late packet does no harm.
 */
export const handleFrames = (s: Session, nowMs: number, r: Reader): AckUrgency => {
  let ackEliciting = false
  let pinged = false
  while (r.remaining > 0) {
    const f = decodeFrame(r)
    switch (f.type) {
      case FrameType.PADDING:
        break
      case FrameType.PING:
        pinged = true
        break
      case FrameType.ACK:
        onAck(s, nowMs, f)
        break
      case FrameType.CLOSE:
        s.onPeerClose(nowMs, f.errorCode, f.reason)
        return AckUrgency.none
      case FrameType.MAX_DATA:
        ackEliciting = true
        s.sessionSendCredit.update(f.maximum)
        break
      case FrameType.MAX_STREAM_DATA:
        ackEliciting = true
        checkStreamId(s, f.streamId)
        s.sendStream(f.streamId).credit?.update(f.maximum)
        break
      case FrameType.DATA_BLOCKED:
        ackEliciting = true
        if (s.sessionRecvCredit.grantOnBlocked() !== undefined) s.maxDataPending = true
        break
      case FrameType.STREAM_DATA_BLOCKED:
        ackEliciting = true
        checkStreamId(s, f.streamId)
        if (s.recvStream(f.streamId).credit?.grantOnBlocked() !== undefined) {
          if (s.maxStreamDataPending === null) s.maxStreamDataPending = new Set()
          s.maxStreamDataPending.add(f.streamId)
        }
        break
      case FrameType.ABANDON: {
        ackEliciting = true
        checkStreamId(s, f.streamId)
        s.creditCheckDue = true
        const ok = s.recvStream(f.streamId).onAbandon(f.msgSeq, f.flowCost, (seq, data) => s.deliver(nowMs, f.streamId, seq, data))
        if (!ok) throw new ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, `too many abandoned messages on stream ${f.streamId}`)
        break
      }
      case FrameType.HELLO:
        ackEliciting = true
        if (s.handshake !== null) throw new ProtocolError(ErrorCode.PROTOCOL_VIOLATION, 'plaintext HELLO on an encrypted session')
        onHello(s, nowMs, f.params)
        break
      case FrameType.CRYPTO_HANDSHAKE:
        ackEliciting = true
        onCryptoHandshake(s, nowMs, f.message)
        break
      case FrameType.MESSAGE:
        ackEliciting = true
        onMessage(s, nowMs, f)
        break
      case FrameType.PATH_CHALLENGE:
        ackEliciting = true
        if (pathState(s).responses.length < 4) pathState(s).responses.push(f.data.slice())
        break
      case FrameType.PATH_RESPONSE:
        ackEliciting = true
        onPathResponse(s, f.data)
        break
      case FrameType.NEW_TOKEN:
        ackEliciting = true
        break
    }
    if (s.state !== 'connecting' && s.state !== 'established') return urgency(ackEliciting, pinged)
  }
  return urgency(ackEliciting, pinged)
}

/**
 * A packet whose only ack-eliciting frame is PING (a keepalive or a probe) exists to get
 * an ACK back: acknowledge it at once rather than after maxAckDelayMs, since nothing of
 * ours is likely to go out in between for the ACK to ride on. An idle server answers
 * its keepalives in the same turn, without arming a timer for each.
 */
const urgency = (ackEliciting: boolean, pinged: boolean): AckUrgency =>
  ackEliciting ? AckUrgency.delayed : pinged ? AckUrgency.immediate : AckUrgency.none

const checkStreamId = (s: Session, streamId: number): void => {
  if (!isValidStreamKind(streamId)) throw new ProtocolError(ErrorCode.PROTOCOL_VIOLATION, `stream ${streamId} has the reserved kind 3`)
  if (streamId >= s.config.maxStreams) {
    throw new ProtocolError(ErrorCode.STREAM_LIMIT_ERROR, `stream ${streamId} >= limit ${s.config.maxStreams}`)
  }
}

const onHello = (s: Session, nowMs: number, params: Parameters<Session['applyPeerParams']>[0]): void => {
  if (s.role === 'server') {
    if (s.helloAcked || s.state !== 'connecting') return
    s.applyPeerParams(params)
    s.helloPending = true
    return
  }
  if (s.state !== 'connecting') return
  s.applyPeerParams(params)
  s.onEstablished(nowMs)
  // Confirm with an ack-eliciting packet: it is probed until acknowledged, so the
  // server learns the handshake completed even if our bare ACKs are all lost.
  s.pingPending = true
}

const onMessage = (s: Session, nowMs: number, f: MessageFrame): void => {
  if (s.state === 'connecting' && s.role === 'client') {
    throw new ProtocolError(ErrorCode.PROTOCOL_VIOLATION, 'MESSAGE before the handshake completed')
  }
  checkStreamId(s, f.streamId)
  if (f.msgLength > s.config.maxMessageBytes) {
    throw new ProtocolError(ErrorCode.MESSAGE_TOO_LARGE, `message of ${f.msgLength} bytes exceeds our limit ${s.config.maxMessageBytes}`)
  }
  const stream = s.recvStream(f.streamId)
  const outcome = stream.onFragment(
    { seq: f.msgSeq, msgLength: f.msgLength, fragOffset: f.fragOffset, data: f.data },
    (seq, data) => s.deliver(nowMs, f.streamId, seq, data),
  )
  if (outcome === 'flow-control') {
    throw new ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, `peer exceeded flow-control credit on stream ${f.streamId}`)
  }
}

const onAck = (s: Session, nowMs: number, f: AckFrame): void => {
  if (f.largestAcked >= s.nextPacketNumber) {
    throw new ProtocolError(ErrorCode.PROTOCOL_VIOLATION, `ACK of packet ${f.largestAcked} never sent`)
  }
  const { newlyAcked, rttSamplePacket } = s.tracker.onAck(f.ranges)
  s.protection.onPacketAcknowledged?.(f.largestAcked)
  if (newlyAcked.length === 0) return
  // Acknowledging a packet we sent proves the peer receives at this address.
  s.addressValidated = true
  let ackedBytes = 0
  let largestAckedSentTimeMs = 0
  for (const p of newlyAcked) {
    if (p.inFlight) {
      s.rate.onPacketAcked(nowMs, p)
      ackedBytes += p.sizeBytes
    }
    if (p.sentTimeMs > largestAckedSentTimeMs) largestAckedSentTimeMs = p.sentTimeMs
    if (p.largestAckedInAck >= 0) s.ackTracker.onAckAcknowledged(p.largestAckedInAck)
    const records = p.records
    if (records !== null) for (const r of records) onRecordAcked(s, r)
    p.records = null
  }
  if (rttSamplePacket !== undefined && rttSamplePacket.ackEliciting) {
    s.rtt.update(nowMs - rttSamplePacket.sentTimeMs, f.ackDelayMicros / 1000)
  }
  s.ptoCount = 0
  if (s.tracker.ackElicitingInFlight === 0) s.keepAliveProbing = false
  if (s.role === 'server' && s.helloAcked) s.onEstablished(nowMs)
  s.cc.onAck(nowMs, {
    ackedBytes,
    largestAckedSentTimeMs,
    latestRttMs: s.rtt.latestRttMs,
    smoothedRttMs: s.rtt.smoothedRttMs,
    minRttMs: s.rtt.minRttMs,
    bytesInFlight: s.tracker.bytesInFlight,
    rateSample: s.rate.takeSample(nowMs),
  })
  detectLosses(s, nowMs)
  if (s.trace !== undefined) {
    s.emitTrace(nowMs, TraceName.metricsUpdated, {
      smoothed_rtt: s.rtt.smoothedRttMs,
      latest_rtt: s.rtt.latestRttMs,
      min_rtt: s.rtt.minRttMs,
      rtt_variance: s.rtt.rttVarianceMs,
      congestion_window: s.cc.congestionWindowBytes,
      bytes_in_flight: s.tracker.bytesInFlight,
      pto_count: s.ptoCount,
    })
  }
}
