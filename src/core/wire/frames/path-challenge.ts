/** PATH_CHALLENGE (0x18): 8 bytes of unpredictable data, echoed in PATH_RESPONSE. */
import { ErrorCode, UsageError } from '../../errors.js'
import type { Reader } from '../reader.js'
import type { Writer } from '../writer.js'
import { FrameType } from './frame-type.js'

export const PATH_DATA_LENGTH = 8

export interface PathChallengeFrame {
  type: typeof FrameType.PATH_CHALLENGE
  data: Uint8Array
}

export const checkPathData = (data: Uint8Array): void => {
  if (data.length !== PATH_DATA_LENGTH) {
    throw new UsageError(ErrorCode.INTERNAL_ERROR, `path data must be ${PATH_DATA_LENGTH} bytes, got ${data.length}`)
  }
}

export const encodePathChallenge = (w: Writer, f: PathChallengeFrame): void => {
  checkPathData(f.data)
  w.u8(FrameType.PATH_CHALLENGE)
  w.bytes(f.data)
}

export const pathChallengeLength = (_f: PathChallengeFrame): number => 1 + PATH_DATA_LENGTH

export const decodePathChallenge = (r: Reader): PathChallengeFrame => ({
  type: FrameType.PATH_CHALLENGE,
  data: r.bytes(PATH_DATA_LENGTH),
})
