/** STREAM_DATA_BLOCKED (0x07): streamId varint | limit varint — blocked by the stream's limit. */
import type { Reader } from '../reader.js'
import { varintLength } from '../varint.js'
import type { Writer } from '../writer.js'
import { FrameType } from './frame-type.js'

export interface StreamDataBlockedFrame {
  type: typeof FrameType.STREAM_DATA_BLOCKED
  streamId: number
  limit: number
}

export const encodeStreamDataBlocked = (w: Writer, f: StreamDataBlockedFrame): void => {
  w.u8(FrameType.STREAM_DATA_BLOCKED)
  w.varint(f.streamId)
  w.varint(f.limit)
}

export const streamDataBlockedLength = (f: StreamDataBlockedFrame): number => 1 + varintLength(f.streamId) + varintLength(f.limit)

export const decodeStreamDataBlocked = (r: Reader): StreamDataBlockedFrame => {
  const streamId = r.varint()
  const limit = r.varint()
  return { type: FrameType.STREAM_DATA_BLOCKED, streamId, limit }
}
