/**
 * ABANDON (0x08): streamId varint | msgSeq varint | flowCost varint.
 * The sender gave up on a message (expired or cancelled); the receiver skips msgSeq
 * and counts flowCost bytes as consumed for flow control.
 */
import type { Reader } from '../reader.js'
import { varintLength } from '../varint.js'
import type { Writer } from '../writer.js'
import { FrameType } from './frame-type.js'

export interface AbandonFrame {
  type: typeof FrameType.ABANDON
  streamId: number
  msgSeq: number
  flowCost: number
}

export const encodeAbandon = (w: Writer, f: AbandonFrame): void => {
  w.u8(FrameType.ABANDON)
  w.varint(f.streamId)
  w.varint(f.msgSeq)
  w.varint(f.flowCost)
}

export const abandonLength = (f: AbandonFrame): number =>
  1 + varintLength(f.streamId) + varintLength(f.msgSeq) + varintLength(f.flowCost)

export const decodeAbandon = (r: Reader): AbandonFrame => {
  const streamId = r.varint()
  const msgSeq = r.varint()
  const flowCost = r.varint()
  return { type: FrameType.ABANDON, streamId, msgSeq, flowCost }
}
