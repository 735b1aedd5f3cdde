/**
 * The newest entries of recently written inboxes, in memory. A device that keeps up (the
 * usual case: PUSH, then SYNC from the version before the new entry) is answered without
 * reading SQLite; anything the cache cannot answer exactly goes to the database.
 *
 * Exactness rests on one rule: the owner appends EVERY entry its connection commits, in
 * version order, once the entry is durable. A tail is a run of consecutive versions ending
 * at the inbox's head; an entry that does not continue it starts a new tail. The owner
 * clears the cache when another connection wrote (PRAGMA data_version) or entries were
 * pruned, and forgets a user whose entries it could not append.
 *
 * Bounded by bytes (bodies dominate) and entries per user. Readers get copies, as they
 * would from the table.
 */
import { LRUCache } from 'lru-cache'
import type { InboxEntry } from '../protocol/chat-types.js'

export interface InboxTailCacheOptions {
  /** Entries kept per user (the newest). Default 256: a sender with 64 messages in flight has 128 new entries (its copies and their receipts) by its next sync. */
  entriesPerUser?: number
  /** Approximate bytes for all tails together. Default 64 MiB. */
  maxBytes?: number
}

interface Tail {
  /** Version of entries[0]; the rest follow one by one. */
  first: number
  entries: InboxEntry[]
  bytes: number
}

/** Rough footprint of one entry: the object, plus the body's UTF-16 string. */
const entryBytes = (e: InboxEntry): number => 160 + (e.kind === 'message' ? e.body.length * 2 : 0)

const copyOf = (e: InboxEntry): InboxEntry =>
  e.kind === 'message' ? { ...e, to: { ...e.to }, clientMsgId: e.clientMsgId.slice() } : { ...e }

export class InboxTailCache {
  private readonly tails: LRUCache<number, Tail>
  private readonly entriesPerUser: number

  constructor(options: InboxTailCacheOptions = {}) {
    this.entriesPerUser = Math.max(1, options.entriesPerUser ?? 256)
    this.tails = new LRUCache<number, Tail>({ maxSize: Math.max(1024, options.maxBytes ?? 64 * 1024 * 1024), sizeCalculation: (t) => Math.max(1, t.bytes) })
  }

  /** A durable entry of `userId`'s inbox, in version order. */
  append(userId: number, entry: InboxEntry): void {
    let tail = this.tails.get(userId)
    if (tail === undefined || entry.version !== tail.first + tail.entries.length) {
      tail = { first: entry.version, entries: [], bytes: 0 }
    }
    tail.entries.push(entry)
    tail.bytes += entryBytes(entry)
    if (tail.entries.length > this.entriesPerUser) {
      const dropped = tail.entries.shift()!
      tail.bytes -= entryBytes(dropped)
      tail.first++
    }
    this.tails.set(userId, tail) // (again) so the size is recounted
  }

  /** The inbox's head, if this user's tail is cached. */
  head(userId: number): number | undefined {
    const tail = this.tails.get(userId)
    return tail === undefined ? undefined : tail.first + tail.entries.length - 1
  }

  /**
   * Entries after `afterVersion` (at most `limit`, oldest first), or undefined when the
   * cache does not hold every one of them.
   */
  read(userId: number, afterVersion: number, limit: number): InboxEntry[] | undefined {
    return this.readShared(userId, afterVersion, limit)?.map(copyOf)
  }

  /** Like read, without copying: for the store's own use, which must not modify what it gets. */
  readShared(userId: number, afterVersion: number, limit: number): readonly InboxEntry[] | undefined {
    const tail = this.tails.get(userId)
    if (tail === undefined || afterVersion < tail.first - 1) return undefined
    const start = afterVersion + 1 - tail.first
    return tail.entries.slice(start, start + limit)
  }

  forget(userId: number): void {
    this.tails.delete(userId)
  }

  clear(): void {
    this.tails.clear()
  }
}
