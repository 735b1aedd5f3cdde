/** PING (0x01): no fields; elicits an ACK (keepalive, probes, RTT samples). */
import type { Reader } from '../reader.js'
import type { Writer } from '../writer.js'
import { FrameType } from './frame-type.js'

export interface PingFrame {
  type: typeof FrameType.PING
}

const PING: PingFrame = Object.freeze({ type: FrameType.PING })

export const encodePing = (w: Writer, _f: PingFrame): void => {
  w.u8(FrameType.PING)
}

export const pingLength = (_f: PingFrame): number => 1

/** Returns a shared frozen object: PING has no fields. */
export const decodePing = (_r: Reader): PingFrame => PING
