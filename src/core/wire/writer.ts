/**
 * Writes wire data into a preallocated buffer. The caller owns the buffer (one per
 * datagram being built); primitives never allocate. Overflow throws UsageError: a frame
 * that does not fit is a bug in the caller's size budget, never silently cut.
 */
import { ErrorCode, UsageError } from '../errors.js'
import { invalidVarint } from './varint.js'

const TWO_32 = 4294967296

export class Writer {
  readonly buf: Uint8Array
  /** Next byte to write (absolute index into `buf`). */
  offset: number
  /** Where this writer started; `finish()` returns buf[start, offset). */
  readonly start: number

  /** `new Writer(1200)` allocates; `new Writer(buf, 0)` writes into `buf` from offset. */
  constructor(capacityOrBuffer: number | Uint8Array, offset = 0) {
    this.buf = typeof capacityOrBuffer === 'number' ? new Uint8Array(capacityOrBuffer) : capacityOrBuffer
    if (!Number.isInteger(offset) || offset < 0 || offset > this.buf.length) {
      throw new UsageError(ErrorCode.INTERNAL_ERROR, `writer offset ${offset} outside buffer`)
    }
    this.offset = offset
    this.start = offset
  }

  get capacity(): number {
    return this.buf.length
  }

  /** Bytes still free. */
  get remaining(): number {
    return this.buf.length - this.offset
  }

  /** Bytes written since `start`. */
  get length(): number {
    return this.offset - this.start
  }

  /** Forget everything written; reuse the buffer. */
  reset(): void {
    this.offset = this.start
  }

  /** The written bytes, as a view on the buffer (no copy). */
  finish(): Uint8Array {
    return this.buf.subarray(this.start, this.offset)
  }

  u8(v: number): void {
    const o = this.offset
    if (o + 1 > this.buf.length) overflow(1, this.remaining)
    this.buf[o] = v
    this.offset = o + 1
  }

  u16(v: number): void {
    const o = this.offset
    const b = this.buf
    if (o + 2 > b.length) overflow(2, this.remaining)
    b[o] = v >>> 8
    b[o + 1] = v
    this.offset = o + 2
  }

  u32(v: number): void {
    const o = this.offset
    const b = this.buf
    if (o + 4 > b.length) overflow(4, this.remaining)
    b[o] = v >>> 24
    b[o + 1] = v >>> 16
    b[o + 2] = v >>> 8
    b[o + 3] = v
    this.offset = o + 4
  }

  /** Unsigned big-endian integer of exactly `byteLength` (1..4) bytes. */
  uint(v: number, byteLength: number): void {
    const o = this.offset
    const b = this.buf
    if (o + byteLength > b.length) overflow(byteLength, this.remaining)
    for (let i = byteLength - 1; i >= 0; i--) {
      b[o + i] = v
      v >>>= 8
    }
    this.offset = o + byteLength
  }

  /** QUIC varint, minimal length. Throws UsageError for negative / unsafe / fractional values. */
  varint(v: number): void {
    const b = this.buf
    const o = this.offset
    if (v >= 0 && v < 0x40000000 && (v | 0) === v) {
      if (v < 0x40) {
        if (o + 1 > b.length) overflow(1, this.remaining)
        b[o] = v
        this.offset = o + 1
      } else if (v < 0x4000) {
        if (o + 2 > b.length) overflow(2, this.remaining)
        b[o] = 0x40 | (v >>> 8)
        b[o + 1] = v
        this.offset = o + 2
      } else {
        if (o + 4 > b.length) overflow(4, this.remaining)
        b[o] = 0x80 | (v >>> 24)
        b[o + 1] = v >>> 16
        b[o + 2] = v >>> 8
        b[o + 3] = v
        this.offset = o + 4
      }
      return
    }
    if (!(Number.isSafeInteger(v) && v >= 0)) invalidVarint(v)
    this.varint8(v)
  }

  /**
   * Varint in a forced length (1, 2, 4 or 8 bytes), e.g. to reserve a length field and
   * patch it later. Throws UsageError if `v` does not fit.
   */
  varintFixed(v: number, byteLength: 1 | 2 | 4 | 8): void {
    if (!(Number.isSafeInteger(v) && v >= 0)) invalidVarint(v)
    const b = this.buf
    const o = this.offset
    if (byteLength === 8) return this.varint8(v)
    const limit = byteLength === 1 ? 0x40 : byteLength === 2 ? 0x4000 : byteLength === 4 ? 0x40000000 : 0
    if (v >= limit) {
      throw new UsageError(ErrorCode.INTERNAL_ERROR, `varint ${v} does not fit in ${byteLength} bytes`)
    }
    if (o + byteLength > b.length) overflow(byteLength, this.remaining)
    const prefix = byteLength === 1 ? 0 : byteLength === 2 ? 0x40 : 0x80
    for (let i = byteLength - 1; i >= 0; i--) {
      b[o + i] = v
      v >>>= 8
    }
    b[o] |= prefix
    this.offset = o + byteLength
  }

  private varint8(v: number): void {
    const b = this.buf
    const o = this.offset
    if (o + 8 > b.length) overflow(8, this.remaining)
    const hi = Math.floor(v / TWO_32)
    const lo = v >>> 0
    b[o] = 0xc0 | (hi >>> 24)
    b[o + 1] = hi >>> 16
    b[o + 2] = hi >>> 8
    b[o + 3] = hi
    b[o + 4] = lo >>> 24
    b[o + 5] = lo >>> 16
    b[o + 6] = lo >>> 8
    b[o + 7] = lo
    this.offset = o + 8
  }

  /** Copy `src` in. */
  bytes(src: Uint8Array): void {
    const o = this.offset
    if (o + src.length > this.buf.length) overflow(src.length, this.remaining)
    this.buf.set(src, o)
    this.offset = o + src.length
  }

  /** Advances over `n` bytes the caller fills itself; returns their start index. */
  reserve(n: number): number {
    const o = this.offset
    if (o + n > this.buf.length) overflow(n, this.remaining)
    this.offset = o + n
    return o
  }

  /** `n` zero bytes (padding). */
  zeros(n: number): void {
    const o = this.offset
    if (o + n > this.buf.length) overflow(n, this.remaining)
    this.buf.fill(0, o, o + n)
    this.offset = o + n
  }
}

const overflow = (need: number, remaining: number): never => {
  throw new UsageError(ErrorCode.INTERNAL_ERROR, `writer overflow: need ${need} bytes, ${remaining} left`)
}
