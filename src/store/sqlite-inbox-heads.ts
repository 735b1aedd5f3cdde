/**
 * Inbox heads (the last version handed out in each user's inbox) kept in memory for the
 * message store's batches, so a batch reads each head at most once and writes each
 * touched user's `inbox_heads` row once, at its end, instead of an upsert per entry.
 *
 * The cache holds committed values only: a batch counts in `pending` and `commit()` folds
 * them in after its transaction commits; `rollback()` forgets them. Another connection
 * (the admin CLI, a second process) may write inboxes too: the store watches
 * `PRAGMA data_version` and calls `clear()` when someone else committed, so a head is
 * never taken from before someone else's write.
 */
import { LRUCache } from 'lru-cache'
import type { SqliteDatabase } from './sqlite-account-store.js'

/** Users whose head stays cached; more are read again from inbox_heads when needed. */
const DEFAULT_CACHED_HEADS = 200_000

export class InboxHeads {
  private readonly cache: LRUCache<number, number>
  /** Heads assigned by the batch under way (not committed yet). */
  private readonly pending = new Map<number, number>()
  private readonly readHead
  private readonly writeHead

  constructor(db: SqliteDatabase, options: { cachedHeads?: number } = {}) {
    this.cache = new LRUCache({ max: options.cachedHeads ?? DEFAULT_CACHED_HEADS })
    this.readHead = db.prepare('SELECT version FROM inbox_heads WHERE user_id = ?').pluck()
    this.writeHead = db.prepare('INSERT INTO inbox_heads (user_id, version) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE SET version = excluded.version')
  }

  /** Inside the batch's transaction, before anything else. */
  beginBatch(): void {
    this.pending.clear()
  }

  /** Another connection wrote: every cached head may be old. */
  clear(): void {
    this.cache.clear()
  }

  /** The next version of the user's inbox, inside the batch's transaction. */
  next(userId: number): number {
    const version = this.current(userId) + 1
    this.pending.set(userId, version)
    return version
  }

  /** The head as the batch under way sees it (0 for an empty inbox). */
  current(userId: number): number {
    return this.pending.get(userId) ?? this.committed(userId)
  }

  /** Still inside the transaction: one row per touched user. Throws what SQLite throws (foreign key: unknown user). */
  writePending(): void {
    for (const [userId, version] of this.pending) this.writeHead.run(userId, version)
  }

  /** After the transaction committed. */
  commit(): void {
    for (const [userId, version] of this.pending) this.cache.set(userId, version)
    this.pending.clear()
  }

  /** After the transaction rolled back. */
  rollback(): void {
    this.pending.clear()
  }

  /** The batch ran inside someone else's transaction, which may yet commit or roll back: read its users' heads again. */
  forgetPending(): void {
    for (const userId of this.pending.keys()) this.cache.delete(userId)
    this.pending.clear()
  }

  /** The committed head (cached, or read once). */
  private committed(userId: number): number {
    const cached = this.cache.get(userId)
    if (cached !== undefined) return cached
    const head = (this.readHead.get(userId) as number | undefined) ?? 0
    this.cache.set(userId, head)
    return head
  }
}
