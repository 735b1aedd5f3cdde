/**
 * Stream ids: the low 2 bits give the stream kind (spec "Stream kinds").
 * Each direction of a stream has its own msgSeq space starting at 0.
 */
import { ErrorCode, ProtocolError } from '../../errors.js'

export const StreamKind = {
  /** Reliable, delivered in msgSeq order. */
  ORDERED: 0,
  /** Reliable, delivered as each message completes. */
  UNORDERED: 1,
  /** Deadline-bound: retransmitted only until its deadline, delivered on arrival, no flow control. */
  REALTIME: 2,
} as const
export type StreamKind = (typeof StreamKind)[keyof typeof StreamKind]

/** Kind of a stream id; kind 3 is reserved -> ProtocolError(PROTOCOL_VIOLATION). */
export const streamKind = (streamId: number): StreamKind => {
  const k = streamId % 4
  if (k === 3) throw new ProtocolError(ErrorCode.PROTOCOL_VIOLATION, `stream ${streamId} uses reserved kind 3`)
  return k as StreamKind
}
