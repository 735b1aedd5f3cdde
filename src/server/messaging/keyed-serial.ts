/**
 * Runs tasks one at a time per key, in the order they were given: one SerialQueue (the
 * store's) per key with something queued. The group requests use it so that a change and
 * the member list it checked cannot interleave with another change of the same group (two
 * invites each seeing room for one more member). A key with nothing queued holds no memory.
 */
import { SerialQueue } from '../../store/serial-queue.js'

export class KeyedSerial<K> {
  private readonly queues = new Map<K, SerialQueue>()

  async run<T>(key: K, task: () => Promise<T>): Promise<T> {
    let queue = this.queues.get(key)
    if (queue === undefined) this.queues.set(key, (queue = new SerialQueue()))
    try {
      return await queue.run(task)
    } finally {
      // (Another caller's finally may have replaced an idle queue already.)
      if (queue.length === 0 && this.queues.get(key) === queue) this.queues.delete(key)
    }
  }

  /** Keys with a task queued or running. */
  get size(): number {
    return this.queues.size
  }
}
