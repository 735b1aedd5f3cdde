/**
 * Binary min-heap of timed events. Ties on time are broken by insertion order
 * (a monotonically increasing sequence number), so a simulation that schedules
 * the same things in the same order always replays in the same order.
 */
export interface QueuedEvent<T> {
  timeMs: number
  seq: number
  value: T
}

export class EventQueue<T> {
  private heap: QueuedEvent<T>[] = []
  private nextSeq = 0

  get size(): number {
    return this.heap.length
  }

  push(timeMs: number, value: T): void {
    const heap = this.heap
    heap.push({ timeMs, seq: this.nextSeq++, value })
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!before(heap[i], heap[parent])) break
      swap(heap, i, parent)
      i = parent
    }
  }

  peek(): QueuedEvent<T> | undefined {
    return this.heap[0]
  }

  pop(): QueuedEvent<T> | undefined {
    const heap = this.heap
    if (heap.length === 0) return undefined
    const top = heap[0]
    const last = heap.pop() as QueuedEvent<T>
    if (heap.length > 0) {
      heap[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < heap.length && before(heap[l], heap[m])) m = l
        if (r < heap.length && before(heap[r], heap[m])) m = r
        if (m === i) break
        swap(heap, i, m)
        i = m
      }
    }
    return top
  }

  clear(): void {
    this.heap = []
  }
}

const before = <T>(a: QueuedEvent<T>, b: QueuedEvent<T>): boolean =>
  a.timeMs < b.timeMs || (a.timeMs === b.timeMs && a.seq < b.seq)

const swap = <T>(heap: T[], i: number, j: number): void => {
  const t = heap[i]
  heap[i] = heap[j]
  heap[j] = t
}
