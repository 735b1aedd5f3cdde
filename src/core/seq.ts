/**
 * Wrap-safe sequence arithmetic, in one place (RFC 1982 serial numbers, KCP's
 * `(int32)(later - earlier)`). Used wherever a counter is carried modulo 2^32 or
 * truncated on the wire, so comparisons stay right across the wrap.
 */

/** a - b as a signed 32-bit distance: positive when a is "after" b (modulo 2^32). */
export const seqDiff32 = (a: number, b: number): number => (a - b) | 0

export const seqLessThan32 = (a: number, b: number): boolean => seqDiff32(a, b) < 0

export const seqLessOrEqual32 = (a: number, b: number): boolean => seqDiff32(a, b) <= 0

export const seqAdd32 = (a: number, delta: number): number => (a + delta) >>> 0

/**
 * Expand a value truncated to `bits` bits (bits <= 32) to the full number closest to
 * `expected` (RFC 9000 Appendix A.3 generalised). `expected` may exceed 2^32; the
 * result is a non-negative safe integer.
 */
export const expandTruncated = (truncated: number, bits: number, expected: number): number => {
  const window = 2 ** bits
  const halfWindow = window / 2
  const mask = window - 1
  // Clear the low `bits` bits of `expected` without 32-bit bitwise ops (values may be > 2^32).
  const base = expected - (expected % window)
  const candidate = base + (truncated & mask)
  if (candidate <= expected - halfWindow && candidate + window < 2 ** 62) return candidate + window
  if (candidate > expected + halfWindow && candidate >= window) return candidate - window
  return candidate
}
