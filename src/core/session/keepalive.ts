import type { Session } from './session.js'

/*
 * Keepalive: a PING after keepAliveIntervalMs without anything ack-eliciting sent, up to
 * keepAliveJitterFraction of the interval early (a fresh draw from the session's rng each
 * time) so that many sessions do not stay in step. While only keepalive PINGs are in
 * flight (keepAliveProbing) the probe timeout has a floor (see recovery.ts).
 */

/**
 * When the next keepalive PING is due (Infinity: keepalives off, not established, or
 * something ack-eliciting already in flight — its probes keep the link busy enough).
 */
export const keepAliveDeadlineMs = (s: Session): number => {
  const interval = s.config.keepAliveIntervalMs
  if (interval <= 0 || s.state !== 'established' || s.tracker.ackElicitingInFlight > 0) return Infinity
  return s.lastSentAckElicitingMs + interval - s.keepAliveJitterMs
}

export const onKeepAlive = (s: Session): void => {
  s.pingPending = true
  s.keepAliveProbing = true
  drawKeepAliveJitter(s)
}

export const drawKeepAliveJitter = (s: Session): void => {
  const { keepAliveIntervalMs, keepAliveJitterFraction } = s.config
  if (keepAliveIntervalMs > 0 && keepAliveJitterFraction > 0) {
    s.keepAliveJitterMs = Math.floor(s.rng.nextFloat() * keepAliveJitterFraction * keepAliveIntervalMs)
  }
}
