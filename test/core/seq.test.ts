/**
 * Wrap-safe 32-bit serial arithmetic and truncated-counter expansion (src/core/seq.ts),
 * checked across the 2^32 wrap and against the packet-number decoder it generalises.
 */
import fc from 'fast-check'
import t from 'tap'
import { expandTruncated, seqAdd32, seqDiff32, seqLessOrEqual32, seqLessThan32 } from '../../src/core/seq.js'
import { decodePacketNumber, encodeTruncated, type PnLength } from '../../src/core/wire/pn-encoding.js'
import { fcParams } from '../wire/helpers.js'

const TWO_32 = 2 ** 32
const MAX_U32 = 0xffffffff

t.test('seqDiff32 is a signed distance modulo 2^32', async (t) => {
  t.equal(seqDiff32(5, 3), 2)
  t.equal(seqDiff32(3, 5), -2)
  t.equal(seqDiff32(0, MAX_U32), 1, '0 is one after 0xffffffff')
  t.equal(seqDiff32(MAX_U32, 0), -1)
  t.equal(seqDiff32(10, MAX_U32 - 9), 20)
  t.equal(seqDiff32(0x7fffffff, 0), 0x7fffffff, 'largest forward distance')
  t.equal(seqDiff32(0x80000001, 0), -0x7fffffff, 'past half the space it counts backwards')
  t.equal(seqDiff32(TWO_32 + 7, 5), 2, 'values above 2^32 are reduced modulo 2^32')
})

t.test('seqLessThan32 / seqLessOrEqual32 across the wrap', async (t) => {
  t.ok(seqLessThan32(MAX_U32, 0))
  t.notOk(seqLessThan32(0, MAX_U32))
  t.ok(seqLessThan32(MAX_U32 - 100, 100))
  t.notOk(seqLessThan32(100, MAX_U32 - 100))
  t.notOk(seqLessThan32(7, 7))
  t.ok(seqLessOrEqual32(7, 7))
  t.ok(seqLessOrEqual32(MAX_U32, 0))
  t.notOk(seqLessOrEqual32(0, MAX_U32))
})

t.test('seqAdd32 wraps to unsigned 32 bits', async (t) => {
  t.equal(seqAdd32(MAX_U32, 1), 0)
  t.equal(seqAdd32(MAX_U32, 10), 9)
  t.equal(seqAdd32(0, -1), MAX_U32)
  t.equal(seqAdd32(5, 0), 5)
  t.equal(seqAdd32(0x80000000, 0x80000000), 0)
})

t.test('serial arithmetic properties', async () => {
  const u32 = fc.integer({ min: 0, max: MAX_U32 })
  const delta = fc.integer({ min: -0x7fffffff, max: 0x7fffffff })
  fc.assert(
    fc.property(u32, delta, (a, d) => {
      const b = seqAdd32(a, d)
      if (b < 0 || b > MAX_U32) return false
      // The distance survives the wrap exactly, and order agrees with its sign.
      if (seqDiff32(b, a) !== d) return false
      if (seqLessThan32(a, b) !== d > 0) return false
      if (seqLessOrEqual32(a, b) !== d >= 0) return false
      return seqLessThan32(b, a) === d < 0
    }),
    fcParams(5000),
  )
})

t.test('expandTruncated: RFC 9000 A.3 example and simple cases', async (t) => {
  t.equal(expandTruncated(0x9b32, 16, 0xa82f30ea + 1), 0xa82f9b32)
  t.equal(expandTruncated(0, 8, 0), 0)
  t.equal(expandTruncated(0xff, 8, 0), 0xff, 'never expands below zero')
  // expected 0x100: window (0x80, 0x180]
  t.equal(expandTruncated(0x80, 8, 0x100), 0x180, 'exactly half a window below goes up')
  t.equal(expandTruncated(0x81, 8, 0x100), 0x81)
  t.equal(expandTruncated(0x7f, 8, 0x100), 0x17f)
  t.equal(expandTruncated(0x00, 8, 0x100), 0x100)
})

t.test('expandTruncated across the 2^32 wrap and above it', async (t) => {
  const wrong: string[] = []
  for (const bits of [8, 16, 24, 32]) {
    const win = 2 ** bits
    for (let full = TWO_32 - 300; full < TWO_32 + 300; full += 13) {
      for (const offset of [-(win / 2) + 1, -20, -1, 0, 1, 20, win / 2]) {
        const expected = full - offset
        const got = expandTruncated(full % win, bits, expected)
        if (got !== full) wrong.push(`bits=${bits} full=${full} expected=${expected} got=${got}`)
      }
    }
  }
  t.same(wrong, [], 'every value within the half window of expected expands to itself')
  t.equal(expandTruncated(0x00000002, 32, MAX_U32), TWO_32 + 2, 'small value just after the wrap')
  t.equal(expandTruncated(0xfffffffe, 32, TWO_32 + 1), 0xfffffffe, 'large value just before the wrap')
  t.equal(expandTruncated(0x10, 8, 2 ** 40 + 0xf0), 2 ** 40 + 0x110, 'far above 2^32')
  t.equal(expandTruncated(0xabcdef, 24, 2 ** 52 + 0xabcdee), 2 ** 52 + 0xabcdef)
})

t.test('expandTruncated with bits=32 and a truncated value >= 2^31', async (t) => {
  // Regression: `truncated & mask` (a signed 32-bit operation) made these negative.
  t.equal(expandTruncated(0xffffffff, 32, 0), 0xffffffff)
  t.equal(expandTruncated(0x90000000, 32, 10), 0x90000000)
  t.equal(expandTruncated(0x80000001, 32, 0), 0x80000001)
  t.equal(expandTruncated(0x80000000, 32, 0), 0x80000000, 'exactly half a window above expected stays')
  t.equal(expandTruncated(0xffffffff, 32, TWO_32 * 5), TWO_32 * 5 - 1)
})

/** Reference expansion in exact BigInt arithmetic: the x = t (mod 2^bits) in (expected - half, expected + half], else the next one up when that is negative. */
const referenceExpand = (truncated: number, bits: number, expected: number): number => {
  const win = 1n << BigInt(bits)
  const half = win / 2n
  const e = BigInt(expected)
  const tr = BigInt(truncated) % win
  // smallest x = tr (mod win) with x > e - half
  const low = e - half + 1n
  let x = low + ((((tr - low) % win) + win) % win)
  if (x < 0n) x += win
  return Number(x)
}

t.test('expandTruncated(truncate(x)) === x within the half window (property)', async () => {
  const bitsArb = fc.constantFrom(8, 16, 24, 32)
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 52 }), bitsArb, fc.double({ min: -1, max: 1, noNaN: true }), (full, bits, frac) => {
      const win = 2 ** bits
      const half = win / 2
      // expected in [full - half + 1, full + half]: x lies in (expected - half, expected + half].
      const offset = Math.max(-half + 1, Math.min(half, Math.round(frac * half)))
      const expected = full - offset
      if (expected < 0) return true
      return expandTruncated(full % win, bits, expected) === full
    }),
    fcParams(10_000),
  )
})

t.test('expandTruncated(truncate(x), 32) === x within the half window (property)', async () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 52 }), fc.integer({ min: -(2 ** 31) + 1, max: 2 ** 31 }), (full, offset) => {
      const expected = full - offset
      if (expected < 0) return true
      return expandTruncated(full % TWO_32, 32, expected) === full
    }),
    fcParams(10_000),
  )
})

t.test('expandTruncated matches an exact reference for any input (property)', async () => {
  fc.assert(
    fc.property(fc.constantFrom(8, 16, 24, 32), fc.integer({ min: 0, max: 2 ** 52 }), fc.nat({ max: 2 ** 32 - 1 }), (bits, expected, raw) => {
      const truncated = raw % 2 ** bits
      return expandTruncated(truncated, bits, expected) === referenceExpand(truncated, bits, expected)
    }),
    fcParams(20_000),
  )
  // The same near zero and near the wrap, where the corner cases live.
  fc.assert(
    fc.property(
      fc.constantFrom(8, 16, 24, 32),
      fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: TWO_32 - 1000, max: TWO_32 + 1000 }), fc.integer({ min: 2 ** 31 - 1000, max: 2 ** 31 + 1000 })),
      fc.oneof(fc.nat({ max: 2 ** 32 - 1 }), fc.integer({ min: 2 ** 32 - 300, max: 2 ** 32 - 1 }), fc.nat({ max: 300 })),
      (bits, expected, raw) => {
        const truncated = raw % 2 ** bits
        return expandTruncated(truncated, bits, expected) === referenceExpand(truncated, bits, expected)
      },
    ),
    fcParams(20_000),
  )
})

t.test('decodePacketNumber round-trips encodeTruncated at every length (property)', async () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 52 }), fc.constantFrom<PnLength>(1, 2, 3, 4), fc.double({ min: -1, max: 1, noNaN: true }), (full, len, frac) => {
      const half = 2 ** (8 * len - 1)
      const back = Math.max(-half + 1, Math.min(half, Math.round(frac * half)))
      const largestReceived = full - back - 1 // expected = full - back
      if (largestReceived < -1) return true
      const got = decodePacketNumber({ truncated: encodeTruncated(full, len), lengthBytes: len, largestReceived: largestReceived < 0 ? undefined : largestReceived })
      return got === full
    }),
    fcParams(10_000),
  )
})
