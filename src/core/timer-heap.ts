/**
 * A binary min-heap of deadlines with lazy deletion: one per endpoint, so thousands of
 * sessions share one OS timer. An item is valid while `item.deadlineMs` still equals
 * the deadline it was pushed with; stale entries are skipped when they surface.
 */
export interface TimerItem {
  /** The item's current deadline (Infinity when none). */
  deadlineMs: number
}

export class TimerHeap<T extends TimerItem> {
  private times: number[] = []
  private items: T[] = []

  get size(): number {
    return this.items.length
  }

  /** Set `item`'s deadline; pushes a new heap entry only when it changes. */
  schedule(item: T, deadlineMs: number): void {
    if (item.deadlineMs === deadlineMs) return
    item.deadlineMs = deadlineMs
    if (deadlineMs === Infinity) return
    this.times.push(deadlineMs)
    this.items.push(item)
    this.siftUp(this.items.length - 1)
    if (this.items.length > 1024 && this.items.length > 4 * this.validCountHint) this.rebuild()
  }

  /** Callers may tell how many items are live so the heap can shed stale entries. */
  validCountHint = 0

  /** Drop every stale entry and re-heapify (O(n)). */
  rebuild(): void {
    const times: number[] = []
    const items: T[] = []
    for (let i = 0; i < this.items.length; i++) {
      if (this.items[i].deadlineMs === this.times[i]) {
        times.push(this.times[i])
        items.push(this.items[i])
      }
    }
    this.times = times
    this.items = items
    for (let i = (items.length >> 1) - 1; i >= 0; i--) this.siftDown(i)
    if (this.validCountHint < items.length) this.validCountHint = items.length
  }

  /** Earliest valid deadline, or Infinity. */
  peekMs(): number {
    this.dropStale()
    return this.times.length === 0 ? Infinity : this.times[0]
  }

  /** Remove and return an item whose deadline is <= nowMs (its deadline becomes Infinity). */
  popDue(nowMs: number): T | undefined {
    this.dropStale()
    if (this.times.length === 0 || this.times[0] > nowMs) return undefined
    const item = this.items[0]
    this.removeTop()
    item.deadlineMs = Infinity
    return item
  }

  private dropStale(): void {
    while (this.items.length > 0 && this.items[0].deadlineMs !== this.times[0]) this.removeTop()
  }

  private removeTop(): void {
    const lastTime = this.times.pop()!
    const lastItem = this.items.pop()!
    if (this.items.length === 0) return
    this.times[0] = lastTime
    this.items[0] = lastItem
    this.siftDown(0)
  }

  private siftUp(i: number): void {
    const t = this.times[i]
    const it = this.items[i]
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (this.times[parent] <= t) break
      this.times[i] = this.times[parent]
      this.items[i] = this.items[parent]
      i = parent
    }
    this.times[i] = t
    this.items[i] = it
  }

  private siftDown(i: number): void {
    const n = this.times.length
    const t = this.times[i]
    const it = this.items[i]
    for (;;) {
      let child = 2 * i + 1
      if (child >= n) break
      if (child + 1 < n && this.times[child + 1] < this.times[child]) child++
      if (this.times[child] >= t) break
      this.times[i] = this.times[child]
      this.items[i] = this.items[child]
      i = child
    }
    this.times[i] = t
    this.items[i] = it
  }
}
