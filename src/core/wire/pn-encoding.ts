/**
 * Packet numbers (RFC 9000 §17.1, Appendix A.2/A.3). The full number is a 62-bit
 * counter per packet-number space, never reused; on the wire only its low 1..4 bytes
 * are sent. Arithmetic avoids 32-bit bit operators so it stays exact above 2^32.
 */
import { DecodeError, ErrorCode, UsageError } from '../errors.js'
import { expandTruncated } from '../seq.js'

export type PnLength = 1 | 2 | 3 | 4

/** Largest packet number the wire allows (2^62-1); JS keeps us below 2^53 in practice. */
export const MAX_PACKET_NUMBER = Number.MAX_SAFE_INTEGER

/**
 * Bytes needed to send `fullPn` so the peer can expand it, given the largest packet
 * number the peer has acknowledged (undefined before any ACK). The window must cover
 * twice the number of packets in flight (RFC 9000 A.2).
 */
export const packetNumberLength = (fullPn: number, largestAcked: number | undefined): PnLength => {
  const numUnacked = largestAcked === undefined ? fullPn + 1 : fullPn - largestAcked
  if (!(Number.isSafeInteger(fullPn) && fullPn >= 0) || !(numUnacked > 0)) {
    throw new UsageError(ErrorCode.INTERNAL_ERROR, `bad packet number ${fullPn} (largest acked ${largestAcked})`)
  }
  // Need 2 * numUnacked distinct values: window 2^(8n) > 2 * numUnacked - 1.
  if (numUnacked < 0x80) return 1
  if (numUnacked < 0x8000) return 2
  if (numUnacked < 0x800000) return 3
  if (numUnacked < 0x80000000) return 4
  throw new UsageError(ErrorCode.INTERNAL_ERROR, `too many unacknowledged packets (${numUnacked})`)
}

/** The low `pnLength` bytes of `fullPn`, as the number written on the wire. */
/** 2^(8n) for n = 0..4, so the hot path does no exponentiation. */
const WINDOW = [1, 0x100, 0x10000, 0x1000000, 0x100000000]

export const encodeTruncated = (fullPn: number, pnLength: PnLength): number => fullPn % WINDOW[pnLength]

export interface DecodePacketNumberInput {
  /** The value read from the header. */
  truncated: number
  lengthBytes: PnLength
  /** Largest packet number received so far in this space; undefined or -1 if none. */
  largestReceived: number | undefined
}

/**
 * Expands a truncated packet number to the full value closest to largestReceived + 1
 * (RFC 9000 A.3).
 */
export const decodePacketNumber = ({ truncated, lengthBytes, largestReceived }: DecodePacketNumberInput): number => {
  const expected = largestReceived === undefined ? 0 : largestReceived + 1
  if (!(truncated >= 0 && truncated < WINDOW[lengthBytes])) throw new DecodeError(`truncated packet number ${truncated} out of range`)
  const pn = expandTruncated(truncated, 8 * lengthBytes, expected)
  if (pn > MAX_PACKET_NUMBER) throw new DecodeError('packet number space exhausted', ErrorCode.PROTOCOL_VIOLATION)
  return pn
}
