import { varintLength } from '../wire/varint.js'
import { shortHeaderLength } from '../wire/packet-header.js'

/** Every path carries datagrams of this size (the smallest maxDatagramBytes allowed). */
export const MIN_DATAGRAM_BYTES = 1200

/** Largest short header (4-byte packet number). */
export const MAX_SHORT_HEADER_BYTES = shortHeaderLength(4)

/**
 * Fragment size for a message, fixed when it is queued so retransmissions reuse the
 * same boundaries: the largest data that fits in an otherwise empty short-header packet
 * with the worst-case frame header.
 */
export const maxChunkBytes = (o: {
  maxDatagramBytes: number
  protectionOverheadBytes: number
  streamId: number
  seq: number
  msgLength: number
}): number => {
  const payloadBudget = o.maxDatagramBytes - o.protectionOverheadBytes - MAX_SHORT_HEADER_BYTES
  const unfragmentedHeader = 1 + varintLength(o.streamId) + varintLength(o.seq) + varintLength(payloadBudget)
  if (o.msgLength + unfragmentedHeader <= payloadBudget) return Math.max(o.msgLength, 1)
  const fragmentHeader = unfragmentedHeader + 2 * varintLength(o.msgLength)
  return payloadBudget - fragmentHeader
}

/** The largest message a session sends: the peer's maxMessageBytes transport parameter, or ours. */
export const sendableMessageBytes = (s: { config: { maxMessageBytes: number }; peerParams: { maxMessageBytes: number } }): number =>
  Math.min(s.config.maxMessageBytes, s.peerParams.maxMessageBytes)
