import fc from 'fast-check'
import t from 'tap'
import { DecodeError, UsageError } from '../../src/core/errors.js'
import { decodePacketNumber, encodeTruncated, packetNumberLength, type PnLength } from '../../src/core/wire/pn-encoding.js'
import { fcParams } from './helpers.js'

const TWO_32 = 2 ** 32

t.test('length grows with the number of unacknowledged packets', async (t) => {
  t.equal(packetNumberLength(0, undefined), 1)
  t.equal(packetNumberLength(126, undefined), 1)
  t.equal(packetNumberLength(127, undefined), 2, '128 unacked need 2 bytes')
  t.equal(packetNumberLength(1000, 873), 1, '127 unacked fit one byte')
  t.equal(packetNumberLength(1000, 872), 2)
  t.equal(packetNumberLength(0x8000 + 10, 11), 2)
  t.equal(packetNumberLength(0x8000 + 10, 10), 3)
  t.equal(packetNumberLength(0x800000 + 10, 10), 4)
  t.equal(packetNumberLength(TWO_32 + 5, TWO_32 - 16), 1, 'across 2^32 only the distance matters')
  t.throws(() => packetNumberLength(0x80000000 + 10, 10), UsageError, '2^31 unacked cannot be encoded')
  t.throws(() => packetNumberLength(5, 5), UsageError, 'pn must exceed largest acked')
  t.throws(() => packetNumberLength(-1, undefined), UsageError)
})

t.test('truncation keeps the low bytes, also above 2^32', async (t) => {
  t.equal(encodeTruncated(0xac5c02, 2), 0x5c02)
  t.equal(encodeTruncated(TWO_32 + 0x1234, 2), 0x1234)
  t.equal(encodeTruncated(TWO_32 * 3 + 0xdeadbeef, 4), 0xdeadbeef)
  t.equal(encodeTruncated(2 ** 52 + 0xabcdef, 3), 0xabcdef)
})

t.test('RFC 9000 A.3 example and window edges', async (t) => {
  t.equal(decodePacketNumber({ truncated: 0x9b32, lengthBytes: 2, largestReceived: 0xa82f30ea }), 0xa82f9b32)
  t.equal(decodePacketNumber({ truncated: 0, lengthBytes: 1, largestReceived: undefined }), 0)
  t.equal(decodePacketNumber({ truncated: 0xff, lengthBytes: 1, largestReceived: undefined }), 0xff, 'no wrap below 0')
  // expected = 0x100; window [0x80 .. 0x17f]
  t.equal(decodePacketNumber({ truncated: 0x80, lengthBytes: 1, largestReceived: 0xff }), 0x180, 'exactly hwin below expected goes up')
  t.equal(decodePacketNumber({ truncated: 0x81, lengthBytes: 1, largestReceived: 0xff }), 0x81)
  t.equal(decodePacketNumber({ truncated: 0x7f, lengthBytes: 1, largestReceived: 0xff }), 0x17f)
  t.throws(() => decodePacketNumber({ truncated: 256, lengthBytes: 1, largestReceived: 0 }), DecodeError)
})

t.test('across the 2^32 boundary', async (t) => {
  for (const len of [1, 2, 3, 4] as PnLength[]) {
    for (let full = TWO_32 - 300; full < TWO_32 + 300; full += 7) {
      for (const back of [1, 2, 50]) {
        const largestReceived = full - back
        const truncated = encodeTruncated(full, len)
        t.equal(decodePacketNumber({ truncated, lengthBytes: len, largestReceived }), full)
        // A late packet (already below largest received) also expands correctly.
        const late = full - 20
        t.equal(decodePacketNumber({ truncated: encodeTruncated(late, len), lengthBytes: len, largestReceived: full }), late)
      }
    }
  }
})

t.test('encode/decode round trip for any in-window packet (property)', async () => {
  const pnLen = fc.constantFrom<PnLength>(1, 2, 3, 4)
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 52 }), fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.integer({ min: 0, max: 1000 }), (largestAcked, distance, extraReceived) => {
      const full = largestAcked + distance
      const len = packetNumberLength(full, largestAcked)
      // The receiver has seen anything between largestAcked and full-1.
      const largestReceived = Math.min(full - 1, largestAcked + extraReceived)
      const truncated = encodeTruncated(full, len)
      return decodePacketNumber({ truncated, lengthBytes: len, largestReceived }) === full
    }),
    fcParams(5000),
  )
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 52 }), pnLen, fc.integer({ min: -127, max: 127 }), (expectedBase, len, delta) => {
      // Any packet within ±(window/2 - 1) of expected decodes to itself.
      const hwin = 2 ** (8 * len - 1)
      const scaled = Math.trunc((delta / 128) * (hwin - 1))
      const largestReceived = expectedBase + hwin
      const full = largestReceived + 1 + scaled
      return decodePacketNumber({ truncated: encodeTruncated(full, len), lengthBytes: len, largestReceived }) === full
    }),
    fcParams(5000),
  )
})
