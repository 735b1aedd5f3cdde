/**
 * Windowed maximum over a sliding window of "time" (any monotonic unit; BBR uses round
 * trips), kept in O(1) space with three samples: the best, and the best ones that arrived
 * after it, so that when the best ages out a good replacement is at hand (the algorithm
 * Kathleen Nichols described for BBR's bandwidth filter).
 */
export class WindowedMaxFilter {
  // Sample 0 is the current maximum; 1 and 2 are newer, each >= the ones after it.
  private v0 = 0
  private t0 = -Infinity
  private v1 = 0
  private t1 = -Infinity
  private v2 = 0
  private t2 = -Infinity

  constructor(private readonly windowLength: number) {}

  get best(): number {
    return this.v0
  }

  reset(time: number, value: number): void {
    this.v0 = this.v1 = this.v2 = value
    this.t0 = this.t1 = this.t2 = time
  }

  /** Adds a sample; returns the maximum over the window ending at `time`. */
  update(time: number, value: number): number {
    if (value >= this.v0 || time - this.t2 > this.windowLength) {
      // New maximum, or every stored sample is too old.
      this.reset(time, value)
      return this.v0
    }
    if (value >= this.v1) {
      this.v1 = this.v2 = value
      this.t1 = this.t2 = time
    } else if (value >= this.v2) {
      this.v2 = value
      this.t2 = time
    }
    const age = time - this.t0
    if (age > this.windowLength) {
      // The best aged out: promote the runners-up.
      this.shift(time, value)
      if (time - this.t0 > this.windowLength) this.shift(time, value)
    } else if (this.t1 === this.t0 && age > this.windowLength / 4) {
      // A quarter window passed without a second-best: take one from this window.
      this.v1 = this.v2 = value
      this.t1 = this.t2 = time
    } else if (this.t2 === this.t1 && age > this.windowLength / 2) {
      this.v2 = value
      this.t2 = time
    }
    return this.v0
  }

  private shift(time: number, value: number): void {
    this.v0 = this.v1
    this.t0 = this.t1
    this.v1 = this.v2
    this.t1 = this.t2
    this.v2 = value
    this.t2 = time
  }
}
