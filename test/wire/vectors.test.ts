/**
 * protocol-spec/vectors.json: decode each hex and compare with `value`, encode `value`
 * and compare bytes exactly, decode every strict prefix (DecodeError or a documented
 * shorter valid form), and check that README.md quotes every vector verbatim as
 * `vector <name>: <hex>` (contiguous lowercase hex) so spec and code cannot drift.
 */
import { readFileSync } from 'node:fs'
import t from 'tap'
import { DecodeError } from '../../src/core/errors.js'
import { decodeFrame, encodeFrame, FrameType, type Frame, type MessageFrame } from '../../src/core/wire/frames/index.js'
import {
  decodePacketHeader,
  encodeLongHeader,
  encodeRetry,
  encodeShortHeader,
  encodeVersionNegotiation,
  type PacketHeader,
} from '../../src/core/wire/packet-header.js'
import { decodePacketNumber, encodeTruncated, packetNumberLength, type PnLength } from '../../src/core/wire/pn-encoding.js'
import { Reader } from '../../src/core/wire/reader.js'
import { decodeTransportParams, encodeTransportParams } from '../../src/core/wire/transport-params.js'
import { Writer } from '../../src/core/wire/writer.js'
import { hex, unhex } from './helpers.js'

interface Vector {
  name: string
  kind: 'frame' | 'short-header' | 'long-header' | 'version-negotiation' | 'transport-params' | 'packet-number'
  hex: string
  value: Record<string, any>
}

const specDir = new URL('../../protocol-spec/', import.meta.url)
const vectors = JSON.parse(readFileSync(new URL('vectors.json', specDir), 'utf8')) as Vector[]
const readme = readFileSync(new URL('README.md', specDir), 'utf8')

const BYTE_FIELDS = new Set(['data', 'token', 'dcid', 'scid', 'payload', 'message'])
/** JSON value -> in-memory form (hex strings of byte fields -> Uint8Array). */
const fromJson = (v: Record<string, any>): any => {
  const o: Record<string, any> = {}
  for (const [k, x] of Object.entries(v)) o[k] = BYTE_FIELDS.has(k) && typeof x === 'string' ? unhex(x) : x
  return o
}
/** In-memory form -> JSON-comparable (Uint8Array -> hex), recursively. */
const toJson = (v: unknown): unknown => {
  if (v instanceof Uint8Array) return hex(v)
  if (Array.isArray(v)) return v.map(toJson)
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toJson(x)]))
  return v
}
/** The fields of `decoded` named in `expected`. */
const pick = (decoded: Record<string, unknown>, expected: Record<string, unknown>): Record<string, unknown> =>
  Object.fromEntries(Object.keys(expected).map((k) => [k, decoded[k]]))

const encodeVector = (v: Vector): string => {
  const value = fromJson(v.value)
  const w = new Writer(4096)
  switch (v.kind) {
    case 'frame':
      encodeFrame(w, value as Frame)
      break
    case 'short-header':
      encodeShortHeader(w, value)
      w.bytes(value.payload)
      break
    case 'long-header':
      if (value.type === 'retry') encodeRetry(w, value)
      else {
        encodeLongHeader(w, { ...value, payloadLength: value.payload.length })
        w.bytes(value.payload)
      }
      break
    case 'version-negotiation':
      encodeVersionNegotiation(w, value)
      break
    case 'transport-params':
      encodeTransportParams(w, value)
      break
    case 'packet-number': {
      const { fullPn, largestAcked, pnLength } = value
      if (packetNumberLength(fullPn, largestAcked ?? undefined) !== pnLength) throw new Error('pn length differs')
      w.uint(encodeTruncated(fullPn, pnLength), pnLength)
      break
    }
  }
  return hex(w.finish())
}

/** Decodes `bytes` as the vector's kind and returns the JSON-comparable value. */
const decodeVector = (v: Vector, bytes: Uint8Array): Record<string, unknown> => {
  switch (v.kind) {
    case 'frame': {
      const r = new Reader(bytes)
      const f = decodeFrame(r)
      if (r.remaining !== 0) throw new Error(`frame left ${r.remaining} bytes`)
      return toJson(f) as Record<string, unknown>
    }
    case 'short-header':
    case 'long-header':
    case 'version-negotiation': {
      const h = decodePacketHeader(bytes)
      if (h.packetEnd !== bytes.length) throw new Error('packet does not fill the vector')
      const out = toJson(h) as Record<string, unknown>
      if (h.type !== 'retry' && h.type !== 'version-negotiation') out.payload = hex(bytes.subarray(h.payloadOffset, h.packetEnd))
      return pick(out, v.value)
    }
    case 'transport-params':
      return { ...decodeTransportParams(bytes) }
    case 'packet-number': {
      const { pnLength, largestReceived } = v.value
      const truncated = new Reader(bytes).uint(pnLength)
      if (bytes.length !== pnLength) throw new Error('pn vector length differs')
      const fullPn = decodePacketNumber({ truncated, lengthBytes: pnLength as PnLength, largestReceived: largestReceived ?? undefined })
      return { ...v.value, fullPn, truncated }
    }
  }
}

t.test('vectors.json is well formed and covers every frame type and header', async (t) => {
  const names = new Set<string>()
  for (const v of vectors) {
    t.notOk(names.has(v.name), `unique name ${v.name}`)
    names.add(v.name)
    t.match(v.hex, /^([0-9a-f]{2})+$/, `${v.name}: lowercase contiguous hex`)
  }
  const frameTypes = new Set(vectors.filter((v) => v.kind === 'frame').map((v) => v.hex.slice(0, 2)))
  for (const type of ['00', '01', '02', '03', '04', '05', '06', '07', '08', '09', '10', '11', '12', '13', '18', '19', '1a']) {
    t.ok(frameTypes.has(type), `a vector for frame type 0x${type}`)
  }
  const headerTypes = new Set(vectors.map((v) => (v.kind.endsWith('header') ? v.value.type : v.kind)))
  for (const kind of ['short', 'initial', 'handshake', 'retry', 'version-negotiation', 'transport-params', 'packet-number']) {
    t.ok(headerTypes.has(kind), `a vector for ${kind}`)
  }
  t.ok(vectors.filter((v) => v.name.startsWith('ack')).length >= 3, 'several ACK shapes')
})

for (const v of vectors) {
  t.test(`vector ${v.name} (${v.kind})`, async (t) => {
    const bytes = unhex(v.hex)
    t.same(decodeVector(v, bytes), v.value, 'decodes to value')
    t.equal(encodeVector(v), v.hex, 'value encodes to the exact bytes')
    // Zero-copy decoders must not depend on the view starting at offset 0.
    const shifted = new Uint8Array(bytes.length + 3)
    shifted.set(bytes, 3)
    t.same(decodeVector(v, shifted.subarray(3)), v.value, 'decodes from a view with byteOffset')
    for (let n = 0; n < bytes.length; n++) checkPrefix(t, v, bytes.subarray(0, n))
  })
}

/**
 * A strict prefix must throw DecodeError, except where the format makes a shorter input
 * valid: PADDING runs, MESSAGE without LEN, short-header payloads, RETRY tokens, version
 * lists, and transport-parameter blocks cut at a TLV boundary. Those must decode to the
 * corresponding shorter value.
 */
const checkPrefix = (t: Asserts, v: Vector, prefix: Uint8Array): void => {
  const n = prefix.length
  const expectError = (why: string): void => {
    t.throws(() => decodeVector(v, prefix), DecodeError, `prefix ${n}: ${why}`)
  }
  if (v.kind === 'frame') {
    const type = v.value.type as number
    if (type === FrameType.PADDING && n > 0) {
      t.same(decodeVector(v, prefix), { type: 0, length: n }, `prefix ${n}: shorter PADDING run`)
      return
    }
    if (type === FrameType.MESSAGE && v.value.hasLength === false) {
      const full = fromJson(v.value) as MessageFrame
      const dataStart = unhex(v.hex).length - full.data.length
      if (n >= dataStart) {
        const got = decodeFrame(new Reader(prefix)) as MessageFrame
        const frag = full.fragOffset > 0 || full.data.length < full.msgLength
        t.same(toJson(got), { ...v.value, data: hex(full.data.subarray(0, n - dataStart)), msgLength: frag ? full.msgLength : n - dataStart }, `prefix ${n}: shorter no-LEN data`)
        return
      }
    }
    return expectError('truncated frame')
  }
  if (v.kind === 'short-header') {
    if (n >= v.value.headerLength) {
      const h = decodePacketHeader(prefix) as PacketHeader & { payloadOffset: number }
      t.equal(h.packetEnd - h.payloadOffset, n - v.value.headerLength, `prefix ${n}: shorter payload`)
      return
    }
    return expectError('truncated short header')
  }
  if (v.kind === 'long-header' && v.value.type === 'retry') {
    const tokenStart = v.value.headerLength - v.value.token.length / 2
    if (n > tokenStart) {
      const h = decodePacketHeader(prefix)
      t.equal(h.type === 'retry' && h.token.length, n - tokenStart, `prefix ${n}: shorter retry token`)
      return
    }
    return expectError('retry without token')
  }
  if (v.kind === 'version-negotiation') {
    const listStart = unhex(v.hex).length - 4 * v.value.versions.length
    if (n > listStart && (n - listStart) % 4 === 0) {
      const h = decodePacketHeader(prefix)
      t.same(h.type === 'version-negotiation' && h.versions, v.value.versions.slice(0, (n - listStart) / 4), `prefix ${n}: fewer versions`)
      return
    }
    return expectError('truncated version negotiation')
  }
  if (v.kind === 'transport-params') {
    if (tlvBoundaries(unhex(v.hex)).has(n)) {
      t.doesNotThrow(() => decodeTransportParams(prefix), `prefix ${n}: TLV boundary`)
      return
    }
    return expectError('TLV cut')
  }
  expectError('truncated')
}

type Asserts = Pick<typeof t, 'throws' | 'same' | 'equal' | 'doesNotThrow'>

const tlvBoundaries = (bytes: Uint8Array): Set<number> => {
  const r = new Reader(bytes)
  const out = new Set<number>([0])
  while (r.remaining > 0) {
    r.varint()
    r.skip(r.varint())
    out.add(r.offset)
  }
  return out
}

t.test('README.md quotes every vector verbatim and no stale ones', async (t) => {
  const quoted = new Map<string, string>()
  for (const m of readme.matchAll(/^\s*vector ([^\s:]+): ([0-9a-f]+)\s*$/gm)) quoted.set(m[1], m[2])
  for (const v of vectors) t.equal(quoted.get(v.name), v.hex, `README quotes ${v.name}`)
  const known = new Set(vectors.map((v) => v.name))
  for (const name of quoted.keys()) t.ok(known.has(name), `README vector ${name} exists in vectors.json`)
})
