/**
 * Transport parameters carried in HELLO (spec "Transport parameters"): a sequence of
 * TLVs `id varint, length varint, value`. Every parameter defined here has a varint
 * value filling its TLV exactly. Unknown ids are skipped so later versions can add
 * parameters; a repeated id is an error.
 */
import { DecodeError, ErrorCode, UsageError } from '../errors.js'
import { Reader } from './reader.js'
import { varintLength } from './varint.js'
import type { Writer } from './writer.js'

export interface TransportParams {
  maxIdleTimeoutMs?: number
  maxDatagramBytes?: number
  initialMaxData?: number
  initialMaxStreamData?: number
  maxStreams?: number
  maxAckDelayMs?: number
  maxMessageBytes?: number
}

export const TransportParamId = {
  maxIdleTimeoutMs: 0x01,
  maxDatagramBytes: 0x02,
  initialMaxData: 0x03,
  initialMaxStreamData: 0x04,
  maxStreams: 0x05,
  maxAckDelayMs: 0x06,
  maxMessageBytes: 0x07,
} as const

/** Values assumed for absent parameters (documented in the spec; the lead may tune). */
export const TRANSPORT_PARAM_DEFAULTS: Readonly<Required<TransportParams>> = Object.freeze({
  maxIdleTimeoutMs: 30_000,
  maxDatagramBytes: 1200,
  initialMaxData: 1_048_576,
  initialMaxStreamData: 262_144,
  maxStreams: 64,
  maxAckDelayMs: 25,
  maxMessageBytes: 1_048_576,
})

/** Absent parameters filled with TRANSPORT_PARAM_DEFAULTS. */
export const resolveTransportParams = (p: TransportParams): Required<TransportParams> => {
  const out = { ...TRANSPORT_PARAM_DEFAULTS }
  for (const key of KEYS) {
    const v = p[key]
    if (v !== undefined) out[key] = v
  }
  return out
}

type Key = keyof TransportParams
/** In id order: the encoder writes parameters in ascending id order. */
const KEYS: readonly Key[] = Object.keys(TransportParamId) as Key[]
const KEY_BY_ID = new Map<number, Key>(KEYS.map((k) => [TransportParamId[k], k]))

export const transportParamsLength = (p: TransportParams): number => {
  let n = 0
  for (const key of KEYS) {
    const v = p[key]
    if (v === undefined) continue
    const vl = varintLength(v)
    n += varintLength(TransportParamId[key]) + varintLength(vl) + vl
  }
  return n
}

export const encodeTransportParams = (w: Writer, p: TransportParams): void => {
  for (const key of KEYS) {
    const v = p[key]
    if (v === undefined) continue
    if (!(Number.isSafeInteger(v) && v >= 0)) throw new UsageError(ErrorCode.INTERNAL_ERROR, `bad transport parameter ${key}=${v}`)
    w.varint(TransportParamId[key])
    w.varint(varintLength(v))
    w.varint(v)
  }
}

/** Decodes a whole TLV block (exactly `bytes`). */
export const decodeTransportParams = (bytes: Uint8Array): TransportParams => {
  const r = new Reader(bytes)
  const out: TransportParams = {}
  const seen = new Set<number>()
  while (r.remaining > 0) {
    const id = r.varint()
    const length = r.varint()
    if (seen.has(id)) throw new DecodeError(`duplicate transport parameter 0x${id.toString(16)}`, ErrorCode.PROTOCOL_VIOLATION)
    seen.add(id)
    const value = r.bytes(length)
    const key = KEY_BY_ID.get(id)
    if (key === undefined) continue
    const vr = new Reader(value)
    const v = vr.varint()
    if (vr.remaining !== 0) throw new DecodeError(`transport parameter ${key}: value is not exactly one varint`)
    out[key] = v
  }
  return out
}
