/**
 * ACK (0x02): largest acknowledged, ack delay, then ranges exactly as RFC 9000 §19.3.1.
 *   largestAcked varint | ackDelay varint (µs >> 3) | rangeCount varint |
 *   firstRange varint | rangeCount × (gap varint, rangeLength varint)
 * In memory: ranges in DESCENDING order, non-overlapping, non-adjacent, inclusive bounds;
 * ranges[0].largest === largestAcked.
 */
import { DecodeError, ErrorCode, UsageError } from '../../errors.js'
import type { Reader } from '../reader.js'
import { varintLength } from '../varint.js'
import type { Writer } from '../writer.js'
import { FrameType } from './frame-type.js'

/** ackDelay on the wire is microseconds / 2^ACK_DELAY_EXPONENT. */
export const ACK_DELAY_EXPONENT = 3
const ACK_DELAY_SCALE = 2 ** ACK_DELAY_EXPONENT
/** Keeps the decoded microseconds a safe integer. */
const MAX_ENCODED_DELAY = Math.floor(Number.MAX_SAFE_INTEGER / ACK_DELAY_SCALE)

export interface AckRange {
  smallest: number
  largest: number
}

export interface AckFrame {
  type: typeof FrameType.ACK
  largestAcked: number
  /** Decoded values are multiples of 8; the encoder rounds down. */
  ackDelayMicros: number
  ranges: AckRange[]
}

const encodedDelay = (micros: number): number => Math.floor(micros / ACK_DELAY_SCALE)

/** Throws UsageError unless the ranges are a valid descending set matching largestAcked. */
const validate = (f: AckFrame, count: number): void => {
  const ranges = f.ranges
  if (count === 0) usage('ACK frame needs at least one range')
  if (ranges[0].largest !== f.largestAcked) usage('ranges[0].largest must equal largestAcked')
  if (!(f.ackDelayMicros >= 0 && f.ackDelayMicros <= Number.MAX_SAFE_INTEGER)) usage(`bad ackDelayMicros ${f.ackDelayMicros}`)
  let prevSmallest = Infinity
  for (let i = 0; i < count; i++) {
    const rg = ranges[i]
    if (!(Number.isSafeInteger(rg.smallest) && rg.smallest >= 0 && Number.isSafeInteger(rg.largest) && rg.largest >= rg.smallest)) {
      usage(`bad ACK range [${rg.smallest}, ${rg.largest}]`)
    }
    // Non-adjacent: at least one missing packet between ranges (gap >= 0 on the wire).
    if (!(rg.largest < prevSmallest - 1)) usage('ACK ranges must be descending, non-overlapping and non-adjacent')
    prevSmallest = rg.smallest
  }
}

const lengthOf = (f: AckFrame, count: number): number => {
  const ranges = f.ranges
  if (count === 0) usage('ACK frame needs at least one range')
  let n = 1 + varintLength(f.largestAcked) + varintLength(encodedDelay(f.ackDelayMicros)) + varintLength(count - 1)
  n += varintLength(f.largestAcked - ranges[0].smallest)
  for (let i = 1; i < count; i++) {
    const rg = ranges[i]
    n += varintLength(ranges[i - 1].smallest - rg.largest - 2) + varintLength(rg.largest - rg.smallest)
  }
  return n
}

export const ackLength = (f: AckFrame): number => lengthOf(f, f.ranges.length)

export const encodeAck = (w: Writer, f: AckFrame): void => {
  const ranges = f.ranges
  const count = ranges.length
  validate(f, count)
  w.u8(FrameType.ACK)
  w.varint(f.largestAcked)
  w.varint(encodedDelay(f.ackDelayMicros))
  w.varint(count - 1)
  w.varint(f.largestAcked - ranges[0].smallest)
  for (let i = 1; i < count; i++) {
    const rg = ranges[i]
    w.varint(ranges[i - 1].smallest - rg.largest - 2)
    w.varint(rg.largest - rg.smallest)
  }
}

/**
 * The frame restricted to the most recent ranges that fit in `maxBytes` (type byte
 * included): `f` itself when everything fits, a copy with fewer ranges otherwise,
 * undefined when not even the first range fits. Dropping the oldest ranges is safe:
 * the peer just learns about those packets later.
 */
export const ackFrameLimitedRanges = (f: AckFrame, maxBytes: number): AckFrame | undefined => {
  const ranges = f.ranges
  if (ranges.length === 0) return undefined
  // The rangeCount varint grows with the count; start from the 1-range size and add.
  let n = lengthOf(f, 1)
  if (n > maxBytes) return undefined
  let count = 1
  while (count < ranges.length) {
    const rg = ranges[count]
    const add = varintLength(ranges[count - 1].smallest - rg.largest - 2) + varintLength(rg.largest - rg.smallest)
    const countGrowth = varintLength(count) - varintLength(count - 1)
    if (n + add + countGrowth > maxBytes) break
    n += add + countGrowth
    count++
  }
  if (count === ranges.length) return f
  return { type: FrameType.ACK, largestAcked: f.largestAcked, ackDelayMicros: f.ackDelayMicros, ranges: ranges.slice(0, count) }
}

export const decodeAck = (r: Reader): AckFrame => {
  const largestAcked = r.varint()
  const encodedDelayValue = r.varint()
  if (encodedDelayValue > MAX_ENCODED_DELAY) throw new DecodeError(`ACK delay ${encodedDelayValue} too large`)
  const ackDelayMicros = encodedDelayValue * ACK_DELAY_SCALE
  const rangeCount = r.varint()
  // Each further range takes at least 2 bytes: reject absurd counts before looping.
  if (rangeCount > r.remaining / 2) throw new DecodeError(`ACK rangeCount ${rangeCount} exceeds frame`)
  const firstRange = r.varint()
  let smallest = largestAcked - firstRange
  if (smallest < 0) throw new DecodeError('ACK range below packet number 0', ErrorCode.FRAME_ENCODING_ERROR)
  const ranges: AckRange[] = [{ smallest, largest: largestAcked }]
  for (let i = 0; i < rangeCount; i++) {
    const gap = r.varint()
    const length = r.varint()
    const largest = smallest - gap - 2
    smallest = largest - length
    if (smallest < 0) throw new DecodeError('ACK range below packet number 0', ErrorCode.FRAME_ENCODING_ERROR)
    ranges.push({ smallest, largest })
  }
  return { type: FrameType.ACK, largestAcked, ackDelayMicros, ranges }
}

const usage = (message: string): never => {
  throw new UsageError(ErrorCode.INTERNAL_ERROR, message)
}
