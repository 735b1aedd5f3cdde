/** NEW_TOKEN (0x1a): tokenLength varint | token — a token for a future session (opaque here). */
import { DecodeError, ErrorCode, UsageError } from '../../errors.js'
import type { Reader } from '../reader.js'
import { varintLength } from '../varint.js'
import type { Writer } from '../writer.js'
import { FrameType } from './frame-type.js'

export interface NewTokenFrame {
  type: typeof FrameType.NEW_TOKEN
  token: Uint8Array
}

export const encodeNewToken = (w: Writer, f: NewTokenFrame): void => {
  if (f.token.length === 0) throw new UsageError(ErrorCode.INTERNAL_ERROR, 'NEW_TOKEN token must not be empty')
  w.u8(FrameType.NEW_TOKEN)
  w.varint(f.token.length)
  w.bytes(f.token)
}

export const newTokenLength = (f: NewTokenFrame): number => 1 + varintLength(f.token.length) + f.token.length

export const decodeNewToken = (r: Reader): NewTokenFrame => {
  const n = r.varint()
  if (n === 0) throw new DecodeError('NEW_TOKEN with empty token')
  return { type: FrameType.NEW_TOKEN, token: r.bytes(n) }
}
