import type { CongestionControllerName } from '../cc/controller.js'
import { ErrorCode, UsageError } from '../errors.js'
import { MESSAGE_FLOW_OVERHEAD_BYTES } from '../flow-control.js'

/** Tunables of one session. Every field has a default (see DEFAULT_SESSION_CONFIG). */
export interface SessionConfig {
  /** Largest UDP payload we send or accept (the peer's value caps ours). */
  maxDatagramBytes: number
  /** Largest message we accept; advertised to the peer. */
  maxMessageBytes: number
  /** Session-level receive window (flow cost bytes). */
  sessionWindowBytes: number
  /** Per-stream receive window (flow cost bytes); must hold one maximal message. */
  streamWindowBytes: number
  /** Stream ids the peer may use are below this. */
  maxStreams: number
  /** Longest we hold an ACK back for a lone ack-eliciting packet. */
  maxAckDelayMs: number
  /** Ack-eliciting packets that trigger an immediate ACK. */
  ackElicitingThreshold: number
  /** ACK ranges kept and reported at most. */
  maxAckRanges: number
  /** RTT assumed before the first sample. */
  initialRttMs: number
  /** RFC 9002 kPacketThreshold. */
  packetThreshold: number
  /** Timer granularity. */
  granularityMs: number
  /** Probe timeout multiplier per consecutive PTO (KCP uses 1.5 for interactive traffic, TCP 2). */
  ptoBackoff: number
  /** Upper bound of one probe timeout after backoff. */
  maxPtoMs: number
  /** Nothing received for this long while data is outstanding: the link is dead. */
  deadLinkTimeoutMs: number
  /** Nothing received for this long: the session ends silently. Advertised to the peer. */
  idleTimeoutMs: number
  /** Send a PING after this long without sending anything ack-eliciting (0 = never). */
  keepAliveIntervalMs: number
  /**
   * Each keepalive comes up to this fraction of keepAliveIntervalMs early, drawn anew
   * per keepalive from the session's rng (0 = exactly on the interval), so many sessions
   * do not fall into step — e.g. after a server stall answered them all at once.
   */
  keepAliveJitterFraction: number
  /**
   * Floor of the probe timeout while the only ack-eliciting packets in flight are
   * keepalive PINGs (capped by maxPtoMs and by deadLinkTimeoutMs / 8): a lost keepalive
   * is not urgent, and a server that stalls must not be answered with a retransmission
   * storm from every idle client at once. Such probes go out one at a time, not two.
   */
  keepAliveProbeMinMs: number
  congestionController: CongestionControllerName
  /** Bytes of queued-but-unacknowledged messages the application may hold in the session. */
  maxSendBufferBytes: number
  /** Default deadline of realtime-stream messages, from the moment they are sent. */
  realtimeDeadlineMs: number
  /**
   * Lost fragments of at most this many bytes are retransmitted twice (in separate
   * packets): a cheap hedge so a chat message rarely needs a third round trip.
   */
  duplicateRetransmitMaxBytes: number
  /** Pacer burst allowance. */
  pacerBurstPackets: number
  /**
   * After this long with nothing in flight or queued, the session drops its congestion,
   * pacing and sent-packet state (recreated on the next send; 0 = never).
   */
  hibernateAfterMs: number
}

export const DEFAULT_SESSION_CONFIG: Readonly<SessionConfig> = Object.freeze({
  maxDatagramBytes: 1200,
  maxMessageBytes: 1 << 20,
  sessionWindowBytes: 8 << 20,
  streamWindowBytes: 4 << 20,
  maxStreams: 64,
  maxAckDelayMs: 5,
  ackElicitingThreshold: 2,
  maxAckRanges: 32,
  initialRttMs: 250,
  packetThreshold: 3,
  granularityMs: 1,
  ptoBackoff: 1.5,
  maxPtoMs: 5_000,
  deadLinkTimeoutMs: 20_000,
  idleTimeoutMs: 60_000,
  keepAliveIntervalMs: 0,
  keepAliveJitterFraction: 0.1,
  keepAliveProbeMinMs: 1_000,
  congestionController: 'bbr',
  maxSendBufferBytes: 16 << 20,
  realtimeDeadlineMs: 400,
  duplicateRetransmitMaxBytes: 256,
  pacerBurstPackets: 10,
  hibernateAfterMs: 5_000,
})

const positive = (name: keyof SessionConfig, value: number): void => {
  if (!(typeof value === 'number' && value > 0 && Number.isFinite(value))) {
    throw new UsageError(ErrorCode.INTERNAL_ERROR, `session config ${name} must be a positive number, got ${String(value)}`)
  }
}

const resolvedCache = new WeakMap<object, SessionConfig>()
const EMPTY_PARTIAL: Partial<SessionConfig> = {}

/**
 * Fill defaults and reject inconsistent settings with a clear message. The result is
 * frozen and cached per input object, so thousands of sessions created from one
 * endpoint's settings share a single config object.
 */
export const resolveSessionConfig = (partial: Partial<SessionConfig> = EMPTY_PARTIAL): SessionConfig => {
  const cached = resolvedCache.get(partial)
  if (cached !== undefined) return cached
  const resolved = Object.freeze(resolveUncached(partial))
  resolvedCache.set(partial, resolved)
  return resolved
}

const resolveUncached = (partial: Partial<SessionConfig>): SessionConfig => {
  const c: SessionConfig = { ...DEFAULT_SESSION_CONFIG, ...partial }
  for (const name of [
    'maxDatagramBytes', 'maxMessageBytes', 'sessionWindowBytes', 'streamWindowBytes', 'maxStreams', 'maxAckDelayMs',
    'ackElicitingThreshold', 'maxAckRanges', 'initialRttMs', 'packetThreshold', 'granularityMs', 'ptoBackoff',
    'maxPtoMs', 'deadLinkTimeoutMs', 'idleTimeoutMs', 'maxSendBufferBytes', 'realtimeDeadlineMs', 'pacerBurstPackets',
  ] as const) positive(name, c[name])
  if (!(c.keepAliveJitterFraction >= 0 && c.keepAliveJitterFraction < 1)) {
    throw new UsageError(ErrorCode.INTERNAL_ERROR, `keepAliveJitterFraction must be within [0, 1), got ${String(c.keepAliveJitterFraction)}`)
  }
  if (!(c.keepAliveProbeMinMs >= 0 && Number.isFinite(c.keepAliveProbeMinMs))) {
    throw new UsageError(ErrorCode.INTERNAL_ERROR, `keepAliveProbeMinMs must be a non-negative number, got ${String(c.keepAliveProbeMinMs)}`)
  }
  if (c.maxDatagramBytes < 1200 || c.maxDatagramBytes > 65_507) {
    throw new UsageError(ErrorCode.INTERNAL_ERROR, `maxDatagramBytes must be within [1200, 65507], got ${c.maxDatagramBytes}`)
  }
  // Window updates go out once half a window is consumed, so a window must hold two
  // maximal messages or a sender could wait forever for credit for the second one.
  if (c.streamWindowBytes < 2 * (c.maxMessageBytes + MESSAGE_FLOW_OVERHEAD_BYTES)) {
    throw new UsageError(ErrorCode.INTERNAL_ERROR, 'streamWindowBytes must hold at least two maxMessageBytes messages (plus 32 bytes each)')
  }
  if (c.sessionWindowBytes < c.streamWindowBytes) {
    throw new UsageError(ErrorCode.INTERNAL_ERROR, 'sessionWindowBytes must be >= streamWindowBytes')
  }
  return c
}
