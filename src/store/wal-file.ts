/**
 * The WAL file of the message store's database, which a batch fdatasyncs off the event
 * loop after its commit (sqlite-message-store.ts).
 *
 * SQLite resolves symlinks and keeps the WAL beside the database file's real path, so
 * the path here is `realpath(db)-wal`, not `${db.name}-wal`: with pigeon.db a symlink the
 * latter names no file (every batch fails) or a stale one (synced while the real WAL is not).
 *
 * The file is opened before a batch commits, so a WAL that cannot be opened fails that
 * batch with nothing committed. A failed fdatasync is different: the batch has committed,
 * and the caller must treat the store as failed (see SqliteMessageStore).
 */
import { closeSync, fdatasync, openSync, realpathSync } from 'node:fs'
import { promisify } from 'node:util'

/** fs.fdatasync on libuv's thread pool. */
export const fdatasyncOffLoop: (fd: number) => Promise<void> = promisify(fdatasync)

export class WalFile {
  /** Where SQLite keeps the WAL of the database at `databasePath`. */
  readonly path: string
  private readonly fdatasync: (fd: number) => Promise<void>
  private fd: number | undefined

  constructor(databasePath: string, fdatasyncFn: (fd: number) => Promise<void> = fdatasyncOffLoop) {
    this.path = `${realpathSync(databasePath)}-wal`
    this.fdatasync = fdatasyncFn
  }

  /** Open the file if it is not yet; throws what openSync throws. */
  open(): void {
    this.fd ??= openSync(this.path, 'r')
  }

  /** fdatasync the open file; rejects what fdatasync rejects. */
  sync(): Promise<void> {
    if (this.fd === undefined) return Promise.reject(new Error(`WAL ${this.path} is not open`))
    return this.fdatasync(this.fd)
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd)
    this.fd = undefined
  }
}
