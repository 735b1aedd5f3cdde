import fc from 'fast-check'
import t from 'tap'
import { DecodeError, UsageError } from '../../src/core/errors.js'
import { Reader } from '../../src/core/wire/reader.js'
import { varintLength } from '../../src/core/wire/varint.js'
import { Writer } from '../../src/core/wire/writer.js'
import { fcParams, hex, unhex } from './helpers.js'

const encode = (v: number): string => {
  const w = new Writer(8)
  w.varint(v)
  return hex(w.finish())
}
const decode = (h: string): number => new Reader(unhex(h)).varint()

t.test('RFC 9000 §A.1 examples and boundaries', async (t) => {
  t.equal(decode('25'), 37)
  t.equal(decode('4025'), 37, 'non-minimal encoding accepted')
  t.equal(decode('7bbd'), 15293)
  t.equal(decode('9d7f3e7d'), 494878333)
  t.equal(encode(37), '25')
  t.equal(encode(15293), '7bbd')
  t.equal(encode(494878333), '9d7f3e7d')
  const cases: Array<[number, string]> = [
    [0, '00'],
    [63, '3f'],
    [64, '4040'],
    [16383, '7fff'],
    [16384, '80004000'],
    [2 ** 30 - 1, 'bfffffff'],
    [2 ** 30, 'c000000040000000'],
    [2 ** 32, 'c000000100000000'],
    [Number.MAX_SAFE_INTEGER, 'c01fffffffffffff'],
  ]
  for (const [v, h] of cases) {
    t.equal(encode(v), h, `encode ${v}`)
    t.equal(decode(h), v, `decode ${h}`)
    t.equal(varintLength(v), h.length / 2, `length ${v}`)
  }
})

t.test('values beyond 2^53-1 are a DecodeError', async (t) => {
  t.throws(() => decode('c020000000000000'), DecodeError)
  t.throws(() => decode('c2197c5eff14e88c'), DecodeError, 'RFC example 151288809941952652 is not a safe integer')
  t.throws(() => decode('ffffffffffffffff'), DecodeError)
})

t.test('invalid values are a UsageError', async (t) => {
  for (const v of [-1, 1.5, Number.MAX_SAFE_INTEGER + 1, NaN, Infinity, 2 ** 62]) {
    t.throws(() => encode(v), UsageError, `encode ${v}`)
    t.throws(() => varintLength(v), UsageError, `length ${v}`)
  }
})

t.test('varint round trip (property)', async () => {
  fc.assert(
    fc.property(fc.maxSafeNat(), (v) => {
      const w = new Writer(8)
      w.varint(v)
      return w.length === varintLength(v) && new Reader(w.finish()).varint() === v
    }),
    fcParams(5000),
  )
})

t.test('varintFixed writes forced lengths that decode to the same value', async (t) => {
  const w = new Writer(32)
  w.varintFixed(5, 1)
  w.varintFixed(5, 2)
  w.varintFixed(5, 4)
  w.varintFixed(5, 8)
  t.equal(hex(w.finish()), '05' + '4005' + '80000005' + 'c000000000000005')
  const r = new Reader(w.finish())
  for (let i = 0; i < 4; i++) t.equal(r.varint(), 5)
  t.throws(() => new Writer(8).varintFixed(64, 1), UsageError)
  t.throws(() => new Writer(8).varintFixed(2 ** 30, 4), UsageError)
})

t.test('writer: fixed-width integers, finish, overflow throws', async (t) => {
  const w = new Writer(11)
  w.u8(0xab)
  w.u16(0x1234)
  w.u32(0xdeadbeef)
  w.uint(0x0a0b0c, 3)
  t.equal(w.remaining, 1)
  t.equal(hex(w.finish()), 'ab1234deadbeef0a0b0c')
  t.throws(() => w.u16(1), UsageError)
  t.throws(() => w.u32(1), UsageError)
  t.throws(() => w.varint(64), UsageError)
  t.throws(() => w.bytes(new Uint8Array(2)), UsageError)
  t.throws(() => w.zeros(2), UsageError)
  t.throws(() => w.reserve(2), UsageError)
  t.equal(w.offset, 10, 'failed writes leave the offset alone')
  w.u8(1)
  t.throws(() => w.u8(1), UsageError)
  w.reset()
  t.equal(w.length, 0)
})

t.test('writer over a caller buffer starts at the given offset', async (t) => {
  const buf = new Uint8Array(8)
  const w = new Writer(buf, 3)
  w.u16(0xbeef)
  t.equal(hex(w.finish()), 'beef')
  t.equal(hex(buf), '000000beef000000')
  t.throws(() => new Writer(buf, 9), UsageError)
})

t.test('reader: byteOffset-aware views, zero-copy bytes, truncation', async (t) => {
  const backing = unhex('ffff' + '0102030405060708' + 'ffff')
  const view = backing.subarray(2, 10)
  const r = new Reader(view)
  t.equal(r.remaining, 8)
  t.equal(r.u8(), 1)
  t.equal(r.u16(), 0x0203)
  const b = r.bytes(2)
  t.equal(hex(b), '0405')
  t.equal(b.buffer, backing.buffer, 'bytes() is a view, not a copy')
  t.equal(b.byteOffset, 5)
  t.throws(() => r.u32(), DecodeError)
  t.equal(r.offset, 5, 'failed reads leave the offset alone')
  t.equal(r.uint(3), 0x060708)
  t.equal(r.remaining, 0)
  t.throws(() => r.u8(), DecodeError)
  t.throws(() => r.varint(), DecodeError)
  t.throws(() => r.bytes(1), DecodeError)
  t.throws(() => r.skip(1), DecodeError)
  t.throws(() => new Reader(unhex('40')).varint(), DecodeError)
  t.throws(() => new Reader(unhex('80ffff')).varint(), DecodeError)
  t.throws(() => new Reader(unhex('c0ffffffffffff')).varint(), DecodeError)
  t.throws(() => new Reader(view, 4, 9), DecodeError)
  const limited = new Reader(view, 1, 3)
  t.equal(limited.u16(), 0x0203)
  t.throws(() => limited.u8(), DecodeError, 'end bound is respected')
  t.equal(new Reader(unhex('deadbeef')).u32(), 0xdeadbeef, 'u32 is unsigned')
})
