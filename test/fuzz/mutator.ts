/**
 * Datagram generator for the fuzz tests: random datagrams and mutations of real
 * captured pigeon packets, all from one seeded Rng (a run is replayed from its seed).
 */
import { DecodeError } from '../../src/core/errors.js'
import { crc32c } from '../../src/core/protection.js'
import type { SeededRng } from '../../src/core/rng.js'
import { VERSION_V1, decodePacketHeader } from '../../src/core/wire/packet-header.js'

export const MUTATIONS = [
  'random',
  'random-pigeonish',
  'random-long-v1',
  'empty',
  'oversized',
  'replay',
  'bit-flips',
  'truncate-every-length',
  'insert-bytes',
  'delete-bytes',
  'corrupt-version',
  'corrupt-cid-length',
  'corrupt-pn-length-bits',
  'corrupt-first-byte',
  'corrupt-varint',
  'frame-type-replaced',
  'coalesced-garbage',
  'coalesced-real',
  'forged-initial',
] as const
export type Mutation = (typeof MUTATIONS)[number]

/** Relative weights (random kinds and mutations about equally often overall). */
const WEIGHTS: Record<Mutation, number> = {
  random: 10,
  'random-pigeonish': 8,
  'random-long-v1': 6,
  empty: 1,
  oversized: 1,
  replay: 4,
  'bit-flips': 10,
  'truncate-every-length': 8,
  'insert-bytes': 5,
  'delete-bytes': 5,
  'corrupt-version': 4,
  'corrupt-cid-length': 4,
  'corrupt-pn-length-bits': 4,
  'corrupt-first-byte': 4,
  'corrupt-varint': 5,
  'frame-type-replaced': 8,
  'coalesced-garbage': 5,
  'coalesced-real': 3,
  'forged-initial': 3,
}

const CUMULATIVE = (() => {
  let sum = 0
  return MUTATIONS.map((m) => (sum += WEIGHTS[m]))
})()
const TOTAL_WEIGHT = CUMULATIVE[CUMULATIVE.length - 1]

/** Byte offsets of interest in a captured packet (computed once per corpus entry). */
interface Shape {
  bytes: Uint8Array
  long: boolean
  isInitial: boolean
  /** First payload byte (first frame type), or -1 if the header does not parse. */
  payloadOffset: number
  /** Offsets of varint fields in the header (token length, length). */
  varints: number[]
}

const shapeOf = (bytes: Uint8Array): Shape => {
  const long = (bytes[0] & 0x80) !== 0
  let payloadOffset = -1
  let isInitial = false
  const varints: number[] = []
  try {
    const h = decodePacketHeader(bytes, 0)
    payloadOffset = h.payloadOffset
    isInitial = h.type === 'initial'
    if (long && (h.type === 'initial' || h.type === 'handshake')) {
      let o = 7 + h.dcid.length + h.scid.length
      if (h.type === 'initial') {
        varints.push(o)
        o += varintBytes(bytes[o]) + h.token.length
      }
      varints.push(o)
    }
  } catch (err) {
    if (!(err instanceof DecodeError)) throw err
  }
  return { bytes, long, isInitial, payloadOffset, varints }
}

const varintBytes = (b: number): number => 1 << (b >> 6)

export interface MutatorOptions {
  rng: SeededRng
  /** Real packets to mutate (captured from live and recorded sessions). */
  corpus: Uint8Array[]
  /** Largest datagram generated (except 'oversized'). */
  maxBytes?: number
}

/**
 * Produces one datagram per call. `truncate-every-length` walks a cursor over every
 * (packet, prefix length) pair of the corpus, so a long enough run covers each prefix.
 */
export class Mutator {
  readonly counts: Record<Mutation, number>
  private readonly rng: SeededRng
  private readonly shapes: Shape[]
  private readonly maxBytes: number
  private truncPacket = 0
  private truncLength = 0
  /** Completed passes of the truncation cursor over the whole corpus. */
  truncationPasses = 0

  constructor(opts: MutatorOptions) {
    this.rng = opts.rng
    this.shapes = opts.corpus.map(shapeOf)
    this.maxBytes = opts.maxBytes ?? 1500
    this.counts = Object.fromEntries(MUTATIONS.map((m) => [m, 0])) as Record<Mutation, number>
  }

  /** Total prefixes the truncation cursor walks in one pass. */
  get truncationPrefixes(): number {
    return this.shapes.reduce((n, s) => n + s.bytes.length, 0)
  }

  pick(): Mutation {
    const x = this.rng.nextU32() % TOTAL_WEIGHT
    let i = 0
    while (CUMULATIVE[i] <= x) i++
    return MUTATIONS[i]
  }

  next(kind: Mutation = this.pick()): { kind: Mutation; bytes: Uint8Array } {
    this.counts[kind]++
    return { kind, bytes: this.make(kind) }
  }

  private int(n: number): number {
    return this.rng.nextU32() % n
  }

  private random(length: number): Uint8Array {
    const b = new Uint8Array(length)
    this.rng.fillBytes(b)
    return b
  }

  /** Mostly small or near the 1200-byte Initial floor, sometimes anything up to maxBytes. */
  private randomLength(): number {
    switch (this.int(4)) {
      case 0:
        return 1 + this.int(64)
      case 1:
        return 1150 + this.int(100)
      default:
        return 1 + this.int(this.maxBytes)
    }
  }

  private sample(): Shape {
    return this.shapes[this.int(this.shapes.length)]
  }

  private make(kind: Mutation): Uint8Array {
    switch (kind) {
      case 'random':
        return this.random(this.randomLength())
      case 'random-pigeonish': {
        const b = this.random(this.randomLength())
        b[0] = this.int(2) === 0 ? 0x40 | (b[0] & 0x23) : 0xc0 | (b[0] & 0x33)
        return b
      }
      case 'random-long-v1': {
        // A plausible long header with random CID lengths, token and length varints.
        const b = this.random(this.int(3) === 0 ? 1200 + this.int(100) : this.randomLength() + 8)
        b[0] = 0xc0 | (this.int(3) << 4) | this.int(4)
        writeU32(b, 1, this.int(8) === 0 ? 0 : VERSION_V1)
        if (b.length > 5) b[5] = this.int(4) === 0 ? this.int(256) : this.int(2) === 0 ? 8 : this.int(21)
        const s = 6 + b[5]
        if (s < b.length) b[s] = this.int(4) === 0 ? this.int(256) : 8
        return b
      }
      case 'empty':
        return new Uint8Array(0)
      case 'oversized': {
        // Jumbo datagrams: up to the UDP maximum, mostly repeated real packets.
        const length = this.int(8) === 0 ? 65_507 : 1501 + this.int(8000)
        const b = new Uint8Array(length)
        const src = this.sample().bytes
        for (let o = 0; o < length; o += src.length) b.set(src.subarray(0, Math.min(src.length, length - o)), o)
        if (this.int(2) === 0) b.fill(this.int(256), src.length)
        return b
      }
      case 'replay':
        return this.sample().bytes.slice()
      case 'bit-flips': {
        const b = this.sample().bytes.slice()
        const flips = 1 + (this.int(4) === 0 ? this.int(16) : 0)
        for (let i = 0; i < flips; i++) b[this.int(b.length)] ^= 1 << this.int(8)
        return b
      }
      case 'truncate-every-length': {
        const src = this.shapes[this.truncPacket].bytes
        const b = src.slice(0, this.truncLength)
        if (++this.truncLength >= src.length) {
          this.truncLength = 0
          if (++this.truncPacket >= this.shapes.length) {
            this.truncPacket = 0
            this.truncationPasses++
          }
        }
        return b
      }
      case 'insert-bytes': {
        const src = this.sample().bytes
        const at = this.int(src.length + 1)
        const n = 1 + this.int(8)
        const b = new Uint8Array(src.length + n)
        b.set(src.subarray(0, at))
        this.rng.fillBytes(b.subarray(at, at + n))
        b.set(src.subarray(at), at + n)
        return b
      }
      case 'delete-bytes': {
        const src = this.sample().bytes
        const at = this.int(src.length)
        const n = Math.min(src.length - at, 1 + this.int(8))
        const b = new Uint8Array(src.length - n)
        b.set(src.subarray(0, at))
        b.set(src.subarray(at + n), at)
        return b
      }
      case 'corrupt-version': {
        const shape = this.longSample()
        const b = shape.bytes.slice()
        const choices = [0, VERSION_V1 + 1, VERSION_V1 - 1, 0xffffffff, this.rng.nextU32(), 0x0a0a0a0a]
        writeU32(b, 1, choices[this.int(choices.length)])
        return b
      }
      case 'corrupt-cid-length': {
        const shape = this.longSample()
        const b = shape.bytes.slice()
        const field = this.int(2) === 0 ? 5 : 6 + b[5]
        if (field < b.length) b[field] = [0, 1, 7, 9, 20, 21, 255, this.int(256)][this.int(8)]
        return b
      }
      case 'corrupt-pn-length-bits': {
        const b = this.sample().bytes.slice()
        b[0] = (b[0] & ~0x03) | (((b[0] & 0x03) + 1 + this.int(3)) & 0x03)
        return b
      }
      case 'corrupt-first-byte': {
        // Form, fixed, key-phase, reserved and type bits.
        const b = this.sample().bytes.slice()
        b[0] ^= [0x80, 0x40, 0x20, 0x10, 0x08, 0x04, 0x30, 0xff][this.int(8)]
        return b
      }
      case 'corrupt-varint': {
        const shape = this.longSample()
        const b = shape.bytes.slice()
        if (shape.varints.length === 0) return b
        const at = shape.varints[this.int(shape.varints.length)]
        // Random two-bit prefix (1, 2, 4 or 8 bytes) and random value bits.
        b[at] = this.int(256)
        if (this.int(2) === 0 && at + 1 < b.length) b[at + 1] = this.int(256)
        return b
      }
      case 'frame-type-replaced': {
        const shape = this.sample()
        const b = shape.bytes.slice()
        if (shape.payloadOffset < 0 || shape.payloadOffset >= b.length) return b
        // The first frame type, or any payload byte (often a later frame's type).
        const at = this.int(2) === 0 ? shape.payloadOffset : shape.payloadOffset + this.int(b.length - shape.payloadOffset)
        b[at] = this.int(4) === 0 ? this.int(256) : this.int(0x20)
        return b
      }
      case 'coalesced-garbage': {
        const src = this.sample().bytes
        const garbage = this.int(2) === 0 ? this.random(1 + this.int(200)) : this.sample().bytes
        const b = new Uint8Array(src.length + garbage.length)
        const first = this.int(4) === 0 ? garbage : src
        b.set(first)
        b.set(first === src ? garbage : src, first.length)
        if (first === src && garbage.length > 0 && this.int(2) === 0) b[src.length] |= 0xc0
        return b
      }
      case 'forged-initial':
        return this.forgedInitial()
      case 'coalesced-real': {
        const a = this.sample().bytes
        const c = this.sample().bytes
        const b = new Uint8Array(a.length + c.length)
        b.set(a)
        b.set(c, a.length)
        return b
      }
    }
  }

  /** A captured Initial with fresh random connection ids: a half-open handshake from a new "client". */
  private forgedInitial(): Uint8Array {
    let shape = this.sample()
    for (let i = 0; i < 16 && !shape.isInitial; i++) shape = this.sample()
    const b = shape.bytes.slice()
    if (!shape.isInitial) return b
    this.rng.fillBytes(b.subarray(6, 6 + b[5]))
    const s = 6 + b[5]
    this.rng.fillBytes(b.subarray(s + 1, s + 1 + b[s]))
    return b
  }

  private longSample(): Shape {
    for (let i = 0; i < 8; i++) {
      const s = this.sample()
      if (s.long) return s
    }
    return this.sample()
  }
}

const writeU32 = (b: Uint8Array, at: number, v: number): void => {
  if (at + 4 > b.length) return
  b[at] = v >>> 24
  b[at + 1] = (v >>> 16) & 0xff
  b[at + 2] = (v >>> 8) & 0xff
  b[at + 3] = v & 0xff
}

/**
 * Recompute the CRC-32C trailer of every packet that still parses (checksumProtection),
 * as an attacker can: a checksum is not a MAC. Makes mutations reach the frame decoder.
 */
export const resealChecksums = (b: Uint8Array): Uint8Array => {
  let offset = 0
  while (offset < b.length) {
    let end: number
    try {
      end = decodePacketHeader(b, offset).packetEnd
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err
      return b
    }
    if (end <= offset) return b
    if (end - offset >= 4) {
      const crc = crc32c(b, offset, end - 4)
      b[end - 4] = crc >>> 24
      b[end - 3] = (crc >>> 16) & 0xff
      b[end - 2] = (crc >>> 8) & 0xff
      b[end - 1] = crc & 0xff
    }
    offset = end
  }
  return b
}

export const hexOf = (b: Uint8Array, max = 80): string =>
  Array.from(b.subarray(0, max), (x) => x.toString(16).padStart(2, '0')).join('') + (b.length > max ? `…(${b.length} bytes)` : '')
