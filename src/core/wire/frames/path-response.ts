/** PATH_RESPONSE (0x19): the 8 bytes of the PATH_CHALLENGE being answered. */
import type { Reader } from '../reader.js'
import type { Writer } from '../writer.js'
import { FrameType } from './frame-type.js'
import { checkPathData, PATH_DATA_LENGTH } from './path-challenge.js'

export interface PathResponseFrame {
  type: typeof FrameType.PATH_RESPONSE
  data: Uint8Array
}

export const encodePathResponse = (w: Writer, f: PathResponseFrame): void => {
  checkPathData(f.data)
  w.u8(FrameType.PATH_RESPONSE)
  w.bytes(f.data)
}

export const pathResponseLength = (_f: PathResponseFrame): number => 1 + PATH_DATA_LENGTH

export const decodePathResponse = (r: Reader): PathResponseFrame => ({
  type: FrameType.PATH_RESPONSE,
  data: r.bytes(PATH_DATA_LENGTH),
})
