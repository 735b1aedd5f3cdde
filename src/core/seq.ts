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
 * `expected` (RFC 9000 Appendix A.3, generalised): used for packet numbers, which are
 * sent as their low 1..4 bytes. Exact above 2^32 (no 32-bit bit operators on full
 * values); never returns more than Number.MAX_SAFE_INTEGER + window.
 */
export const expandTruncated = (truncated: number, bits: number, expected: number): number => {
  const window = 2 ** bits
  const halfWindow = window / 2
  const candidate = expected - (expected % window) + (truncated % window)
  if (candidate <= expected - halfWindow && candidate + window <= Number.MAX_SAFE_INTEGER) return candidate + window
  if (candidate > expected + halfWindow && candidate >= window) return candidate - window
  return candidate
}
