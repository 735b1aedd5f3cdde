/** DATA_BLOCKED (0x06): limit varint — the sender has data but hit the session limit. */
import type { Reader } from '../reader.js'
import { varintLength } from '../varint.js'
import type { Writer } from '../writer.js'
import { FrameType } from './frame-type.js'

export interface DataBlockedFrame {
  type: typeof FrameType.DATA_BLOCKED
  limit: number
}

export const encodeDataBlocked = (w: Writer, f: DataBlockedFrame): void => {
  w.u8(FrameType.DATA_BLOCKED)
  w.varint(f.limit)
}

export const dataBlockedLength = (f: DataBlockedFrame): number => 1 + varintLength(f.limit)

export const decodeDataBlocked = (r: Reader): DataBlockedFrame => ({ type: FrameType.DATA_BLOCKED, limit: r.varint() })
