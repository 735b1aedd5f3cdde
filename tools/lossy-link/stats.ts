/**
 * Live counters per direction: what was offered, forwarded, dropped (per reason),
 * duplicated, corrupted, and two histograms: the delay each datagram really spent in
 * the proxy, and the timing error (actual - planned send time).
 */

/** Upper bounds (ms, inclusive) of the histogram buckets; the last bucket is open. */
export const DELAY_BUCKET_BOUNDS_MS = [
  0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 25, 30, 40, 50, 60, 75, 100, 125, 150, 200, 250, 300, 400, 500, 600, 750,
  1000, 1500, 2000, 3000, 5000, 10_000, 30_000,
]

export class Histogram {
  private readonly bounds: readonly number[]
  private readonly counts: number[]
  count = 0
  sum = 0
  min = Infinity
  max = -Infinity

  constructor(bounds: readonly number[] = DELAY_BUCKET_BOUNDS_MS) {
    this.bounds = bounds
    this.counts = new Array(bounds.length + 1).fill(0)
  }

  record(value: number): void {
    let i = 0
    while (i < this.bounds.length && value > this.bounds[i]) i++
    this.counts[i]++
    this.count++
    this.sum += value
    if (value < this.min) this.min = value
    if (value > this.max) this.max = value
  }

  /** Upper bound of the bucket holding the q-quantile (an over-estimate by at most one bucket). */
  quantileUpperBound(q: number): number | null {
    if (this.count === 0) return null
    const rank = Math.ceil(q * this.count)
    let seen = 0
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]
      if (seen >= rank) return i < this.bounds.length ? this.bounds[i] : this.max
    }
    return this.max
  }

  toJSON() {
    const buckets = this.counts.map((count, i) => ({ le: i < this.bounds.length ? this.bounds[i] : '+Inf', count }))
    return {
      count: this.count,
      minMs: this.count ? round3(this.min) : null,
      meanMs: this.count ? round3(this.sum / this.count) : null,
      maxMs: this.count ? round3(this.max) : null,
      p50Ms: this.quantileUpperBound(0.5),
      p99Ms: this.quantileUpperBound(0.99),
      buckets,
    }
  }
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000

export const DROP_REASONS = ['loss', 'queue', 'mtu', 'blackout', 'blocked', 'nat-timeout', 'send-error'] as const
export type StatsDropReason = (typeof DROP_REASONS)[number]

const zeroDrops = (): Record<StatsDropReason, number> =>
  Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<StatsDropReason, number>

export class DirectionStats {
  offered = 0
  /** Datagrams that were not dropped (each counted once, duplicates aside). */
  forwarded = 0
  /** Datagrams written to a socket, duplicates included. */
  sent = 0
  duplicated = 0
  corrupted = 0
  bytesOffered = 0
  bytesForwarded = 0
  dropped = zeroDrops()
  /** Time from arrival at the proxy to the send call, per sent datagram. */
  readonly delay = new Histogram()
  /** |actual - planned| send time, per delayed datagram: the proxy's own timing error. */
  readonly timingError = new Histogram([0.1, 0.25, 0.5, 1, 2, 5, 10, 50])

  droppedTotal(): number {
    let n = 0
    for (const r of DROP_REASONS) n += this.dropped[r]
    return n
  }

  toJSON() {
    return {
      offered: this.offered,
      forwarded: this.forwarded,
      sent: this.sent,
      dropped: { total: this.droppedTotal(), ...this.dropped },
      duplicated: this.duplicated,
      corrupted: this.corrupted,
      bytesOffered: this.bytesOffered,
      bytesForwarded: this.bytesForwarded,
      delayHistogram: this.delay.toJSON(),
      timingErrorHistogram: this.timingError.toJSON(),
    }
  }
}
