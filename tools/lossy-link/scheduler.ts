/**
 * One timer for the whole tool: every pending delivery and timed task sits in a
 * min-heap keyed by due time, and a single OS timer is armed for the earliest one.
 * Thousands of delayed datagrams cost one setTimeout, not thousands.
 *
 * The clock is injected: RealClock for the running tool, ManualClock for tests that
 * drive real sockets on virtual time.
 */

export interface Clock {
  /** Milliseconds since the clock's origin (fractional). */
  now(): number
  /** Arm a one-shot callback; only one is ever armed by a Scheduler. */
  setTimer(delayMs: number, fn: () => void): unknown
  clearTimer(handle: unknown): void
  /** Entries due within this many ms of now run in the current batch (timer granularity). */
  readonly toleranceMs: number
}

export class RealClock implements Clock {
  private readonly origin = performance.now()
  /** Wall-clock time of the origin, for pcapng timestamps. */
  readonly originEpochMs = Date.now()
  readonly toleranceMs: number

  constructor(toleranceMs = 1) {
    this.toleranceMs = toleranceMs
  }

  now(): number {
    return performance.now() - this.origin
  }

  setTimer(delayMs: number, fn: () => void): unknown {
    const t = setTimeout(fn, delayMs)
    t.unref()
    return t
  }

  clearTimer(handle: unknown): void {
    clearTimeout(handle as NodeJS.Timeout)
  }
}

/** Virtual time for tests: nothing happens until advance() is called. */
export class ManualClock implements Clock {
  private t: number
  private timer: { at: number; fn: () => void } | undefined
  readonly toleranceMs = 0
  readonly originEpochMs: number

  constructor(startMs = 0, originEpochMs = 1_700_000_000_000) {
    this.t = startMs
    this.originEpochMs = originEpochMs
  }

  now(): number {
    return this.t
  }

  setTimer(delayMs: number, fn: () => void): unknown {
    const timer = { at: this.t + delayMs, fn }
    this.timer = timer
    return timer
  }

  clearTimer(handle: unknown): void {
    if (this.timer === handle) this.timer = undefined
  }

  /** Move time forward, firing the armed timer each time it falls due. */
  advance(ms: number): void {
    const end = this.t + ms
    while (this.timer && this.timer.at <= end) {
      const timer = this.timer
      this.timer = undefined
      this.t = Math.max(this.t, timer.at)
      timer.fn()
    }
    this.t = end
  }

  /** Time of the armed timer, if any (lets a test step exactly to the next event). */
  nextTimerAt(): number | undefined {
    return this.timer?.at
  }
}

export type Task<A> = (arg: A, atMs: number) => void

interface Entry {
  atMs: number
  seq: number
  fn: Task<any>
  arg: unknown
  cancelled: boolean
}

export interface TaskHandle { cancel(): void }

export class Scheduler {
  readonly clock: Clock
  private heap: Entry[] = []
  private seq = 0
  private timer: unknown
  private timerAtMs = Infinity
  private closed = false
  private running = false
  /** Number of times the OS timer was (re-)armed: for tests and the bench. */
  timerArms = 0

  constructor(clock: Clock) {
    this.clock = clock
  }

  get size(): number {
    return this.heap.length
  }

  /** Run fn(arg, atMs) at atMs. `fn` is usually shared, so no closure is made per datagram. */
  at<A>(atMs: number, fn: Task<A>, arg: A): TaskHandle {
    const entry: Entry = { atMs, seq: this.seq++, fn, arg, cancelled: false }
    this.push(entry)
    if (!this.running && atMs < this.timerAtMs) this.arm()
    return { cancel: () => { entry.cancelled = true } }
  }

  close(): void {
    this.closed = true
    if (this.timer !== undefined) this.clock.clearTimer(this.timer)
    this.timer = undefined
    this.heap = []
  }

  private arm(): void {
    if (this.closed) return
    if (this.timer !== undefined) this.clock.clearTimer(this.timer)
    this.timer = undefined
    this.timerAtMs = Infinity
    const head = this.heap[0]
    if (!head) return
    this.timerAtMs = head.atMs
    const delayMs = Math.max(0, head.atMs - this.clock.now())
    this.timerArms++
    this.timer = this.clock.setTimer(delayMs, this.fire)
  }

  private fire = (): void => {
    this.timer = undefined
    this.timerAtMs = Infinity
    this.running = true
    try {
      const limit = this.clock.now() + this.clock.toleranceMs
      while (!this.closed && this.heap.length > 0 && this.heap[0].atMs <= limit) {
        const entry = this.pop()
        if (!entry.cancelled) entry.fn(entry.arg, entry.atMs)
      }
    } finally {
      this.running = false
      this.arm()
    }
  }

  private less(a: Entry, b: Entry): boolean {
    return a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq)
  }

  private push(e: Entry): void {
    const h = this.heap
    let i = h.length
    h.push(e)
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!this.less(e, h[parent])) break
      h[i] = h[parent]
      i = parent
    }
    h[i] = e
  }

  private pop(): Entry {
    const h = this.heap
    const top = h[0]
    const last = h.pop()!
    if (h.length > 0) {
      let i = 0
      const n = h.length
      for (;;) {
        const l = 2 * i + 1
        if (l >= n) break
        const r = l + 1
        const c = r < n && this.less(h[r], h[l]) ? r : l
        if (!this.less(h[c], last)) break
        h[i] = h[c]
        i = c
      }
      h[i] = last
    }
    return top
  }
}
