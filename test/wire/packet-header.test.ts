import fc from 'fast-check'
import t from 'tap'
import { DecodeError, UsageError } from '../../src/core/errors.js'
import {
  CID_LENGTH,
  decodePacketHeader,
  encodeLongHeader,
  encodeRetry,
  encodeShortHeader,
  encodeVersionNegotiation,
  isLikelyPigeonPacket,
  longHeaderLength,
  peekDestinationCid,
  retryLength,
  shortHeaderLength,
  VERSION_V1,
  versionNegotiationLength,
  type LongHeaderFields,
} from '../../src/core/wire/packet-header.js'
import type { PnLength } from '../../src/core/wire/pn-encoding.js'
import { Writer } from '../../src/core/wire/writer.js'
import { fcParams, hex, unhex } from './helpers.js'

const dcid = unhex('8394c8f03e515708')
const scid = unhex('f067a5502a4262b5')

t.test('short header round trip for every pn length and key phase', async (t) => {
  for (const pnLength of [1, 2, 3, 4] as PnLength[]) {
    for (const keyPhase of [0, 1] as const) {
      const truncatedPn = 2 ** (8 * pnLength) - 3
      const w = new Writer(64)
      encodeShortHeader(w, { dcid, truncatedPn, pnLength, keyPhase })
      t.equal(w.length, shortHeaderLength(pnLength))
      w.bytes(unhex('0102'))
      const h = decodePacketHeader(w.finish())
      if (h.type !== 'short') throw new Error('expected short')
      t.same({ pn: h.truncatedPn, len: h.pnLength, kp: h.keyPhase, dcid: hex(h.dcid) }, { pn: truncatedPn, len: pnLength, kp: keyPhase, dcid: hex(dcid) })
      t.equal(h.headerLength, 1 + CID_LENGTH + pnLength)
      t.equal(h.payloadOffset, h.headerLength)
      t.equal(h.packetEnd, w.length)
    }
  }
})

t.test('short header rejects reserved bits, a clear fixed bit, truncation', async (t) => {
  const w = new Writer(64)
  encodeShortHeader(w, { dcid, truncatedPn: 1, pnLength: 1, keyPhase: 0 })
  w.u8(1)
  const good = w.finish()
  for (const bit of [0x04, 0x08, 0x10]) {
    const bad = good.slice()
    bad[0] |= bit
    t.throws(() => decodePacketHeader(bad), DecodeError, `reserved bit 0x${bit.toString(16)}`)
  }
  const noFixed = good.slice()
  noFixed[0] &= ~0x40
  t.throws(() => decodePacketHeader(noFixed), DecodeError)
  for (let n = 0; n < 10; n++) t.throws(() => decodePacketHeader(good.subarray(0, n)), DecodeError, `prefix ${n}`)
  t.throws(() => encodeShortHeader(new Writer(64), { dcid: new Uint8Array(4), truncatedPn: 0, pnLength: 1, keyPhase: 0 }), UsageError)
  t.throws(() => encodeShortHeader(new Writer(64), { dcid, truncatedPn: 256, pnLength: 1, keyPhase: 0 }), UsageError)
})

const longFields = (over: Partial<LongHeaderFields> = {}): LongHeaderFields => ({
  type: 'initial',
  dcid,
  scid,
  token: unhex('aabbcc'),
  truncatedPn: 7,
  pnLength: 1,
  payloadLength: 5,
  ...over,
})

t.test('long header round trip (INITIAL, HANDSHAKE) and exact length', async (t) => {
  for (const type of ['initial', 'handshake'] as const) {
    for (const pnLength of [1, 2, 3, 4] as PnLength[]) {
      for (const payloadLength of [0, 1, 61, 70, 1200]) {
        const f = longFields({ type, pnLength, payloadLength, token: type === 'initial' ? unhex('aabbcc') : undefined })
        const w = new Writer(2048)
        encodeLongHeader(w, f)
        t.equal(w.length, longHeaderLength(f))
        w.zeros(payloadLength)
        const h = decodePacketHeader(w.finish())
        if (h.type !== 'initial' && h.type !== 'handshake') throw new Error('expected long')
        t.equal(h.type, type)
        t.equal(h.version, VERSION_V1)
        t.equal(hex(h.dcid), hex(dcid))
        t.equal(hex(h.scid), hex(scid))
        t.equal(hex(h.token), type === 'initial' ? 'aabbcc' : '')
        t.equal(h.pnLength, pnLength)
        t.equal(h.truncatedPn, 7)
        t.equal(h.payloadLength, payloadLength)
        t.equal(h.headerLength, longHeaderLength(f))
        t.equal(h.packetEnd, w.length)
      }
    }
  }
  t.throws(() => encodeLongHeader(new Writer(64), longFields({ type: 'handshake' })), UsageError, 'HANDSHAKE with token')
  t.throws(() => encodeLongHeader(new Writer(64), longFields({ dcid: new Uint8Array(21) })), UsageError)
})

t.test('a forced Length field width decodes the same (builders may patch it)', async (t) => {
  const f = longFields({ payloadLength: 3, lengthFieldBytes: 2 })
  const w = new Writer(128)
  encodeLongHeader(w, f)
  t.equal(w.length, longHeaderLength(f))
  w.bytes(unhex('010000'))
  const h = decodePacketHeader(w.finish())
  t.equal(h.type, 'initial')
  t.equal(h.packetEnd, w.length)
})

t.test('coalesced packets: INITIAL + HANDSHAKE + short in one datagram', async (t) => {
  const w = new Writer(512)
  encodeLongHeader(w, longFields({ payloadLength: 2 }))
  w.bytes(unhex('0100'))
  const second = w.offset
  encodeLongHeader(w, longFields({ type: 'handshake', token: undefined, payloadLength: 3, pnLength: 2, truncatedPn: 0x0102 }))
  w.bytes(unhex('010000'))
  const third = w.offset
  encodeShortHeader(w, { dcid, truncatedPn: 9, pnLength: 1, keyPhase: 0 })
  w.bytes(unhex('01'))
  const d = w.finish()
  const h1 = decodePacketHeader(d, 0)
  t.equal(h1.packetEnd, second)
  const h2 = decodePacketHeader(d, h1.packetEnd)
  t.equal(h2.type, 'handshake')
  t.equal(h2.packetStart, second)
  t.equal(h2.packetEnd, third)
  t.equal(hex(d.subarray(h2.payloadOffset, h2.packetEnd)), '010000')
  const h3 = decodePacketHeader(d, h2.packetEnd)
  t.equal(h3.type, 'short')
  t.equal(h3.packetEnd, d.length)
  t.equal(h3.headerLength, 10)
  t.equal(h3.payloadOffset, third + 10)
})

t.test('long header errors', async (t) => {
  const w = new Writer(128)
  encodeLongHeader(w, longFields({ payloadLength: 2 }))
  w.bytes(unhex('0100'))
  const good = w.finish().slice()
  for (let n = 0; n < good.length; n++) t.throws(() => decodePacketHeader(good.subarray(0, n)), DecodeError, `prefix ${n}`)
  const mutate = (fn: (b: Uint8Array) => void): Uint8Array => {
    const b = good.slice()
    fn(b)
    return b
  }
  t.throws(() => decodePacketHeader(mutate((b) => (b[0] |= 0x30))), DecodeError, 'type 3 reserved')
  t.throws(() => decodePacketHeader(mutate((b) => (b[0] |= 0x04))), DecodeError, 'reserved bit')
  t.throws(() => decodePacketHeader(mutate((b) => (b[0] &= ~0x40))), DecodeError, 'fixed bit')
  t.throws(() => decodePacketHeader(mutate((b) => (b[5] = 21))), DecodeError, 'dcid too long')
  // Length field (after token) says 1 < pnLength 2.
  const lenAt = 1 + 4 + 1 + 8 + 1 + 8 + 1 + 3
  t.throws(() => decodePacketHeader(mutate((b) => { b[0] |= 0x01; b[lenAt] = 1 })), DecodeError, 'length < pn length')
  t.throws(() => decodePacketHeader(mutate((b) => (b[lenAt] = 40))), DecodeError, 'length beyond datagram')
})

t.test('retry: token is the rest of the datagram', async (t) => {
  const f = { dcid: scid, scid: dcid, token: unhex('0102030405') }
  const w = new Writer(128)
  encodeRetry(w, f)
  t.equal(w.length, retryLength(f))
  const h = decodePacketHeader(w.finish())
  if (h.type !== 'retry') throw new Error('expected retry')
  t.equal(hex(h.token), '0102030405')
  t.equal(h.packetEnd, w.length)
  t.equal(h.headerLength, w.length)
  t.throws(() => decodePacketHeader(w.finish().subarray(0, w.length - 5)), DecodeError, 'empty token')
  const bad = w.finish().slice()
  bad[0] |= 0x01
  t.throws(() => decodePacketHeader(bad), DecodeError, 'retry with pn bits')
  t.throws(() => encodeRetry(new Writer(64), { ...f, token: new Uint8Array(0) }), UsageError)
})

t.test('version negotiation and unsupported versions', async (t) => {
  const f = { dcid: scid, scid: dcid, versions: [VERSION_V1, 0x50470002] }
  const w = new Writer(128)
  encodeVersionNegotiation(w, f)
  t.equal(w.length, versionNegotiationLength(f))
  const vn = w.finish().slice()
  const h = decodePacketHeader(vn)
  if (h.type !== 'version-negotiation') throw new Error('expected VN')
  t.same(h.versions, f.versions)
  t.equal(h.packetEnd, vn.length)
  vn[0] = 0x80 | 0x2b
  t.equal(decodePacketHeader(vn).type, 'version-negotiation', 'low 7 bits of byte 0 are ignored')
  t.throws(() => decodePacketHeader(vn.subarray(0, vn.length - 1)), DecodeError, 'partial version')
  t.throws(() => decodePacketHeader(vn.subarray(0, vn.length - 8)), DecodeError, 'empty list')
  t.throws(() => encodeVersionNegotiation(new Writer(64), { dcid, scid, versions: [] }), UsageError)

  const u = new Writer(128)
  encodeLongHeader(u, longFields({ version: 0x0a0a0a0a, payloadLength: 1 }))
  u.bytes(unhex('ff'))
  const uh = decodePacketHeader(u.finish())
  if (uh.type !== 'unsupported-version') throw new Error('expected unsupported-version')
  t.equal(uh.version, 0x0a0a0a0a)
  t.equal(hex(uh.dcid), hex(dcid))
  t.equal(hex(uh.scid), hex(scid))
  t.equal(uh.packetEnd, u.length)
})

t.test('peekDestinationCid and isLikelyPigeonPacket', async (t) => {
  const s = new Writer(64)
  encodeShortHeader(s, { dcid, truncatedPn: 0, pnLength: 1, keyPhase: 0 })
  t.equal(hex(peekDestinationCid(s.finish())!), hex(dcid))
  const l = new Writer(64)
  encodeLongHeader(l, longFields({ dcid: unhex('0102'), payloadLength: 0 }))
  t.equal(hex(peekDestinationCid(l.finish())!), '0102')
  t.equal(peekDestinationCid(new Uint8Array(0)), undefined)
  t.equal(peekDestinationCid(unhex('40010203')), undefined)
  t.equal(peekDestinationCid(unhex('c05047000108010203')), undefined)
  t.equal(peekDestinationCid(unhex('c05047000115')), undefined)
  t.equal(isLikelyPigeonPacket(0x40), true)
  t.equal(isLikelyPigeonPacket(0xc0), true)
  t.equal(isLikelyPigeonPacket(0x80), false)
  t.equal(isLikelyPigeonPacket(0x00), false)
})

t.test('random bytes never throw anything but DecodeError (property)', async () => {
  const check = (bytes: Uint8Array, offset: number): boolean => {
    try {
      const h = decodePacketHeader(bytes, Math.min(offset, bytes.length))
      return h.packetEnd <= bytes.length && h.payloadOffset <= h.packetEnd
    } catch (err) {
      if (err instanceof DecodeError) return true
      throw err
    }
  }
  fc.assert(fc.property(fc.uint8Array({ maxLength: 80 }), fc.nat(4), check), fcParams(10000))
  // Biased towards plausible headers: valid first bytes and our version.
  const plausible = fc
    .tuple(fc.constantFrom(0x40, 0x63, 0xc0, 0xc3, 0xd1, 0xe0, 0xf0), fc.boolean(), fc.uint8Array({ maxLength: 60 }))
    .map(([b0, v1, rest]) => {
      const head = (b0 & 0x80) !== 0 && v1 ? [b0, 0x50, 0x47, 0x00, 0x01] : [b0]
      return Uint8Array.from([...head, ...rest])
    })
  fc.assert(fc.property(plausible, (b) => check(b, 0)), fcParams(10000))
})
