/** MAX_DATA (0x04): maximum varint — session-level flow credit, cumulative bytes. */
import type { Reader } from '../reader.js'
import { varintLength } from '../varint.js'
import type { Writer } from '../writer.js'
import { FrameType } from './frame-type.js'

export interface MaxDataFrame {
  type: typeof FrameType.MAX_DATA
  maximum: number
}

export const encodeMaxData = (w: Writer, f: MaxDataFrame): void => {
  w.u8(FrameType.MAX_DATA)
  w.varint(f.maximum)
}

export const maxDataLength = (f: MaxDataFrame): number => 1 + varintLength(f.maximum)

export const decodeMaxData = (r: Reader): MaxDataFrame => ({ type: FrameType.MAX_DATA, maximum: r.varint() })
