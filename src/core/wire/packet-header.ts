/**
 * Packet headers (spec "Packet headers"). Short header for established sessions,
 * long header for INITIAL / HANDSHAKE / RETRY, and version negotiation. Decoding returns
 * the truncated packet number: expanding it needs the space's largest received number
 * (see pn-encoding.ts). Packet protection is defined by a later issue.
 */
import { DecodeError, ErrorCode, UsageError } from '../errors.js'
import type { PnLength } from './pn-encoding.js'
import { Reader } from './reader.js'
import { varintLength } from './varint.js'
import type { Writer } from './writer.js'

export const VERSION_V1 = 0x50470001
/** Connection id length in short headers (fixed: the header has no length byte). */
export const CID_LENGTH = 8
/** Maximum connection id length in long headers. */
export const MAX_CID_LENGTH = 20

const FORM_BIT = 0x80
const FIXED_BIT = 0x40
const KEY_PHASE_BIT = 0x20
const SHORT_RESERVED_BITS = 0x1c
const LONG_RESERVED_BITS = 0x0c

/** The TT bits of a long header. 3 is reserved. */
export const LongPacketType = { INITIAL: 0, HANDSHAKE: 1, RETRY: 2 } as const

interface HeaderCommon {
  /** Absolute index of the packet's first byte in the datagram. */
  packetStart: number
  /** Bytes from packetStart to the first payload byte (after the packet number). */
  headerLength: number
  /** Absolute index of the first payload byte. */
  payloadOffset: number
  /** Absolute index one past the packet's last byte; the next coalesced packet starts here. */
  packetEnd: number
}

export interface ShortHeader extends HeaderCommon {
  form: 'short'
  type: 'short'
  dcid: Uint8Array
  keyPhase: 0 | 1
  pnLength: PnLength
  truncatedPn: number
}

export interface LongHeader extends HeaderCommon {
  form: 'long'
  type: 'initial' | 'handshake'
  version: number
  dcid: Uint8Array
  scid: Uint8Array
  /** INITIAL only; empty for HANDSHAKE. */
  token: Uint8Array
  pnLength: PnLength
  truncatedPn: number
  /** Bytes after the packet number (packetEnd - payloadOffset). */
  payloadLength: number
}

export interface RetryHeader extends HeaderCommon {
  form: 'long'
  type: 'retry'
  version: number
  dcid: Uint8Array
  scid: Uint8Array
  /** The rest of the datagram (non-empty). */
  token: Uint8Array
}

export interface VersionNegotiationHeader extends HeaderCommon {
  form: 'long'
  type: 'version-negotiation'
  version: 0
  dcid: Uint8Array
  scid: Uint8Array
  versions: number[]
}

/**
 * A long header whose version we do not speak: only the version-independent fields
 * are parsed, so the endpoint can answer with version negotiation. packetEnd is the
 * end of the datagram.
 */
export interface UnsupportedVersionHeader extends HeaderCommon {
  form: 'long'
  type: 'unsupported-version'
  version: number
  dcid: Uint8Array
  scid: Uint8Array
}

export type PacketHeader = ShortHeader | LongHeader | RetryHeader | VersionNegotiationHeader | UnsupportedVersionHeader

/** Cheap filter for the endpoint: every pigeon packet we send has the fixed bit set. */
export const isLikelyPigeonPacket = (byte0: number): boolean => (byte0 & FIXED_BIT) !== 0

/**
 * The destination connection id for demultiplexing, as a view on the datagram, or
 * undefined if the datagram is too short to hold one. Does not validate the rest.
 */
export const peekDestinationCid = (datagram: Uint8Array): Uint8Array | undefined => {
  if (datagram.length === 0) return undefined
  if ((datagram[0] & FORM_BIT) === 0) {
    return datagram.length >= 1 + CID_LENGTH ? datagram.subarray(1, 1 + CID_LENGTH) : undefined
  }
  if (datagram.length < 6) return undefined
  const len = datagram[5]
  if (len > MAX_CID_LENGTH || 6 + len > datagram.length) return undefined
  return datagram.subarray(6, 6 + len)
}

/** Decodes the header of the packet starting at `offset`. Throws DecodeError only. */
export const decodePacketHeader = (datagram: Uint8Array, offset = 0): PacketHeader => {
  const r = new Reader(datagram, offset)
  const byte0 = r.u8()
  if ((byte0 & FORM_BIT) === 0) return decodeShort(r, byte0, offset)
  const version = r.u32()
  const dcid = readCid(r)
  const scid = readCid(r)
  if (version === 0) return decodeVersionNegotiation(r, offset, dcid, scid)
  if (version !== VERSION_V1) {
    const end = datagram.length
    return { form: 'long', type: 'unsupported-version', version, dcid, scid, ...span(offset, r.offset, end) }
  }
  if ((byte0 & FIXED_BIT) === 0) throw new DecodeError('fixed bit is 0', ErrorCode.PROTOCOL_VIOLATION)
  if ((byte0 & LONG_RESERVED_BITS) !== 0) throw new DecodeError('reserved header bits set', ErrorCode.PROTOCOL_VIOLATION)
  const tt = (byte0 >> 4) & 3
  if (tt === LongPacketType.RETRY) {
    if ((byte0 & 0x03) !== 0) throw new DecodeError('retry packet with pn length bits set', ErrorCode.PROTOCOL_VIOLATION)
    if (r.remaining === 0) throw new DecodeError('retry packet without token')
    const token = r.rest()
    return { form: 'long', type: 'retry', version, dcid, scid, token, ...span(offset, r.offset, r.offset) }
  }
  if (tt === 3) throw new DecodeError('reserved long packet type 3', ErrorCode.PROTOCOL_VIOLATION)
  const token = tt === LongPacketType.INITIAL ? r.bytes(r.varint()) : EMPTY
  const length = r.varint()
  const pnLength = ((byte0 & 0x03) + 1) as PnLength
  if (length < pnLength) throw new DecodeError(`long header length ${length} < pn length ${pnLength}`)
  if (length > r.remaining) throw new DecodeError(`long header length ${length} exceeds datagram (${r.remaining} left)`)
  const packetEnd = r.offset + length
  const truncatedPn = r.uint(pnLength)
  return {
    form: 'long',
    type: tt === LongPacketType.INITIAL ? 'initial' : 'handshake',
    version,
    dcid,
    scid,
    token,
    pnLength,
    truncatedPn,
    payloadLength: length - pnLength,
    ...span(offset, r.offset, packetEnd),
  }
}

const EMPTY = new Uint8Array(0)

const span = (packetStart: number, payloadOffset: number, packetEnd: number): HeaderCommon => ({
  packetStart,
  headerLength: payloadOffset - packetStart,
  payloadOffset,
  packetEnd,
})

const readCid = (r: Reader): Uint8Array => {
  const len = r.u8()
  if (len > MAX_CID_LENGTH) throw new DecodeError(`connection id length ${len} > ${MAX_CID_LENGTH}`)
  return r.bytes(len)
}

const decodeShort = (r: Reader, byte0: number, offset: number): ShortHeader => {
  if ((byte0 & FIXED_BIT) === 0) throw new DecodeError('fixed bit is 0', ErrorCode.PROTOCOL_VIOLATION)
  if ((byte0 & SHORT_RESERVED_BITS) !== 0) throw new DecodeError('reserved header bits set', ErrorCode.PROTOCOL_VIOLATION)
  const dcid = r.bytes(CID_LENGTH)
  const pnLength = ((byte0 & 0x03) + 1) as PnLength
  const truncatedPn = r.uint(pnLength)
  const payloadOffset = r.offset
  return {
    form: 'short',
    type: 'short',
    dcid,
    keyPhase: (byte0 & KEY_PHASE_BIT) !== 0 ? 1 : 0,
    pnLength,
    truncatedPn,
    packetStart: offset,
    headerLength: payloadOffset - offset,
    payloadOffset,
    packetEnd: r.end,
  }
}

const decodeVersionNegotiation = (r: Reader, offset: number, dcid: Uint8Array, scid: Uint8Array): VersionNegotiationHeader => {
  const payloadOffset = r.offset
  if (r.remaining === 0 || r.remaining % 4 !== 0) {
    throw new DecodeError(`version negotiation list of ${r.remaining} bytes is not a non-empty multiple of 4`)
  }
  const versions: number[] = []
  while (r.remaining > 0) versions.push(r.u32())
  return { form: 'long', type: 'version-negotiation', version: 0, dcid, scid, versions, ...span(offset, payloadOffset, r.offset) }
}

// ---- encoding ----

export interface ShortHeaderFields {
  dcid: Uint8Array
  truncatedPn: number
  pnLength: PnLength
  keyPhase: 0 | 1
}

export const shortHeaderLength = (pnLength: PnLength): number => 1 + CID_LENGTH + pnLength

export const encodeShortHeader = (w: Writer, h: ShortHeaderFields): void => {
  if (h.dcid.length !== CID_LENGTH) usage(`short header dcid must be ${CID_LENGTH} bytes`)
  checkPn(h.truncatedPn, h.pnLength)
  w.u8(FIXED_BIT | (h.keyPhase ? KEY_PHASE_BIT : 0) | (h.pnLength - 1))
  w.bytes(h.dcid)
  w.uint(h.truncatedPn, h.pnLength)
}

export interface LongHeaderFields {
  type: 'initial' | 'handshake'
  /** Defaults to VERSION_V1. */
  version?: number
  dcid: Uint8Array
  scid: Uint8Array
  /** INITIAL only (omit or empty for none); must be absent/empty for HANDSHAKE. */
  token?: Uint8Array
  truncatedPn: number
  pnLength: PnLength
  /** Bytes that will follow the packet number. */
  payloadLength: number
  /**
   * Force the Length varint to this many bytes (default: minimal), for builders that
   * reserve the field and patch it once the payload is known. Decoders accept both.
   */
  lengthFieldBytes?: 1 | 2 | 4 | 8
}

/** Exact encoded length of the long header (everything before the payload). */
export const longHeaderLength = (h: LongHeaderFields): number => {
  const tokenLength = h.token?.length ?? 0
  const tokenBytes = h.type === 'initial' ? varintLength(tokenLength) + tokenLength : 0
  const lengthBytes = h.lengthFieldBytes ?? varintLength(h.pnLength + h.payloadLength)
  return 1 + 4 + 1 + h.dcid.length + 1 + h.scid.length + tokenBytes + lengthBytes + h.pnLength
}

export const encodeLongHeader = (w: Writer, h: LongHeaderFields): void => {
  const tt = h.type === 'initial' ? LongPacketType.INITIAL : h.type === 'handshake' ? LongPacketType.HANDSHAKE : usage(`bad long header type ${String(h.type)}`)
  checkPn(h.truncatedPn, h.pnLength)
  if (!(Number.isSafeInteger(h.payloadLength) && h.payloadLength >= 0)) usage(`bad payloadLength ${h.payloadLength}`)
  if (tt === LongPacketType.HANDSHAKE && h.token !== undefined && h.token.length > 0) usage('HANDSHAKE packets carry no token')
  writeLongPrefix(w, FORM_BIT | FIXED_BIT | (tt << 4) | (h.pnLength - 1), h.version ?? VERSION_V1, h.dcid, h.scid)
  if (tt === LongPacketType.INITIAL) {
    const token = h.token ?? EMPTY
    w.varint(token.length)
    w.bytes(token)
  }
  const length = h.pnLength + h.payloadLength
  if (h.lengthFieldBytes === undefined) w.varint(length)
  else w.varintFixed(length, h.lengthFieldBytes)
  w.uint(h.truncatedPn, h.pnLength)
}

export interface RetryFields {
  version?: number
  dcid: Uint8Array
  scid: Uint8Array
  token: Uint8Array
}

export const retryLength = (h: RetryFields): number => 7 + h.dcid.length + h.scid.length + h.token.length

/** A RETRY packet is the whole datagram: nothing may follow it. */
export const encodeRetry = (w: Writer, h: RetryFields): void => {
  if (h.token.length === 0) usage('retry token must not be empty')
  writeLongPrefix(w, FORM_BIT | FIXED_BIT | (LongPacketType.RETRY << 4), h.version ?? VERSION_V1, h.dcid, h.scid)
  w.bytes(h.token)
}

export interface VersionNegotiationFields {
  dcid: Uint8Array
  scid: Uint8Array
  versions: readonly number[]
}

export const versionNegotiationLength = (h: VersionNegotiationFields): number => 7 + h.dcid.length + h.scid.length + 4 * h.versions.length

/** byte0 is always 0xc0 when we send; receivers ignore its low 7 bits. */
export const encodeVersionNegotiation = (w: Writer, h: VersionNegotiationFields): void => {
  if (h.versions.length === 0) usage('version negotiation needs at least one version')
  writeLongPrefix(w, FORM_BIT | FIXED_BIT, 0, h.dcid, h.scid)
  for (let i = 0; i < h.versions.length; i++) {
    const v = h.versions[i]
    if (!(Number.isInteger(v) && v > 0 && v <= 0xffffffff)) usage(`bad version ${v}`)
    w.u32(v)
  }
}

const writeLongPrefix = (w: Writer, byte0: number, version: number, dcid: Uint8Array, scid: Uint8Array): void => {
  if (dcid.length > MAX_CID_LENGTH || scid.length > MAX_CID_LENGTH) usage('connection id longer than 20 bytes')
  if (!(Number.isInteger(version) && version >= 0 && version <= 0xffffffff)) usage(`bad version ${version}`)
  w.u8(byte0)
  w.u32(version)
  w.u8(dcid.length)
  w.bytes(dcid)
  w.u8(scid.length)
  w.bytes(scid)
}

const checkPn = (truncatedPn: number, pnLength: number): void => {
  if (!(pnLength >= 1 && pnLength <= 4 && (pnLength | 0) === pnLength)) usage(`bad pn length ${pnLength}`)
  if (!(Number.isInteger(truncatedPn) && truncatedPn >= 0 && truncatedPn < 2 ** (8 * pnLength))) {
    usage(`truncated pn ${truncatedPn} does not fit in ${pnLength} bytes`)
  }
}

const usage = (message: string): never => {
  throw new UsageError(ErrorCode.INTERNAL_ERROR, message)
}
