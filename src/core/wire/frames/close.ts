/**
 * CLOSE (0x03): errorCode varint | reasonLength varint | reason (UTF-8, <= 1024 bytes).
 * The session ends; error codes are listed in the spec ("Error codes").
 */
import { DecodeError, ErrorCode, UsageError } from '../../errors.js'
import type { Reader } from '../reader.js'
import { varintLength } from '../varint.js'
import type { Writer } from '../writer.js'
import { FrameType } from './frame-type.js'
import { utf8Decode, utf8EncodeInto, utf8Length } from './utf8.js'

export const MAX_CLOSE_REASON_BYTES = 1024

export interface CloseFrame {
  type: typeof FrameType.CLOSE
  errorCode: number
  reason: string
}

export const closeLength = (f: CloseFrame): number => {
  const n = utf8Length(f.reason)
  return 1 + varintLength(f.errorCode) + varintLength(n) + n
}

export const encodeClose = (w: Writer, f: CloseFrame): void => {
  const n = utf8Length(f.reason)
  if (n > MAX_CLOSE_REASON_BYTES) {
    throw new UsageError(ErrorCode.INTERNAL_ERROR, `CLOSE reason is ${n} bytes (max ${MAX_CLOSE_REASON_BYTES})`)
  }
  w.u8(FrameType.CLOSE)
  w.varint(f.errorCode)
  w.varint(n)
  const o = w.reserve(n)
  utf8EncodeInto(f.reason, w.buf.subarray(o, o + n))
}

export const decodeClose = (r: Reader): CloseFrame => {
  const errorCode = r.varint()
  const n = r.varint()
  if (n > MAX_CLOSE_REASON_BYTES) throw new DecodeError(`CLOSE reason of ${n} bytes (max ${MAX_CLOSE_REASON_BYTES})`)
  const reason = utf8Decode(r.bytes(n))
  return { type: FrameType.CLOSE, errorCode, reason }
}
