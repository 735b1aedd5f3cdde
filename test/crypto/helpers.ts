/** Shared helpers for the crypto tests. */
import type { Rng } from '../../src/core/rng.js'
import { CID_LENGTH, encodeShortHeader } from '../../src/core/wire/packet-header.js'
import { encodeTruncated, type PnLength } from '../../src/core/wire/pn-encoding.js'
import { Writer } from '../../src/core/wire/writer.js'

export { fcParams, hex, unhex } from '../wire/helpers.js'

/** An Rng whose fillBytes hands out `bytes` (then zeros): to inject fixed ephemeral keys. */
export const fixedBytesRng = (...chunks: Uint8Array[]): Rng => {
  const queue = [...chunks]
  return {
    nextU32: () => 0,
    nextFloat: () => 0,
    fillBytes: (out) => {
      out.fill(0)
      const next = queue.shift()
      if (next !== undefined) out.set(next.subarray(0, out.length))
    },
  }
}

export const DCID = new Uint8Array([0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08])

/**
 * A short-header packet as the session builds it, with room for the tag: returns the
 * buffer and the seal() bounds. The header's key phase is 0; seal() sets it.
 */
export const buildShortPacket = (o: { packetNumber: number; payload: Uint8Array; pnLength?: PnLength; dcid?: Uint8Array }): {
  buf: Uint8Array
  start: number
  payloadStart: number
  payloadEnd: number
  packetNumber: number
} => {
  const pnLength = o.pnLength ?? 4
  const dcid = o.dcid ?? DCID
  if (dcid.length !== CID_LENGTH) throw new Error('dcid length')
  const w = new Writer(1 + CID_LENGTH + pnLength + o.payload.length + 16)
  encodeShortHeader(w, { dcid, truncatedPn: encodeTruncated(o.packetNumber, pnLength), pnLength, keyPhase: 0 })
  const payloadStart = w.offset
  w.bytes(o.payload)
  return { buf: w.buf, start: 0, payloadStart, payloadEnd: w.offset, packetNumber: o.packetNumber }
}
