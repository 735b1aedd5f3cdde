/**
 * Runs async tasks one at a time, in call order. The stores put every batch (and the
 * SQLite store its pruning and close) through one, so a batch never starts while another
 * one's durable commit is still under way, and close() waits for what was called before it.
 *
 * A task called while the queue is idle starts synchronously inside `run`: the SQLite store
 * commits a batch in the call itself, as GroupCommit (one batch at a time) always saw it.
 */
export class SerialQueue {
  private busy = false
  private readonly waiting: Array<() => void> = []

  /** Tasks running or waiting. */
  get length(): number {
    return (this.busy ? 1 : 0) + this.waiting.length
  }

  async run<T>(task: () => T | Promise<T>): Promise<T> {
    if (this.busy) await new Promise<void>((resolve) => this.waiting.push(resolve))
    else this.busy = true
    try {
      return await task()
    } finally {
      // Hand over without going idle, so a call made meanwhile still queues behind the waiters.
      const next = this.waiting.shift()
      if (next !== undefined) next()
      else this.busy = false
    }
  }
}
