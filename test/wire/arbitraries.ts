/** fast-check generators for valid frames (shared by the frame property tests). */
import fc from 'fast-check'
import { FrameType, type AckRange, type Frame } from '../../src/core/wire/frames/index.js'
import type { TransportParams } from '../../src/core/wire/transport-params.js'

const varintValue = fc.oneof(
  fc.integer({ min: 0, max: 63 }),
  fc.integer({ min: 0, max: 16383 }),
  fc.integer({ min: 0, max: 2 ** 30 - 1 }),
  fc.maxSafeNat(),
)

/** Descending, non-adjacent ranges built from (gap, length) pairs below a largest. */
export const ackRanges = fc
  .tuple(fc.integer({ min: 0, max: 2 ** 40 }), fc.array(fc.tuple(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: 1000 })), { minLength: 1, maxLength: 40 }))
  .map(([largest, pairs]) => {
    const ranges: AckRange[] = []
    let top = largest
    for (const [gap, len] of pairs) {
      const smallest = top - len
      if (smallest < 0) break
      ranges.push({ smallest, largest: top })
      top = smallest - gap - 2
      if (top < 0) break
    }
    if (ranges.length === 0) ranges.push({ smallest: largest, largest })
    return ranges
  })

export const transportParams: fc.Arbitrary<TransportParams> = fc.record(
  {
    maxIdleTimeoutMs: varintValue,
    maxDatagramBytes: varintValue,
    initialMaxData: varintValue,
    initialMaxStreamData: varintValue,
    maxStreams: varintValue,
    maxAckDelayMs: varintValue,
    maxMessageBytes: varintValue,
  },
  { requiredKeys: [] },
)

const message = fc
  .tuple(varintValue, varintValue, fc.uint8Array({ maxLength: 64 }), fc.nat(100), fc.nat(100), fc.boolean())
  .map(([streamId, msgSeq, data, before, after, hasLength]): Frame => ({
    type: FrameType.MESSAGE,
    streamId,
    msgSeq,
    fragOffset: before,
    msgLength: before + data.length + after,
    data,
    hasLength,
  }))

const utf8String = fc.string({ unit: 'grapheme', maxLength: 100 }).filter((s) => new TextEncoder().encode(s).length <= 1024)

/** Any valid frame. `hasLength: false` MESSAGE frames must be last: see lastOnly(). */
export const frame: fc.Arbitrary<Frame> = fc.oneof(
  fc.integer({ min: 1, max: 20 }).map((length): Frame => ({ type: FrameType.PADDING, length })),
  fc.constant<Frame>({ type: FrameType.PING }),
  fc.tuple(ackRanges, fc.nat(2 ** 30)).map(([ranges, d]): Frame => ({ type: FrameType.ACK, largestAcked: ranges[0].largest, ackDelayMicros: d * 8, ranges })),
  fc.tuple(varintValue, utf8String).map(([errorCode, reason]): Frame => ({ type: FrameType.CLOSE, errorCode, reason })),
  varintValue.map((maximum): Frame => ({ type: FrameType.MAX_DATA, maximum })),
  fc.tuple(varintValue, varintValue).map(([streamId, maximum]): Frame => ({ type: FrameType.MAX_STREAM_DATA, streamId, maximum })),
  varintValue.map((limit): Frame => ({ type: FrameType.DATA_BLOCKED, limit })),
  fc.tuple(varintValue, varintValue).map(([streamId, limit]): Frame => ({ type: FrameType.STREAM_DATA_BLOCKED, streamId, limit })),
  fc.tuple(varintValue, varintValue, varintValue).map(([streamId, msgSeq, flowCost]): Frame => ({ type: FrameType.ABANDON, streamId, msgSeq, flowCost })),
  transportParams.map((params): Frame => ({ type: FrameType.HELLO, params })),
  message,
  fc.uint8Array({ minLength: 8, maxLength: 8 }).map((data): Frame => ({ type: FrameType.PATH_CHALLENGE, data })),
  fc.uint8Array({ minLength: 8, maxLength: 8 }).map((data): Frame => ({ type: FrameType.PATH_RESPONSE, data })),
  fc.uint8Array({ minLength: 1, maxLength: 40 }).map((token): Frame => ({ type: FrameType.NEW_TOKEN, token })),
  fc.uint8Array({ minLength: 1, maxLength: 120 }).map((message): Frame => ({ type: FrameType.CRYPTO_HANDSHAKE, message })),
)

/** A packet payload's frames: only the last may be a MESSAGE without LEN; PADDING runs not adjacent. */
export const framesForPayload = fc.array(frame, { minLength: 1, maxLength: 12 }).map((frames) => {
  const out: Frame[] = []
  for (let i = 0; i < frames.length; i++) {
    let f = frames[i]
    if (f.type === FrameType.MESSAGE && f.hasLength === false && i < frames.length - 1) f = { ...f, hasLength: true }
    // Two PADDING frames in a row decode as one run.
    const prev = out[out.length - 1]
    if (f.type === FrameType.PADDING && prev?.type === FrameType.PADDING) {
      prev.length += f.length
      continue
    }
    out.push(f)
  }
  return out
})
