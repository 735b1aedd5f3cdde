/**
 * QUIC variable-length integers (RFC 9000 §16): the two high bits of the first byte give
 * the length (00=1, 01=2, 10=4, 11=8 bytes), the rest is the value in network byte order.
 * JS numbers limit us to safe integers (2^53-1); the wire format itself allows 2^62-1.
 * Encoders always use the shortest form; decoders accept any form (see spec "Conventions").
 */
import { DecodeError, ErrorCode, UsageError } from '../errors.js'

/** Largest value the wire format can carry (2^62-1); not representable exactly in JS. */
export const VARINT_WIRE_MAX = 2 ** 62 - 1
/** Largest value this implementation encodes or decodes. */
export const VARINT_MAX = Number.MAX_SAFE_INTEGER

/** Encoded length (1, 2, 4 or 8) of `v` in the minimal form. Throws UsageError if invalid. */
export const varintLength = (v: number): number => {
  if (v >= 0 && v < 0x40000000 && (v | 0) === v) {
    return v < 0x40 ? 1 : v < 0x4000 ? 2 : 4
  }
  if (Number.isSafeInteger(v) && v >= 0) return 8
  return invalidVarint(v)
}

export const invalidVarint = (v: number): never => {
  throw new UsageError(ErrorCode.INTERNAL_ERROR, `varint out of range: ${v}`)
}

export const varintTooLarge = (): never => {
  throw new DecodeError('varint exceeds 2^53-1')
}
