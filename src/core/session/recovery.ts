import { MessageState } from '../streams/outbound-message.js'
import type { SentPacket } from '../recovery/sent-packets.js'
import { TraceName } from '../trace.js'
import { RecordKind, type SentRecord } from './sent-record.js'
import type { Session } from './session.js'

/*
 * The session's reaction to its packets' fate: probe timeouts, losses, acknowledged
 * and expired messages. Functions over the Session, like receive.ts and assemble.ts.
 */

export const ptoDeadlineMs = (s: Session): number => {
  if (s.tracker.ackElicitingInFlight === 0) return Infinity
  let pto = s.rtt.probeTimeoutMs(s.config.granularityMs)
  if (s.keepAliveProbing) pto = Math.max(pto, keepAliveProbeFloorMs(s))
  return s.tracker.lastAckElicitingSentMs + Math.min(pto * s.config.ptoBackoff ** s.ptoCount, s.config.maxPtoMs)
}

/** Smallest probe timeout for keepalive-only flight: leaves room for several probes before the dead-link timeout. */
export const keepAliveProbeFloorMs = (s: Session): number => Math.min(s.config.keepAliveProbeMinMs, s.config.deadLinkTimeoutMs / 8)

export const persistentCongestionMs = (s: Session): number => {
  return 3 * s.rtt.probeTimeoutMs(s.config.granularityMs)
}

/** Run time/packet-threshold loss detection and react to what was lost. */
export const detectLosses = (s: Session, nowMs: number): void => {
  const { lost, persistentCongestion } = s.tracker.detectLosses(
    nowMs,
    s.rtt.lossDelayMs(s.config.granularityMs),
    persistentCongestionMs(s),
  )
  if (lost.length === 0) return
  let lostBytes = 0
  let largestLostSentTimeMs = 0
  for (const p of lost) {
    lostBytes += p.sizeBytes
    if (p.sentTimeMs > largestLostSentTimeMs) largestLostSentTimeMs = p.sentTimeMs
    s.stats.packetsLost++
    if (s.trace !== undefined) {
      const trigger = p.packetNumber <= s.tracker.largestAcked - s.config.packetThreshold ? 'reordering_threshold' : 'time_threshold'
      s.emitTrace(nowMs, TraceName.packetLost, { packet_number: p.packetNumber, size: p.sizeBytes, trigger })
    }
    requeueRecords(s, nowMs, p, false)
  }
  s.cc.onLoss(nowMs, {
    lostBytes,
    largestLostSentTimeMs,
    persistentCongestion: persistentCongestion && s.rtt.hasSample,
    bytesInFlight: s.tracker.bytesInFlight,
  })
}

export const onProbeTimeout = (s: Session, nowMs: number): void => {
  s.ptoCount++
  // A lost keepalive is not urgent: one probe at a time, not the usual two.
  s.probesPending = s.keepAliveProbing ? 1 : 2
  let requeued = 0
  for (const p of s.tracker.oldestAckEliciting(2)) requeued += requeueRecords(s, nowMs, p, true)
  if (requeued === 0) s.pingPending = true
  if (s.trace !== undefined) s.emitTrace(nowMs, 'recovery:loss_timer_updated', { event_type: 'expired', pto_count: s.ptoCount })
}

/** Put back what a lost (or probed) packet carried; returns how many items were requeued. */
export const requeueRecords = (s: Session, nowMs: number, p: SentPacket<SentRecord>, isProbe: boolean): number => {
  const records = p.records
  if (records === null) return 0
  let n = 0
  for (const r of records) {
    switch (r.kind) {
      case RecordKind.fragment: {
        const msg = r.msg!
        if (msg.state !== MessageState.live || nowMs >= msg.expiresAtMs) break
        const small = msg.fragLength(r.index) <= s.config.duplicateRetransmitMaxBytes && !isProbe
        if (r.stream!.requeue(msg, r.index, small ? 2 : 1)) n++
        break
      }
      case RecordKind.maxData:
        s.maxDataPending = true
        n++
        break
      case RecordKind.maxStreamData:
        if (s.maxStreamDataPending === null) s.maxStreamDataPending = new Set()
        s.maxStreamDataPending.add(r.index)
        n++
        break
      case RecordKind.abandon:
        r.stream!.abandons.push({ seq: r.seq, flowCost: r.cost })
        n++
        break
      case RecordKind.pathChallenge:
        if (s.path !== null && s.path.challenge !== null && r.index === s.path.challengeId) {
          s.path.challengePending = true
          n++
        }
        break
      case RecordKind.hello:
        if (!s.helloAcked) {
          s.helloPending = true
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
export const onRecordAcked = (s: Session, r: SentRecord): void => {
  if (r.kind === RecordKind.hello) {
    s.helloAcked = true
    return
  }
  if (r.kind !== RecordKind.fragment) return
  const msg = r.msg!
  if (msg.state !== MessageState.live || !msg.markAcked(r.index) || !msg.isComplete) return
  msg.state = MessageState.acked
  s.sendBufferBytes -= msg.msgLength
  msg.release()
  r.stream!.pruneLive()
  s.stats.messagesAcked++
  s.pushEvent({ type: 'message_acked', streamId: msg.streamId, seq: msg.seq })
}

/** Abandon every live message past its expiry; recompute the next expiry. */
export const expireMessages = (s: Session, nowMs: number): void => {
  let next = Infinity
  for (const stream of s.sendOrder) {
    if (stream.liveCount === 0) continue
    for (const msg of stream.liveMessages()) {
      if (msg.state !== MessageState.live) continue
      if (msg.expiresAtMs > nowMs) {
        if (msg.expiresAtMs < next) next = msg.expiresAtMs
        continue
      }
      msg.state = MessageState.abandoned
      s.sendBufferBytes -= msg.msgLength
      msg.release()
      s.stats.messagesExpired++
      if (stream.credit !== null) stream.abandons.push({ seq: msg.seq, flowCost: msg.chargedBytes })
      s.pushEvent({ type: 'message_expired', streamId: msg.streamId, seq: msg.seq })
      if (s.trace !== undefined) s.emitTrace(nowMs, TraceName.messageExpired, { stream_id: msg.streamId, seq: msg.seq })
    }
    stream.pruneLive()
  }
  s.nextExpiryMs = next
}
