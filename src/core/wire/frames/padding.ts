/** PADDING (0x00): one zero byte; a run of N zero bytes is N PADDING frames. */
import type { Reader } from '../reader.js'
import type { Writer } from '../writer.js'
import { FrameType } from './frame-type.js'

export interface PaddingFrame {
  type: typeof FrameType.PADDING
  /** Number of zero bytes (>= 1), type bytes included. */
  length: number
}

export const encodePadding = (w: Writer, f: PaddingFrame): void => {
  w.zeros(f.length)
}

export const paddingLength = (f: PaddingFrame): number => f.length

/** Called after the first 0x00 was read: swallows the rest of the run of zeros. */
export const decodePadding = (r: Reader): PaddingFrame => {
  const b = r.buf
  let o = r.offset
  const start = o - 1
  while (o < r.end && b[o] === 0) o++
  r.offset = o
  return { type: FrameType.PADDING, length: o - start }
}
