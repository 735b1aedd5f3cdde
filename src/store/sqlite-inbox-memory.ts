/**
 * What the SQLite message store keeps of its inboxes in memory, and when it may trust it:
 *
 * - heads (the last version handed out in each inbox): a batch reads each head at most once
 *   and writes each touched user's `inbox_heads` row once, at its end (`endBatch`), instead
 *   of an upsert per entry;
 * - tails (the newest entries, inbox-tail-cache.ts): a device that keeps up syncs, and a
 *   FIN finds the messages it acknowledges, without a read.
 *
 * Batch lifecycle: `beginBatch` inside the transaction, `nextVersion` / `added` per entry,
 * `endBatch` before the commit; then `committed` or `rolledBack`; then, once the WAL is on
 * disk, `durable` (only durable entries are served). Heads become the cached ones when the
 * batch commits; entries when it is durable.
 *
 * Another connection (the admin CLI, a second process) may write inboxes too:
 * `PRAGMA data_version` changes for this connection when any other connection commits,
 * and then both caches are dropped: checked inside every batch (exact: the batch holds the
 * write lock) and before reads at most once per event-loop turn (the PRAGMA costs about
 * as much as the read it guards; another process's commit may land at any instant anyway).
 */
import { LRUCache } from 'lru-cache'
import type { InboxEntry } from '../protocol/chat-types.js'
import { InboxTailCache } from './inbox-tail-cache.js'
import type { SqliteDatabase } from './sqlite-account-store.js'

/** Users whose head stays cached; more are read again from inbox_heads when needed. */
const CACHED_HEADS = 200_000

export class InboxMemory {
  private readonly heads = new LRUCache<number, number>({ max: CACHED_HEADS })
  private readonly tails = new InboxTailCache()
  /** The batch under way: heads it assigned, entries it inserted, users whose tails it could not extend. */
  private readonly pendingHeads = new Map<number, number>()
  private pendingEntries: Array<{ userId: number; entry: InboxEntry }> = []
  private pendingUntracked: number[] = []
  private readonly readHead
  private readonly writeHead
  private readonly dataVersion
  private lastDataVersion: number
  private checkedThisTurn = false

  constructor(db: SqliteDatabase) {
    this.readHead = db.prepare('SELECT version FROM inbox_heads WHERE user_id = ?').pluck()
    this.writeHead = db.prepare('INSERT INTO inbox_heads (user_id, version) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE SET version = excluded.version')
    this.dataVersion = db.prepare('PRAGMA data_version').pluck()
    this.lastDataVersion = this.dataVersion.get() as number
  }

  // ---- the batch (inside its transaction) ----

  beginBatch(): void {
    this.noticeOtherWriters()
    this.pendingHeads.clear()
    this.pendingEntries = []
    this.pendingUntracked = []
  }

  /** The next version of the user's inbox. */
  nextVersion(userId: number): number {
    const version = this.currentVersion(userId) + 1
    this.pendingHeads.set(userId, version)
    return version
  }

  /** The head as the batch under way sees it (0 for an empty inbox). */
  currentVersion(userId: number): number {
    const pending = this.pendingHeads.get(userId)
    if (pending !== undefined) return pending
    const cached = this.heads.get(userId)
    if (cached !== undefined) return cached
    const head = (this.readHead.get(userId) as number | undefined) ?? 0
    this.heads.set(userId, head)
    return head
  }

  /** An entry the batch inserted, exactly as readInbox would return it. */
  added(userId: number, entry: InboxEntry): void {
    this.pendingEntries.push({ userId, entry })
  }

  /** The batch inserted an entry of `userId` that is not kept in memory: read that inbox from the table. */
  addedUntracked(userId: number): void {
    this.pendingUntracked.push(userId)
  }

  /** Last statement of the batch: one head row per touched user. Throws what SQLite throws. */
  endBatch(): void {
    for (const [userId, version] of this.pendingHeads) this.writeHead.run(userId, version)
  }

  // ---- after the transaction ----

  /** The batch committed; `nested`: inside a caller's transaction, which may still roll back. */
  committed(nested: boolean): void {
    if (nested) {
      for (const userId of this.pendingHeads.keys()) this.heads.delete(userId)
      this.durable(false)
    } else {
      for (const [userId, version] of this.pendingHeads) this.heads.set(userId, version)
    }
    this.pendingHeads.clear()
  }

  rolledBack(): void {
    this.pendingHeads.clear()
    this.pendingEntries = []
    this.pendingUntracked = []
  }

  /** The committed batch's WAL is on disk (or, `ok` false, not known to be): serve its entries, or forget those inboxes. */
  durable(ok: boolean): void {
    for (const { userId, entry } of this.pendingEntries) {
      if (ok) this.tails.append(userId, entry)
      else this.tails.forget(userId)
    }
    for (const userId of this.pendingUntracked) this.tails.forget(userId)
    this.pendingEntries = []
    this.pendingUntracked = []
  }

  /** Entries were deleted: none may be served from memory. */
  pruned(): void {
    this.tails.clear()
  }

  // ---- reads ----

  /** The inbox head, if its tail is in memory. */
  head(userId: number): number | undefined {
    this.noticeOtherWritersThisTurn()
    return this.tails.head(userId)
  }

  /** Entries after `afterVersion` (copies), or undefined when memory does not hold them all. */
  read(userId: number, afterVersion: number, limit: number): InboxEntry[] | undefined {
    this.noticeOtherWritersThisTurn()
    return this.tails.read(userId, afterVersion, limit)
  }

  /**
   * Inside a batch: [msgId, sender] of the messages from others in versions (after, upTo],
   * or undefined when the durable tail does not reach upTo (this batch wrote there).
   */
  messagesFromOthers(userId: number, after: number, upTo: number): Array<[number, number]> | undefined {
    if ((this.tails.head(userId) ?? 0) < upTo) return undefined
    const entries = this.tails.readShared(userId, after, upTo - after)
    if (entries === undefined) return undefined
    const out: Array<[number, number]> = []
    for (const e of entries) if (e.kind === 'message' && e.fromUserId !== userId) out.push([e.msgId, e.fromUserId])
    return out
  }

  private noticeOtherWritersThisTurn(): void {
    if (this.checkedThisTurn) return
    this.checkedThisTurn = true
    setImmediate(() => { this.checkedThisTurn = false })
    this.noticeOtherWriters()
  }

  private noticeOtherWriters(): void {
    const v = this.dataVersion.get() as number
    if (v === this.lastDataVersion) return
    this.lastDataVersion = v
    this.heads.clear()
    this.tails.clear()
  }
}
