/**
 * Reads wire data from a Uint8Array (any view: indices are relative to the view, so
 * byteOffset is handled by the typed array itself). `bytes(n)` returns zero-copy
 * subarrays: callers that keep data beyond the datagram's lifetime must copy it.
 * Every truncation throws DecodeError.
 */
import { DecodeError } from '../errors.js'
import { varintTooLarge } from './varint.js'

const TWO_32 = 4294967296

export class Reader {
  readonly buf: Uint8Array
  offset: number
  /** Reading stops here (exclusive); defaults to the end of `buf`. */
  end: number

  constructor(buf: Uint8Array, offset = 0, end = buf.length) {
    if (!(offset >= 0 && offset <= end && end <= buf.length)) {
      throw new DecodeError(`reader bounds [${offset}, ${end}) outside buffer of ${buf.length}`)
    }
    this.buf = buf
    this.offset = offset
    this.end = end
  }

  get remaining(): number {
    return this.end - this.offset
  }

  peekU8(): number {
    if (this.offset >= this.end) truncated(1, 0)
    return this.buf[this.offset]
  }

  u8(): number {
    const o = this.offset
    if (o + 1 > this.end) truncated(1, this.end - o)
    this.offset = o + 1
    return this.buf[o]
  }

  u16(): number {
    const o = this.offset
    if (o + 2 > this.end) truncated(2, this.end - o)
    const b = this.buf
    this.offset = o + 2
    return (b[o] << 8) | b[o + 1]
  }

  u32(): number {
    const o = this.offset
    if (o + 4 > this.end) truncated(4, this.end - o)
    const b = this.buf
    this.offset = o + 4
    return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0
  }

  /** Unsigned big-endian integer of `byteLength` (1..4) bytes. */
  uint(byteLength: number): number {
    const o = this.offset
    if (o + byteLength > this.end) truncated(byteLength, this.end - o)
    const b = this.buf
    let v = 0
    for (let i = 0; i < byteLength; i++) v = v * 256 + b[o + i]
    this.offset = o + byteLength
    return v
  }

  /** QUIC varint of any length; values above 2^53-1 throw DecodeError. */
  varint(): number {
    const o = this.offset
    const b = this.buf
    if (o >= this.end) truncated(1, 0)
    const b0 = b[o]
    switch (b0 >> 6) {
      case 0:
        this.offset = o + 1
        return b0
      case 1:
        if (o + 2 > this.end) truncated(2, this.end - o)
        this.offset = o + 2
        return ((b0 & 0x3f) << 8) | b[o + 1]
      case 2:
        if (o + 4 > this.end) truncated(4, this.end - o)
        this.offset = o + 4
        return (((b0 & 0x3f) << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0
      default: {
        if (o + 8 > this.end) truncated(8, this.end - o)
        const hi = (((b0 & 0x3f) << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0
        if (hi > 0x1fffff) varintTooLarge()
        const lo = ((b[o + 4] << 24) | (b[o + 5] << 16) | (b[o + 6] << 8) | b[o + 7]) >>> 0
        this.offset = o + 8
        return hi * TWO_32 + lo
      }
    }
  }

  /** The next `n` bytes as a zero-copy view. */
  bytes(n: number): Uint8Array {
    const o = this.offset
    if (!(n >= 0) || o + n > this.end) truncated(n, this.end - o)
    this.offset = o + n
    return this.buf.subarray(o, o + n)
  }

  /** Everything up to `end`, zero-copy. */
  rest(): Uint8Array {
    const o = this.offset
    this.offset = this.end
    return this.buf.subarray(o, this.end)
  }

  skip(n: number): void {
    const o = this.offset
    if (!(n >= 0) || o + n > this.end) truncated(n, this.end - o)
    this.offset = o + n
  }
}

const truncated = (need: number, have: number): never => {
  throw new DecodeError(`truncated: need ${need} bytes, ${have} left`)
}
