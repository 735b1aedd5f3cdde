import type { Session } from './session.js'

/*
 * Hibernation: a session with nothing in flight, queued or owed drops its congestion,
 * pacing and sent-packet state; everything is recreated on demand.
 */

/** Nothing in flight, queued or owed: the session can shed its per-flow state. */
export const isQuiescent = (s: Session): boolean => {
  if (s.state !== 'established' || s.tracker.ackElicitingInFlight > 0 || s.ackTracker.ackPending) return false
  if (s.probesPending > 0 || s.pingPending || s.helloPending || (s.events !== null && s.eventHead < s.events.length)) return false
  for (const stream of s.sendOrder) if (stream.hasWork || stream.liveCount > 0) return false
  return true
}

/**
 * Release what an idle session does not need: congestion and pacing state, the record
 * of ACK-only packets, buffers. Everything is recreated on demand. Returns whether it did.
 */
export const hibernate = (s: Session): boolean => {
  if (!isQuiescent(s)) return false
  s.ccState = null
  s.rateState = null
  s.pacerState = null
  s.pacingBlockedUntilMs = 0
  for (const p of s.tracker.drain()) p.records = null
  // Everything received was acknowledged and confirmed (quiescent): keep only the largest.
  s.ackTracker.received.clear()
  s.events = null
  s.eventHead = 0
  for (const stream of s.sendOrder) stream.compact()
  if (s.role === 'server') {
    s.originalDcid = undefined
    // Confirmed (the client's short-header packets were acknowledged): message 2 will not be resent.
    s.handshake?.release()
  }
  return true
}

/** When a quiet session sheds its per-flow state (Infinity: not now). */
export const hibernateDeadlineMs = (s: Session): number => {
  const after = s.config.hibernateAfterMs
  if (after <= 0 || isHibernated(s) || !isQuiescent(s)) return Infinity
  return Math.max(s.lastReceivedMs, s.lastSentMs) + after
}

export const isHibernated = (s: Session): boolean => {
  return s.ccState === null && s.rateState === null && s.pacerState === null && s.tracker.outstandingCount === 0
}

/**
 * A hibernated session that only answered (the ACK of a keepalive: nothing in flight,
 * nothing owed) goes straight back to sleep rather than hibernateAfterMs later: no timer
 * per keepalive, and nothing built for the answer lives long enough to reach the heap's
 * old generation, where 100,000 idle sessions made major GC the largest idle cost.
 * Returns `datagram`, what the session built while hibernated.
 */
export const answerWhileHibernated = (s: Session, datagram: Uint8Array | undefined): Uint8Array | undefined => {
  if (datagram !== undefined) hibernate(s)
  return datagram
}
