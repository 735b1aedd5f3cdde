import fc from 'fast-check'
import { StreamKind, isValidStreamKind, streamKindOf } from '../../src/core/streams/stream-kind.js'
import { isDeepStrictEqual } from 'node:util'
import t from 'tap'
import { DecodeError, UsageError } from '../../src/core/errors.js'
import {
  ackFrameLimitedRanges,
  ackLength,
  decodeFrame,
  decodeFrames,
  encodeFrame,
  FrameType,
  frameLength,
  isAckEliciting,
  messageOverhead,
  type AckFrame,
  type Frame,
  type MessageFrame,
} from '../../src/core/wire/frames/index.js'
import { Reader } from '../../src/core/wire/reader.js'
import { decodeTransportParams, encodeTransportParams, resolveTransportParams, TRANSPORT_PARAM_DEFAULTS } from '../../src/core/wire/transport-params.js'
import { Writer } from '../../src/core/wire/writer.js'
import { frame, framesForPayload, transportParams } from './arbitraries.js'
import { fcParams, hex, unhex } from './helpers.js'

const encode = (f: Frame): Uint8Array => {
  const w = new Writer(8192)
  encodeFrame(w, f)
  return w.finish()
}

/** Compare frames with Uint8Arrays as hex; drops MESSAGE.hasLength defaults. */
const norm = (f: unknown): unknown => {
  if (f instanceof Uint8Array) return hex(f)
  if (Array.isArray(f)) return f.map(norm)
  if (f && typeof f === 'object') {
    const o: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(f)) o[k] = norm(v)
    if (o.type === FrameType.MESSAGE && o.hasLength === undefined) o.hasLength = true
    return o
  }
  return f
}

t.test('every random valid frame round trips with the exact length (property)', async (t) => {
  fc.assert(
    fc.property(frame, (f) => {
      const bytes = encode(f)
      if (bytes.length !== frameLength(f)) throw new Error(`length ${bytes.length} != frameLength ${frameLength(f)}`)
      const r = new Reader(bytes)
      const back = decodeFrame(r)
      if (r.remaining !== 0) throw new Error('decoder left bytes')
      t.same(norm(back), norm(f))
      return hex(encode(back)) === hex(bytes)
    }),
    fcParams(3000),
  )
})

t.test('random payloads of frames decode in order (property)', async () => {
  fc.assert(
    fc.property(framesForPayload, (frames) => {
      const w = new Writer(65536)
      let total = 0
      for (const f of frames) {
        encodeFrame(w, f)
        total += frameLength(f)
      }
      if (w.length !== total) return false
      const back = decodeFrames(w.finish())
      return isDeepStrictEqual(norm(back), norm(frames))
    }),
    fcParams(2000),
  )
})

t.test('random bytes into decodeFrames throw only DecodeError (property)', async () => {
  const check = (bytes: Uint8Array): boolean => {
    try {
      decodeFrames(bytes)
    } catch (err) {
      if (err instanceof DecodeError) return true
      throw err
    }
    return true
  }
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), check), fcParams(10000))
  // Mostly-valid type bytes to get past the first switch more often.
  const biased = fc
    .tuple(fc.integer({ min: 0, max: 0x1c }), fc.uint8Array({ maxLength: 48 }))
    .map(([type, rest]) => Uint8Array.from([type, ...rest]))
  fc.assert(fc.property(biased, check), fcParams(20000))
})

t.test('reserved and unknown frame types are DecodeErrors', async (t) => {
  for (const type of [0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x14, 0x15, 0x16, 0x17, 0x1b, 0x1f, 0x3f, 0x40, 0x41, 0x80, 0xc0, 0xff]) {
    t.throws(() => decodeFrames(Uint8Array.from([type, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])), DecodeError, `type 0x${type.toString(16)}`)
  }
  t.throws(() => decodeFrames(unhex('4001')), DecodeError, 'PING in a 2-byte varint is rejected')
})

t.test('PADDING runs collapse; PING is not ack-eliciting-neutral', async (t) => {
  const frames = decodeFrames(unhex('0000000100'))
  t.same(frames, [{ type: FrameType.PADDING, length: 3 }, { type: FrameType.PING }, { type: FrameType.PADDING, length: 1 }])
  t.same(frames.map(isAckEliciting), [false, true, false])
  t.equal(isAckEliciting({ type: FrameType.ACK, largestAcked: 0, ackDelayMicros: 0, ranges: [{ smallest: 0, largest: 0 }] }), false)
  t.equal(isAckEliciting({ type: FrameType.CLOSE, errorCode: 0, reason: '' }), false)
  t.equal(isAckEliciting({ type: FrameType.MAX_DATA, maximum: 1 }), true)
})

const ack = (ranges: Array<[number, number]>, ackDelayMicros = 0): AckFrame => ({
  type: FrameType.ACK,
  largestAcked: ranges[0]?.[1] ?? 0,
  ackDelayMicros,
  ranges: ranges.map(([smallest, largest]) => ({ smallest, largest })),
})

t.test('ACK encoding validates the ranges', async (t) => {
  const w = () => new Writer(256)
  t.throws(() => encodeFrame(w(), ack([])), UsageError, 'no range')
  t.throws(() => encodeFrame(w(), ack([[5, 4]])), UsageError, 'smallest > largest')
  t.throws(() => encodeFrame(w(), ack([[5, 9], [1, 4]])), UsageError, 'adjacent ranges')
  t.throws(() => encodeFrame(w(), ack([[5, 9], [1, 6]])), UsageError, 'overlapping ranges')
  t.throws(() => encodeFrame(w(), ack([[1, 2], [5, 9]])), UsageError, 'ascending ranges')
  t.throws(() => encodeFrame(w(), ack([[-1, 2]])), UsageError, 'negative')
  t.throws(() => encodeFrame(w(), { ...ack([[1, 2]]), largestAcked: 3 }), UsageError, 'largestAcked mismatch')
  t.throws(() => encodeFrame(w(), ack([[1, 2]], -8)), UsageError, 'negative delay')
  const ok = encode(ack([[5, 9], [1, 3]], 1001))
  t.equal(hex(ok), '0209' + '407d' + '01' + '04' + '00' + '02', 'gap 0 = one missing packet; delay rounds down to 1000 us')
  const back = decodeFrame(new Reader(ok)) as AckFrame
  t.equal(back.ackDelayMicros, 1000)
})

t.test('ACK decoding rejects ranges below zero and absurd counts', async (t) => {
  t.throws(() => decodeFrames(unhex('0205000006')), DecodeError, 'first range below 0')
  t.throws(() => decodeFrames(unhex('020a000102' + '07' + '00')), DecodeError, 'gap below 0')
  t.throws(() => decodeFrames(unhex('020a000102' + '01' + '06')), DecodeError, 'second range below 0')
  t.same(decodeFrames(unhex('020a000102' + '01' + '05')), [ack([[8, 10], [0, 5]])], 'reaching exactly 0 is fine')
  t.same(decodeFrames(unhex('020a000102' + '06' + '00')), [ack([[8, 10], [0, 0]])], 'gap down to packet 0')
  t.throws(() => decodeFrames(unhex('020a00bfffffff00')), DecodeError, 'rangeCount larger than the frame')
  t.throws(() => decodeFrames(unhex('0200c01fffffffffffff0000')), DecodeError, 'ack delay overflows microseconds')
})

t.test('ackFrameLimitedRanges keeps the newest ranges that fit', async (t) => {
  const ranges: Array<[number, number]> = []
  for (let i = 0; i < 100; i++) ranges.push([10000 - i * 100 - 50, 10000 - i * 100])
  const f = ack(ranges, 5000)
  const full = ackLength(f)
  t.equal(ackFrameLimitedRanges(f, full), f, 'fits entirely: same object')
  for (const budget of [7, 8, 12, 30, 64, 100, 200, full - 1]) {
    const lim = ackFrameLimitedRanges(f, budget)
    if (lim === undefined) {
      t.ok(ackLength(ack(ranges.slice(0, 1), 5000)) > budget, `nothing fits in ${budget}`)
      continue
    }
    t.ok(ackLength(lim) <= budget, `fits in ${budget}`)
    t.ok(lim.ranges.length < 100)
    const oneMore = ack(ranges.slice(0, lim.ranges.length + 1), 5000)
    t.ok(ackLength(oneMore) > budget, `maximal for ${budget}`)
    t.same(lim.ranges, f.ranges.slice(0, lim.ranges.length))
  }
  // rangeCount varint growing from 1 to 2 bytes at 64 ranges is accounted for.
  const many: Array<[number, number]> = []
  for (let i = 0; i < 70; i++) many.push([1000 - i * 3, 1000 - i * 3])
  const g = ack(many)
  for (let budget = 100; budget < ackLength(g); budget++) {
    const lim = ackFrameLimitedRanges(g, budget)!
    t.ok(ackLength(lim) <= budget && ackLength(ack(many.slice(0, lim.ranges.length + 1))) > budget, `budget ${budget}`)
  }
})

t.test('CLOSE reason: UTF-8, max 1024 bytes', async (t) => {
  const reason = 'é'.repeat(512)
  t.equal(encode({ type: FrameType.CLOSE, errorCode: 1, reason }).length, 1 + 1 + 2 + 1024)
  t.throws(() => encode({ type: FrameType.CLOSE, errorCode: 1, reason: reason + 'x' }), UsageError)
  t.throws(() => decodeFrames(unhex('0301' + '4401' + '00'.repeat(1025))), DecodeError, 'reason over 1024 bytes')
  t.throws(() => decodeFrames(unhex('030102c328')), DecodeError, 'invalid UTF-8')
  t.throws(() => decodeFrames(unhex('030103eda080')), DecodeError, 'encoded surrogate')
  for (const s of ['\ud800', 'a\udc00b', '😀', '\ufeffbom', 'x\u0000y']) {
    const f: Frame = { type: FrameType.CLOSE, errorCode: 3, reason: s }
    const bytes = encode(f)
    t.equal(bytes.length, frameLength(f), `length of ${JSON.stringify(s)}`)
    const back = decodeFrame(new Reader(bytes))
    t.equal((back as { reason: string }).reason, s.replace(/[\ud800-\udfff]/g, (c, i: number, all: string) => {
      const code = c.charCodeAt(0)
      const isPairHigh = code < 0xdc00 && /[\udc00-\udfff]/.test(all[i + 1] ?? '')
      const isPairLow = code >= 0xdc00 && /[\ud800-\udbff]/.test(all[i - 1] ?? '')
      return isPairHigh || isPairLow ? c : '\ufffd'
    }))
  }
})

const msg = (over: Partial<MessageFrame>): MessageFrame => ({
  type: FrameType.MESSAGE,
  streamId: 0,
  msgSeq: 0,
  msgLength: 4,
  fragOffset: 0,
  data: unhex('01020304'),
  ...over,
})

t.test('MESSAGE: flags, validation, no-LEN runs to the end, zero copy', async (t) => {
  t.equal(encode(msg({}))[0], 0x12, 'whole message: LEN only')
  t.equal(encode(msg({ hasLength: false }))[0], 0x10)
  t.equal(encode(msg({ msgLength: 10 }))[0], 0x13, 'shorter than msgLength: FRAG')
  t.equal(encode(msg({ msgLength: 10, fragOffset: 6 }))[0], 0x13)
  t.equal(encode(msg({ msgLength: 10, fragOffset: 6, hasLength: false }))[0], 0x11)
  t.throws(() => encode(msg({ msgLength: 3 })), UsageError)
  t.throws(() => encode(msg({ msgLength: 10, fragOffset: 7 })), UsageError)
  t.throws(() => decodeFrames(unhex('13000005030401020304')), DecodeError, 'fragOffset + data > msgLength')
  t.throws(() => decodeFrames(unhex('1100000503' + '010203')), DecodeError, 'no-LEN data past msgLength')
  const datagram = unhex('ffff' + '0100' + '1000070102030405')
  const frames = decodeFrames(datagram.subarray(2))
  const m = frames[2] as MessageFrame
  t.same(norm(m), norm({ ...msg({ msgSeq: 7, msgLength: 5, data: unhex('0102030405') }), hasLength: false }))
  t.equal(m.data.buffer, datagram.buffer, 'data is a view on the datagram')
  t.equal(m.data.byteOffset, 7)
  const o = { streamId: 300, msgSeq: 70000, msgLength: 5000, fragOffset: 1200, dataLength: 1100 }
  t.equal(messageOverhead(o) + o.dataLength, frameLength(msg({ ...o, data: new Uint8Array(1100) })))
  t.equal(messageOverhead({ ...o, hasLength: false }) + o.dataLength, frameLength(msg({ ...o, data: new Uint8Array(1100), hasLength: false })))
})

t.test('PATH_* need 8 bytes; NEW_TOKEN must not be empty', async (t) => {
  t.throws(() => encode({ type: FrameType.PATH_CHALLENGE, data: new Uint8Array(7) }), UsageError)
  t.throws(() => encode({ type: FrameType.PATH_RESPONSE, data: new Uint8Array(9) }), UsageError)
  t.throws(() => encode({ type: FrameType.NEW_TOKEN, token: new Uint8Array(0) }), UsageError)
  t.throws(() => decodeFrames(unhex('1a00')), DecodeError)
})

t.test('transport parameters: unknown ids skipped, duplicates and bad values rejected', async (t) => {
  const w = new Writer(64)
  encodeTransportParams(w, { maxStreams: 16 })
  t.equal(hex(w.finish()), '050110')
  t.same(decodeTransportParams(unhex('2003aabbcc' + '050110' + '4123' + '00')), { maxStreams: 16 }, 'unknown ids 0x20 and 0x123 skipped')
  t.throws(() => decodeTransportParams(unhex('050110050111')), DecodeError, 'duplicate known id')
  t.throws(() => decodeTransportParams(unhex('20010020020000')), DecodeError, 'duplicate unknown id')
  t.throws(() => decodeTransportParams(unhex('0500')), DecodeError, 'empty value')
  t.throws(() => decodeTransportParams(unhex('05021000')), DecodeError, 'value longer than its varint')
  t.throws(() => decodeTransportParams(unhex('050140')), DecodeError, 'varint longer than the value')
  t.same(decodeTransportParams(unhex('05024010')), { maxStreams: 16 }, 'non-minimal varint inside the TLV is fine')
  t.throws(() => decodeTransportParams(unhex('0504')), DecodeError, 'truncated')
  t.same(decodeTransportParams(new Uint8Array(0)), {})
  t.same(resolveTransportParams({ maxStreams: 3 }), { ...TRANSPORT_PARAM_DEFAULTS, maxStreams: 3 })
  fc.assert(
    fc.property(transportParams, (p) => {
      const w = new Writer(256)
      encodeTransportParams(w, p)
      return isDeepStrictEqual(decodeTransportParams(w.finish()), { ...p })
    }),
    fcParams(2000),
  )
})

t.test('stream kinds from the low two bits', async (t) => {
  t.equal(streamKindOf(0), StreamKind.ordered)
  t.equal(streamKindOf(5), StreamKind.unordered)
  t.equal(streamKindOf(2 ** 40 + 2), StreamKind.realtime)
  t.equal(isValidStreamKind(7), false)
  t.equal(isValidStreamKind(2 ** 40 + 3), false)
})
