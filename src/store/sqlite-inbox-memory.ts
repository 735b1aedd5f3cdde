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
 * `endBatch` before the commit; then `committed` (which hands back the batch's BatchMemory)
 * or `rolledBack`; then, once the WAL is on disk, `durable` (only durable entries are
 * served). Heads become the cached ones when the batch commits; entries when it is durable.
 * Each batch's state is its own object, so a batch run while another one syncs (inside a
 * caller's transaction) cannot take or drop the other's entries.
 *
 * `durable` appends a batch's entries only if nothing cleared or bypassed the tails since
 * the batch began (a `generation` counter): pruning, another connection's commit, or a
 * batch inside a caller's transaction. Appending after a prune would put deleted entries
 * back (a FIN then adds a receipt for a deleted message and fails its batch); appending
 * after another connection wrote the same inbox would hide that write.
 *
 * Another connection (the admin CLI, a second process) may write inboxes too:
 * `PRAGMA data_version` changes for this connection when any other connection commits,
 * and then both caches are dropped: checked inside every batch (exact: the batch holds the
 * write lock), when a batch becomes durable, and before reads at most once per event-loop
 * turn (the PRAGMA costs about as much as the read it guards; another process's commit
 * may land at any instant anyway).
 */
import { LRUCache } from 'lru-cache'
import type { InboxEntry } from '../protocol/chat-types.js'
import { InboxTailCache } from './inbox-tail-cache.js'
import type { SqliteDatabase } from './sqlite-account-store.js'

/** Users whose head stays cached; more are read again from inbox_heads when needed. */
const CACHED_HEADS = 200_000

/** What one batch did to the inboxes, from beginBatch until it is durable (or known not to be). */
export interface BatchMemory {
  /** userId -> last version the batch assigned: the head once it commits. */
  readonly heads: Map<number, number>
  /** userId -> first version the batch assigned: from there on, reads hold back until it is durable. */
  readonly firstVersions: Map<number, number>
  readonly entries: Array<{ userId: number; entry: InboxEntry }>
  /** Users with an entry not kept in memory: their tails are dropped. */
  readonly untracked: number[]
  /** InboxMemory's generation when the batch began. */
  readonly generation: number
}

export class InboxMemory {
  private readonly db: SqliteDatabase
  private readonly heads = new LRUCache<number, number>({ max: CACHED_HEADS })
  private readonly tails = new InboxTailCache()
  /** The batch inside its transaction (transactions are synchronous: one at a time). */
  private batch: BatchMemory | undefined
  /** Moves whenever tails were cleared or written around: batches older than it may not append. */
  private generation = 0
  private readonly readHead
  private readonly writeHead
  private readonly dataVersion
  private lastDataVersion: number
  private checkedThisTurn = false

  constructor(db: SqliteDatabase) {
    this.db = db
    this.readHead = db.prepare('SELECT version FROM inbox_heads WHERE user_id = ?').pluck()
    this.writeHead = db.prepare('INSERT INTO inbox_heads (user_id, version) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE SET version = excluded.version')
    this.dataVersion = db.prepare('PRAGMA data_version').pluck()
    this.lastDataVersion = this.dataVersion.get() as number
  }

  // ---- the batch (inside its transaction) ----

  beginBatch(): void {
    this.noticeOtherWriters()
    this.batch = { heads: new Map(), firstVersions: new Map(), entries: [], untracked: [], generation: this.generation }
  }

  /** The next version of the user's inbox. */
  nextVersion(userId: number): number {
    const batch = this.current()
    const version = this.currentVersion(userId) + 1
    batch.heads.set(userId, version)
    if (!batch.firstVersions.has(userId)) batch.firstVersions.set(userId, version)
    return version
  }

  /** The head as the batch under way sees it (0 for an empty inbox). */
  currentVersion(userId: number): number {
    const pending = this.batch?.heads.get(userId)
    if (pending !== undefined) return pending
    const cached = this.heads.get(userId)
    if (cached !== undefined) return cached
    const head = (this.readHead.get(userId) as number | undefined) ?? 0
    this.heads.set(userId, head)
    return head
  }

  /** An entry the batch inserted, exactly as readInbox would return it. */
  added(userId: number, entry: InboxEntry): void {
    this.current().entries.push({ userId, entry })
  }

  /** The batch inserted an entry of `userId` that is not kept in memory: read that inbox from the table. */
  addedUntracked(userId: number): void {
    this.current().untracked.push(userId)
  }

  /** Last statement of the batch: one head row per touched user. Throws what SQLite throws. */
  endBatch(): void {
    for (const [userId, version] of this.current().heads) this.writeHead.run(userId, version)
  }

  // ---- after the transaction ----

  /**
   * The batch committed; `nested`: inside a caller's transaction, which may still roll back
   * (its heads and entries are forgotten, and it is durable or gone when that one ends).
   * Returns the batch, for `durable`.
   */
  committed(nested: boolean): BatchMemory {
    const batch = this.current()
    this.batch = undefined
    if (nested) {
      for (const userId of batch.heads.keys()) this.heads.delete(userId)
      this.generation++ // a batch syncing meanwhile must not append past these entries
      this.durable(batch, false)
    } else {
      for (const [userId, version] of batch.heads) this.heads.set(userId, version)
    }
    return batch
  }

  rolledBack(): void {
    this.batch = undefined
  }

  /**
   * The committed batch's WAL is on disk (or, `ok` false, not known to be): serve its
   * entries, or forget those inboxes. Also forgets them when the tails were cleared or
   * written around since the batch began (see the top of the file).
   */
  durable(batch: BatchMemory, ok: boolean): void {
    if (this.db.open) this.noticeOtherWriters() // a commit by another connection while this batch synced
    const append = ok && batch.generation === this.generation
    for (const { userId, entry } of batch.entries) {
      if (append) this.tails.append(userId, entry)
      else this.tails.forget(userId)
    }
    for (const userId of batch.untracked) this.tails.forget(userId)
  }

  /** Entries of these inboxes were deleted: their tails may not be served, nor appended to by a batch begun before. */
  pruned(userIds: readonly number[]): void {
    for (const userId of userIds) this.tails.forget(userId)
    this.generation++
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
    this.generation++
  }

  private current(): BatchMemory {
    if (this.batch === undefined) throw new Error('InboxMemory: no batch under way')
    return this.batch
  }
}
