/**
 * Retention for the SQLite message store, as a run of bounded steps: each step scans at
 * most STEP_INBOXES inboxes and deletes at most STEP_ROWS inbox rows, and the store runs
 * each in its own transaction between batches, so pruning 500,000 entries never blocks the
 * event loop for long (one transaction took 1.6 s).
 *
 * Phases, in order:
 * 1. inboxes: for each inbox (by user id), delete what keepLastPerUser leaves out (versions
 *    up to head - N: an inbox's versions are contiguous, pruning only removes its oldest),
 *    then the oldest entries written before olderThanMs, up to the first younger one. An
 *    inbox with nothing to delete costs one index seek. In the same transaction, each
 *    message that lost its last copy is deleted if it was stored MESSAGE_MEMORY_MS before
 *    nowMs; otherwise its text is cleared and it is listed in orphaned_messages, so its
 *    (sender, clientMsgId) still de-duplicates a retried SEND. A run cut short (shutdown,
 *    error, power cut) thus never leaves a message no later run would find.
 * 2. forget: listed orphans now old enough are deleted (receipts follow by cascade).
 */
import { MESSAGE_MEMORY_MS, type RetentionPolicy } from './message-store.js'
import type { MessageQueries } from './sqlite-message-queries.js'
import { KIND_MESSAGE } from './sqlite-message-rows.js'

/** Inboxes looked at per step. */
export const STEP_INBOXES = 500
/** Rows deleted (or messages examined) per step, at most. */
export const STEP_ROWS = 1_000

type Phase = 'inboxes' | 'forget' | 'done'

export class SqlitePruneRun {
  /** Inbox entries deleted so far. */
  deleted = 0
  private phase: Phase
  private afterUserId = 0
  /** Messages that lost a copy in the current step. */
  private readonly touched = new Set<number>()
  private readonly forgetBeforeMs: number

  constructor(
    private readonly q: MessageQueries,
    private readonly policy: RetentionPolicy,
  ) {
    this.forgetBeforeMs = policy.nowMs - MESSAGE_MEMORY_MS
    // No inbox policy: nothing to scan the inboxes for; old orphans are still forgotten.
    this.phase = policy.keepLastPerUser === undefined && policy.olderThanMs === undefined ? 'forget' : 'inboxes'
  }

  get done(): boolean {
    return this.phase === 'done'
  }

  /** One bounded step; call inside a transaction. Returns the users whose inbox lost entries. */
  step(): number[] {
    if (this.phase === 'inboxes') {
      const changed = this.inboxesStep()
      this.settleOrphans()
      return changed
    }
    if (this.phase === 'forget') this.forgetStep()
    return []
  }

  private inboxesStep(): number[] {
    const { keepLastPerUser, olderThanMs } = this.policy
    const rows = this.q.inboxesAfter.all(this.afterUserId, STEP_INBOXES) as Array<[number, number, number | null, number | null]>
    const changed: number[] = []
    let budget = STEP_ROWS
    for (const [userId, head, oldestVersion, oldestAtMs] of rows) {
      if (oldestVersion === null || oldestAtMs === null) {
        this.afterUserId = userId
        continue
      }
      // `full`: a delete used its whole allowance, so the inbox may hold more to delete.
      let n = 0
      let full = false
      if (keepLastPerUser !== undefined && oldestVersion <= head - keepLastPerUser) {
        n = this.note(this.q.deleteUpTo.all({ userId, upTo: head - keepLastPerUser, limit: budget }) as unknown[][])
        full = n === budget
      }
      if (!full && olderThanMs !== undefined && oldestAtMs < olderThanMs) {
        const d = this.note(this.q.deleteOldPrefix.all({ userId, olderThanMs, limit: budget - n }) as unknown[][])
        n += d
        // More old entries than the window held: this inbox again next step.
        full = d > 0 && ((this.q.oldestAtMs.get(userId) as number | undefined) ?? olderThanMs) < olderThanMs
      }
      if (n > 0) changed.push(userId)
      budget -= n
      if (full) return changed // this inbox comes first again next step
      this.afterUserId = userId
    }
    if (rows.length < STEP_INBOXES) this.phase = 'forget'
    return changed
  }

  /** The messages this step took a copy of: forgotten, or kept as orphans (same transaction). */
  private settleOrphans(): void {
    for (const msgId of this.touched) {
      const sentAtMs = this.q.orphanSentAt.get({ msgId }) as number | undefined
      if (sentAtMs === undefined) continue
      if (sentAtMs < this.forgetBeforeMs) {
        this.q.deleteMessage.run(msgId)
      } else {
        this.q.keepOrphan.run(sentAtMs, msgId)
        this.q.clearBody.run(msgId)
      }
    }
    this.touched.clear()
  }

  private forgetStep(): void {
    const rows = this.q.orphansSentBefore.all(this.forgetBeforeMs, STEP_ROWS) as Array<[number, number]>
    for (const [sentAtMs, msgId] of rows) {
      this.q.deleteMessage.run(msgId)
      this.q.forgetOrphan.run(sentAtMs, msgId)
    }
    if (rows.length < STEP_ROWS) this.phase = 'done'
  }

  /** Counts deleted rows and remembers the messages that lost a copy. */
  private note(rows: unknown[][]): number {
    this.deleted += rows.length
    for (const [kind, msgId] of rows) if (kind === KIND_MESSAGE) this.touched.add(msgId as number)
    return rows.length
  }
}
