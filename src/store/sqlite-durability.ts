/**
 * Commits that need no fsync of their own, on a connection opened with
 * synchronous = FULL (every commit fsyncs the WAL). `withoutOwnFsync(fn)` runs fn's
 * autocommit or transaction with synchronous = NORMAL (WAL frames written, not synced)
 * and restores FULL; the next FULL commit, or an fdatasync of the WAL file, puts it on
 * disk. Used for last-seen times (a hint) and by the message store, which syncs the WAL
 * of each batch itself, off the event loop.
 */
import type { SqliteDatabase } from './sqlite-account-store.js'

/** PRAGMA synchronous reads back as a number: 2 is FULL. */
const SYNCHRONOUS_FULL = 2

export class CommitDurability {
  /** The connection fsyncs every commit (synchronous = FULL when this was made). */
  readonly fullSync: boolean
  private readonly db: SqliteDatabase
  private readonly toNormal
  private readonly toFull

  constructor(db: SqliteDatabase) {
    this.db = db
    this.fullSync = db.pragma('synchronous', { simple: true }) === SYNCHRONOUS_FULL
    this.toNormal = db.prepare('PRAGMA synchronous = NORMAL')
    this.toFull = db.prepare('PRAGMA synchronous = FULL')
  }

  /** Run fn's commit without its own fsync. Inside an open transaction (mode cannot change) fn just runs. */
  withoutOwnFsync<T>(fn: () => T): T {
    if (!this.fullSync || this.db.inTransaction) return fn()
    this.toNormal.run()
    try {
      return fn()
    } finally {
      this.toFull.run()
    }
  }
}
