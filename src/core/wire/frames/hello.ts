/** HELLO (0x09): paramsLength varint | transport parameters (TLVs, see transport-params.ts). */
import type { Reader } from '../reader.js'
import { decodeTransportParams, encodeTransportParams, transportParamsLength, type TransportParams } from '../transport-params.js'
import { varintLength } from '../varint.js'
import type { Writer } from '../writer.js'
import { FrameType } from './frame-type.js'

export interface HelloFrame {
  type: typeof FrameType.HELLO
  params: TransportParams
}

export const encodeHello = (w: Writer, f: HelloFrame): void => {
  w.u8(FrameType.HELLO)
  w.varint(transportParamsLength(f.params))
  encodeTransportParams(w, f.params)
}

export const helloLength = (f: HelloFrame): number => {
  const n = transportParamsLength(f.params)
  return 1 + varintLength(n) + n
}

export const decodeHello = (r: Reader): HelloFrame => ({ type: FrameType.HELLO, params: decodeTransportParams(r.bytes(r.varint())) })
