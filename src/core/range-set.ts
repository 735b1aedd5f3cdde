/**
 * A set of non-negative integers kept as sorted, disjoint, non-adjacent half-open
 * ranges [start, end). Used for received packet numbers (ACK ranges), received
 * message sequences on unordered streams, and received bytes of a fragmented message.
 * Stored flat ([s0, e0, s1, e1, ...]) so the common case (append at the top) allocates nothing.
 */
export class RangeSet {
  private flat: number[] = []

  get rangeCount(): number {
    return this.flat.length >> 1
  }

  get isEmpty(): boolean {
    return this.flat.length === 0
  }

  /** Smallest member (undefined when empty). */
  get min(): number | undefined {
    return this.flat.length === 0 ? undefined : this.flat[0]
  }

  /** Largest member (undefined when empty). */
  get max(): number | undefined {
    return this.flat.length === 0 ? undefined : this.flat[this.flat.length - 1] - 1
  }

  /** Total count of members. */
  size(): number {
    let total = 0
    for (let i = 0; i < this.flat.length; i += 2) total += this.flat[i + 1] - this.flat[i]
    return total
  }

  has(value: number): boolean {
    const f = this.flat
    // Search from the top: lookups are almost always near the newest values.
    for (let i = f.length - 2; i >= 0; i -= 2) {
      if (value >= f[i + 1]) return false
      if (value >= f[i]) return true
    }
    return false
  }

  /** Add [start, end). Returns how many values were not members before. */
  addRange(start: number, end: number): number {
    if (end <= start) return 0
    const f = this.flat
    const n = f.length
    // Fast path: at or beyond the top range.
    if (n === 0 || start > f[n - 1]) {
      f.push(start, end)
      return end - start
    }
    if (start >= f[n - 2]) {
      const before = f[n - 1]
      if (end > before) {
        f[n - 1] = end
        return end - before
      }
      return 0
    }
    // General case: find the first range whose end >= start, merge everything overlapping.
    let i = 0
    while (i < n && f[i + 1] < start) i += 2
    let j = i
    let newStart = start
    let newEnd = end
    let covered = 0
    while (j < n && f[j] <= end) {
      const s = f[j]
      const e = f[j + 1]
      covered += Math.max(0, Math.min(e, end) - Math.max(s, start))
      if (s < newStart) newStart = s
      if (e > newEnd) newEnd = e
      j += 2
    }
    f.splice(i, j - i, newStart, newEnd)
    return end - start - covered
  }

  add(value: number): boolean {
    return this.addRange(value, value + 1) === 1
  }

  /** Forget every member below `value`. */
  removeBelow(value: number): void {
    const f = this.flat
    let i = 0
    while (i < f.length && f[i + 1] <= value) i += 2
    if (i > 0) f.splice(0, i)
    if (f.length > 0 && f[0] < value) f[0] = value
  }

  /** Drop the lowest ranges until at most `maxRanges` remain. */
  truncateToNewest(maxRanges: number): void {
    const excess = this.flat.length - 2 * maxRanges
    if (excess > 0) this.flat.splice(0, excess)
  }

  /** End (exclusive) of the range containing `value`, or `value` when not a member. */
  contiguousEnd(value: number): number {
    const f = this.flat
    for (let i = 0; i < f.length; i += 2) {
      if (value < f[i]) return value
      if (value < f[i + 1]) return f[i + 1]
    }
    return value
  }

  /** Ranges newest first as inclusive pairs, at most `limit` of them (ACK frame order). */
  descendingInclusive(limit: number): Array<{ smallest: number; largest: number }> {
    const out: Array<{ smallest: number; largest: number }> = []
    const f = this.flat
    for (let i = f.length - 2; i >= 0 && out.length < limit; i -= 2) {
      out.push({ smallest: f[i], largest: f[i + 1] - 1 })
    }
    return out
  }

  /** Half-open ranges ascending (copies). */
  ranges(): Array<[number, number]> {
    const out: Array<[number, number]> = []
    for (let i = 0; i < this.flat.length; i += 2) out.push([this.flat[i], this.flat[i + 1]])
    return out
  }

  clear(): void {
    // A fresh array rather than length = 0, which would keep the old backing store.
    this.flat = []
  }
}
