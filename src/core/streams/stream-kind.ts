/**
 * Stream ids carry their delivery rules in the low two bits (protocol-spec "Stream kinds").
 * Both directions of a stream use the same id and have independent message sequences.
 */
export const StreamKind = {
  /** Reliable, delivered in send order (chat). */
  ordered: 0,
  /** Reliable, delivered as each message completes (media chunks). */
  unordered: 1,
  /** Deadline-bound: retransmitted only while it can still arrive in time, delivered on arrival (voice). */
  realtime: 2,
} as const
export type StreamKind = (typeof StreamKind)[keyof typeof StreamKind]

export const streamKindOf = (streamId: number): number => streamId % 4

export const isValidStreamKind = (streamId: number): boolean => streamId % 4 !== 3

export const isFlowControlled = (streamId: number): boolean => (streamId & 0x3) !== StreamKind.realtime

/** Default scheduling priority (lower sends first): voice, then chat, then media. */
export const defaultPriorityOf = (streamId: number): number => {
  const kind = streamId & 0x3
  return kind === StreamKind.realtime ? 0 : kind === StreamKind.ordered ? 1 : 2
}

/** Build a stream id from an index and a kind: index 0 of kind ordered is stream 0. */
export const makeStreamId = (index: number, kind: StreamKind): number => index * 4 + kind
