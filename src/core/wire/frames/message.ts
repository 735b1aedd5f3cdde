/**
 * MESSAGE (0x10..0x13): type = 0x10 | LEN (0x02) | FRAG (0x01).
 *   streamId varint | msgSeq varint | [FRAG: msgLength varint, fragOffset varint] |
 *   [LEN: dataLength varint] | data
 * Without FRAG the frame is the whole message. Without LEN the data runs to the end of
 * the packet payload, so such a frame must be the last one in its packet.
 */
import { DecodeError, ErrorCode, UsageError } from '../../errors.js'
import type { Reader } from '../reader.js'
import { varintLength } from '../varint.js'
import type { Writer } from '../writer.js'
import { FrameType, MESSAGE_FLAG_FRAG, MESSAGE_FLAG_LEN } from './frame-type.js'

export interface MessageFrame {
  type: typeof FrameType.MESSAGE
  streamId: number
  msgSeq: number
  /** Length of the whole message (== data.length for an unfragmented frame). */
  msgLength: number
  /** Offset of `data` inside the message. */
  fragOffset: number
  /** Zero-copy view on the datagram when decoded: copy it to keep it. */
  data: Uint8Array
  /** false = omit the LEN field (frame must be last in its packet). Default true. */
  hasLength?: boolean
}

/** FRAG is needed whenever the frame is not the whole message. */
const isFragment = (f: MessageFrame): boolean => f.fragOffset > 0 || f.data.length < f.msgLength

/** The wire type byte the encoder will use for `f`. */
export const messageWireType = (f: MessageFrame): number =>
  FrameType.MESSAGE | (f.hasLength === false ? 0 : MESSAGE_FLAG_LEN) | (isFragment(f) ? MESSAGE_FLAG_FRAG : 0)

/**
 * Bytes a MESSAGE frame needs besides its data (type, ids, optional fields), so a
 * packet builder can compute how much data fits. Exact for the given values.
 */
export const messageOverhead = (o: {
  streamId: number
  msgSeq: number
  msgLength: number
  fragOffset: number
  dataLength: number
  hasLength?: boolean
}): number => {
  let n = 1 + varintLength(o.streamId) + varintLength(o.msgSeq)
  if (o.fragOffset > 0 || o.dataLength < o.msgLength) n += varintLength(o.msgLength) + varintLength(o.fragOffset)
  if (o.hasLength !== false) n += varintLength(o.dataLength)
  return n
}

export const messageLength = (f: MessageFrame): number => {
  const len = f.data.length
  let n = 1 + varintLength(f.streamId) + varintLength(f.msgSeq) + len
  if (isFragment(f)) n += varintLength(f.msgLength) + varintLength(f.fragOffset)
  if (f.hasLength !== false) n += varintLength(len)
  return n
}

export const encodeMessage = (w: Writer, f: MessageFrame): void => {
  const len = f.data.length
  if (!(f.fragOffset >= 0 && f.fragOffset + len <= f.msgLength)) {
    throw new UsageError(ErrorCode.INTERNAL_ERROR, `MESSAGE fragment [${f.fragOffset}, +${len}) outside message of ${f.msgLength}`)
  }
  const frag = isFragment(f)
  const hasLength = f.hasLength !== false
  w.u8(FrameType.MESSAGE | (hasLength ? MESSAGE_FLAG_LEN : 0) | (frag ? MESSAGE_FLAG_FRAG : 0))
  w.varint(f.streamId)
  w.varint(f.msgSeq)
  if (frag) {
    w.varint(f.msgLength)
    w.varint(f.fragOffset)
  }
  if (hasLength) w.varint(len)
  w.bytes(f.data)
}

/** Called after the type byte: `wireType` is that byte (0x10..0x13). */
export const decodeMessage = (r: Reader, wireType: number): MessageFrame => {
  const streamId = r.varint()
  const msgSeq = r.varint()
  let msgLength = -1
  let fragOffset = 0
  if ((wireType & MESSAGE_FLAG_FRAG) !== 0) {
    msgLength = r.varint()
    fragOffset = r.varint()
  }
  const hasLength = (wireType & MESSAGE_FLAG_LEN) !== 0
  const data = hasLength ? r.bytes(r.varint()) : r.rest()
  if (msgLength < 0) msgLength = data.length
  else if (fragOffset + data.length > msgLength) {
    throw new DecodeError(`MESSAGE fragment [${fragOffset}, +${data.length}) outside message of ${msgLength}`)
  }
  return { type: FrameType.MESSAGE, streamId, msgSeq, msgLength, fragOffset, data, hasLength }
}
