/**
 * Test helpers for the SQLite message store's WAL sync: SyncGate stands in for its
 * fdatasync (SqliteMessageStoreOptions.fdatasync) and holds every call until the test
 * releases it (the real fdatasync then runs) or fails it; `openGatedStores` opens a data
 * directory with a gated message store.
 */
import { fdatasync } from 'node:fs'
import { SqliteAccountStore } from '../../src/store/sqlite-account-store.js'
import { SQLITE_MIGRATIONS } from '../../src/store/sqlite-message-schema.js'
import { SqliteMessageStore } from '../../src/store/sqlite-message-store.js'

interface HeldSync {
  fd: number
  resolve: () => void
  reject: (err: unknown) => void
}

export class SyncGate {
  /** Every fd the store asked to sync, in order. */
  readonly fds: number[] = []
  private readonly held: HeldSync[] = []
  private readonly waiters: Array<{ count: number; resolve: () => void }> = []

  readonly fdatasync = (fd: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      this.fds.push(fd)
      this.held.push({ fd, resolve, reject })
      for (const w of this.waiters.splice(0)) {
        if (this.held.length >= w.count) w.resolve()
        else this.waiters.push(w)
      }
    })

  /** Syncs asked for and not yet released or failed. */
  get heldCount(): number {
    return this.held.length
  }

  /** Resolves once `count` syncs are held (no clock involved). */
  whenHeld(count = 1): Promise<void> {
    if (this.held.length >= count) return Promise.resolve()
    return new Promise((resolve) => this.waiters.push({ count, resolve }))
  }

  /** The oldest held sync runs the real fdatasync. */
  release(): void {
    const h = this.take()
    fdatasync(h.fd, (err) => (err ? h.reject(err) : h.resolve()))
  }

  /** The oldest held sync fails as the kernel reports it (EIO, ENOSPC, EBADF...). */
  fail(code = 'EIO'): Error {
    const h = this.take()
    const err = Object.assign(new Error(`${code}: simulated failure, fdatasync`), { code, syscall: 'fdatasync' })
    h.reject(err)
    return err
  }

  /** Release everything held, e.g. before closing in a teardown. */
  releaseAll(): void {
    while (this.held.length > 0) this.release()
  }

  private take(): HeldSync {
    const h = this.held.shift()
    if (h === undefined) throw new Error('no WAL sync is held')
    return h
  }
}

export interface GatedStores {
  accounts: SqliteAccountStore
  messages: SqliteMessageStore
  gate: SyncGate
  close(): Promise<void>
}

/** pigeon.db in `dataDir`, its message store's WAL syncs held by a SyncGate; the message store owns the connection. */
export const openGatedStores = (dataDir: string): GatedStores => {
  const accounts = new SqliteAccountStore({ dataDir, migrations: SQLITE_MIGRATIONS })
  const gate = new SyncGate()
  const messages = new SqliteMessageStore(accounts.db, { ownsDatabase: true, fdatasync: gate.fdatasync })
  return {
    accounts,
    messages,
    gate,
    close: async () => {
      const closing = messages.close()
      // Whatever the test left held is released as batches reach their turn.
      while (messages.db.open) {
        gate.releaseAll()
        await Promise.race([closing, gate.whenHeld(1)])
      }
      await closing
    },
  }
}
