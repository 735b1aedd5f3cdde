/** MAX_STREAM_DATA (0x05): streamId varint | maximum varint — per-stream flow credit, cumulative. */
import type { Reader } from '../reader.js'
import { varintLength } from '../varint.js'
import type { Writer } from '../writer.js'
import { FrameType } from './frame-type.js'

export interface MaxStreamDataFrame {
  type: typeof FrameType.MAX_STREAM_DATA
  streamId: number
  maximum: number
}

export const encodeMaxStreamData = (w: Writer, f: MaxStreamDataFrame): void => {
  w.u8(FrameType.MAX_STREAM_DATA)
  w.varint(f.streamId)
  w.varint(f.maximum)
}

export const maxStreamDataLength = (f: MaxStreamDataFrame): number => 1 + varintLength(f.streamId) + varintLength(f.maximum)

export const decodeMaxStreamData = (r: Reader): MaxStreamDataFrame => {
  const streamId = r.varint()
  const maximum = r.varint()
  return { type: FrameType.MAX_STREAM_DATA, streamId, maximum }
}
