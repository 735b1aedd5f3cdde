/**
 * AccountStore over better-sqlite3: one file `pigeon.db` in a data directory, WAL mode,
 * schema migrations recorded in `schema_version`. The messaging store (issue 4) shares the
 * connection (`store.db`) and appends its own migrations after ACCOUNT_MIGRATIONS.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { CommitDurability } from './sqlite-durability.js'
import {
  StoreError,
  checkDeviceName,
  checkUsername,
  normalizeDeviceName,
  type AccountStore,
  type DeviceRecord,
  type SessionTokenRecord,
  type UserRecord,
} from './account-store.js'

export type SqliteDatabase = Database.Database

export interface Migration {
  /** 1, 2, 3... consecutive; applied in order, each in its own transaction. */
  version: number
  name: string
  up(db: SqliteDatabase): void
}

export const ACCOUNT_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'accounts: users, devices, session tokens',
    up(db) {
      db.exec(`
        CREATE TABLE users (
          user_id INTEGER PRIMARY KEY AUTOINCREMENT,
          username TEXT NOT NULL UNIQUE,
          password_hash TEXT NOT NULL,
          created_at_ms INTEGER NOT NULL
        );
        CREATE TABLE devices (
          device_id INTEGER PRIMARY KEY AUTOINCREMENT,
          user_id INTEGER NOT NULL REFERENCES users(user_id),
          name TEXT NOT NULL,
          created_at_ms INTEGER NOT NULL,
          last_seen_at_ms INTEGER NOT NULL,
          UNIQUE (user_id, name)
        );
        CREATE TABLE session_tokens (
          token_id TEXT PRIMARY KEY,
          user_id INTEGER NOT NULL REFERENCES users(user_id),
          device_id INTEGER NOT NULL REFERENCES devices(device_id),
          issued_at_ms INTEGER NOT NULL,
          expires_at_ms INTEGER NOT NULL,
          revoked_at_ms INTEGER
        );
        CREATE INDEX session_tokens_by_user ON session_tokens(user_id, revoked_at_ms);
        CREATE INDEX session_tokens_by_expiry ON session_tokens(expires_at_ms);
      `)
    },
  },
]

export const DEFAULT_DATA_DIR = './data'
export const DATABASE_FILE = 'pigeon.db'

export interface SqliteAccountStoreOptions {
  /** Directory holding pigeon.db (created if missing). Default ./data. */
  dataDir?: string
  /** Defaults to ACCOUNT_MIGRATIONS; issue 4 passes [...ACCOUNT_MIGRATIONS, ...its own]. */
  migrations?: readonly Migration[]
  /** PRAGMA synchronous; FULL (default) fsyncs every commit. */
  synchronous?: 'FULL' | 'NORMAL'
  /** How long a writer waits for another process (admin CLI vs server). Default 5000. */
  busyTimeoutMs?: number
}

/** Open (creating if needed) and migrate the database; usable without the account store. */
export const openDatabase = (options: SqliteAccountStoreOptions = {}): SqliteDatabase => {
  const dataDir = options.dataDir ?? DEFAULT_DATA_DIR
  mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  const db = new Database(join(dataDir, DATABASE_FILE))
  try {
    db.pragma('journal_mode = WAL')
    db.pragma(`synchronous = ${options.synchronous ?? 'FULL'}`)
    db.pragma('foreign_keys = ON')
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`)
    migrate(db, options.migrations ?? ACCOUNT_MIGRATIONS)
  } catch (err) {
    db.close()
    throw err
  }
  return db
}

export const schemaVersion = (db: SqliteDatabase): number => {
  const row = db.prepare('SELECT MAX(version) AS v FROM schema_version').get() as { v: number | null } | undefined
  return row?.v ?? 0
}

export const migrate = (db: SqliteDatabase, migrations: readonly Migration[]): void => {
  db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at_ms INTEGER NOT NULL)')
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new StoreError('INVALID_ARGUMENT', `migration ${m.name} has version ${m.version}, expected ${i + 1}`)
  })
  const current = schemaVersion(db)
  if (current > migrations.length) {
    throw new StoreError('INVALID_ARGUMENT', `database schema version ${current} is newer than this program knows (${migrations.length})`)
  }
  const record = db.prepare('INSERT INTO schema_version (version, name, applied_at_ms) VALUES (?, ?, ?)')
  for (const m of migrations.slice(current)) {
    // IMMEDIATE: two processes opening a fresh database must not both migrate.
    db.transaction(() => {
      if (schemaVersion(db) >= m.version) return
      m.up(db)
      record.run(m.version, m.name, Date.now())
    }).immediate()
  }
}

interface UserRow { user_id: number; username: string; password_hash: string; created_at_ms: number }
interface DeviceRow { device_id: number; user_id: number; name: string; created_at_ms: number; last_seen_at_ms: number }
interface TokenRow { token_id: string; user_id: number; device_id: number; issued_at_ms: number; expires_at_ms: number; revoked_at_ms: number | null }

const toUser = (r: UserRow): UserRecord => ({ userId: r.user_id, username: r.username, passwordHash: r.password_hash, createdAtMs: r.created_at_ms })
const toDevice = (r: DeviceRow): DeviceRecord => ({ deviceId: r.device_id, userId: r.user_id, name: r.name, createdAtMs: r.created_at_ms, lastSeenAtMs: r.last_seen_at_ms })
const toToken = (r: TokenRow): SessionTokenRecord => ({
  tokenId: r.token_id,
  userId: r.user_id,
  deviceId: r.device_id,
  issuedAtMs: r.issued_at_ms,
  expiresAtMs: r.expires_at_ms,
  revokedAtMs: r.revoked_at_ms,
})

const isConstraint = (err: unknown, kind: string): boolean =>
  typeof err === 'object' && err !== null && (err as { code?: unknown }).code === kind

export class SqliteAccountStore implements AccountStore {
  readonly db: SqliteDatabase
  private readonly q
  private readonly durability: CommitDurability

  constructor(options: SqliteAccountStoreOptions = {}) {
    this.db = openDatabase(options)
    const db = this.db
    this.durability = new CommitDurability(db)
    this.q = {
      insertUser: db.prepare('INSERT INTO users (username, password_hash, created_at_ms) VALUES (?, ?, ?)'),
      userByName: db.prepare('SELECT * FROM users WHERE username = ?'),
      userById: db.prepare('SELECT * FROM users WHERE user_id = ?'),
      listUsers: db.prepare('SELECT * FROM users ORDER BY user_id'),
      setPassword: db.prepare('UPDATE users SET password_hash = ? WHERE user_id = ?'),
      replacePassword: db.prepare('UPDATE users SET password_hash = ? WHERE user_id = ? AND password_hash = ?'),
      insertDevice: db.prepare('INSERT INTO devices (user_id, name, created_at_ms, last_seen_at_ms) VALUES (?, ?, ?, ?)'),
      deviceById: db.prepare('SELECT * FROM devices WHERE device_id = ?'),
      deviceByName: db.prepare('SELECT * FROM devices WHERE user_id = ? AND name = ?'),
      listDevices: db.prepare('SELECT * FROM devices WHERE user_id = ? ORDER BY device_id'),
      touchDevice: db.prepare('UPDATE devices SET last_seen_at_ms = ? WHERE device_id = ?'),
      insertToken: db.prepare('INSERT INTO session_tokens (token_id, user_id, device_id, issued_at_ms, expires_at_ms, revoked_at_ms) VALUES (?, ?, ?, ?, ?, ?)'),
      tokenById: db.prepare('SELECT * FROM session_tokens WHERE token_id = ?'),
      revokeToken: db.prepare('UPDATE session_tokens SET revoked_at_ms = ? WHERE token_id = ? AND revoked_at_ms IS NULL'),
      revokeAll: db.prepare('UPDATE session_tokens SET revoked_at_ms = ? WHERE user_id = ? AND revoked_at_ms IS NULL AND expires_at_ms > ?'),
      activeTokens: db.prepare('SELECT * FROM session_tokens WHERE user_id = ? AND revoked_at_ms IS NULL AND expires_at_ms > ? ORDER BY issued_at_ms, token_id'),
      deleteExpired: db.prepare('DELETE FROM session_tokens WHERE expires_at_ms < ?'),
    }
  }

  async createUser(args: { username: string; passwordHash: string; nowMs: number }): Promise<UserRecord> {
    checkUsername(args.username)
    try {
      const info = this.run(() => this.q.insertUser.run(args.username, args.passwordHash, args.nowMs))
      return { userId: Number(info.lastInsertRowid), username: args.username, passwordHash: args.passwordHash, createdAtMs: args.nowMs }
    } catch (err) {
      if (isConstraint(err, 'SQLITE_CONSTRAINT_UNIQUE')) throw new StoreError('USER_EXISTS', `user ${args.username} exists`)
      throw err
    }
  }

  async getUserByName(username: string): Promise<UserRecord | undefined> {
    const row = this.run(() => this.q.userByName.get(username)) as UserRow | undefined
    return row && toUser(row)
  }

  async getUserById(userId: number): Promise<UserRecord | undefined> {
    const row = this.run(() => this.q.userById.get(userId)) as UserRow | undefined
    return row && toUser(row)
  }

  async listUsers(): Promise<UserRecord[]> {
    return (this.run(() => this.q.listUsers.all()) as UserRow[]).map(toUser)
  }

  async setPassword(args: { userId: number; passwordHash: string }): Promise<void> {
    const info = this.run(() => this.q.setPassword.run(args.passwordHash, args.userId))
    if (info.changes === 0) throw new StoreError('UNKNOWN_USER', `no user ${args.userId}`)
  }

  async replacePasswordHash(args: { userId: number; expectedPasswordHash: string; passwordHash: string }): Promise<boolean> {
    // One statement: atomic against another connection's (the admin CLI's) password change.
    return this.run(() => this.q.replacePassword.run(args.passwordHash, args.userId, args.expectedPasswordHash)).changes > 0
  }

  async createDevice(args: { userId: number; name: string; nowMs: number }): Promise<DeviceRecord> {
    const name = checkDeviceName(args.name)
    try {
      const info = this.run(() => this.q.insertDevice.run(args.userId, name, args.nowMs, args.nowMs))
      return { deviceId: Number(info.lastInsertRowid), userId: args.userId, name, createdAtMs: args.nowMs, lastSeenAtMs: args.nowMs }
    } catch (err) {
      if (isConstraint(err, 'SQLITE_CONSTRAINT_UNIQUE')) throw new StoreError('DEVICE_EXISTS', `device ${name} exists`)
      if (isConstraint(err, 'SQLITE_CONSTRAINT_FOREIGNKEY')) throw new StoreError('UNKNOWN_USER', `no user ${args.userId}`)
      throw err
    }
  }

  async getDevice(deviceId: number): Promise<DeviceRecord | undefined> {
    const row = this.run(() => this.q.deviceById.get(deviceId)) as DeviceRow | undefined
    return row && toDevice(row)
  }

  async getDeviceByName(args: { userId: number; name: string }): Promise<DeviceRecord | undefined> {
    const name = normalizeDeviceName(args.name)
    let row = this.run(() => this.q.deviceByName.get(args.userId, name)) as DeviceRow | undefined
    // A device created before names were normalized may be stored in the form it was typed.
    if (row === undefined && name !== args.name) row = this.run(() => this.q.deviceByName.get(args.userId, args.name)) as DeviceRow | undefined
    return row && toDevice(row)
  }

  async listDevices(userId: number): Promise<DeviceRecord[]> {
    return (this.run(() => this.q.listDevices.all(userId)) as DeviceRow[]).map(toDevice)
  }

  /**
   * "Last seen" is a hint, written on every login and RESUME: it is committed without an
   * fsync of its own (synchronous = NORMAL for this one commit), so a reconnect storm is
   * not one fsync per session. The next durable commit (any message batch) fsyncs the WAL
   * and carries it to disk; a crash before that loses at most the newest last-seen times.
   */
  async touchDevice(args: { deviceId: number; nowMs: number }): Promise<void> {
    const info = this.run(() => this.durability.withoutOwnFsync(() => this.q.touchDevice.run(args.nowMs, args.deviceId)))
    if (info.changes === 0) throw new StoreError('UNKNOWN_DEVICE', `no device ${args.deviceId}`)
  }

  async insertSessionToken(r: SessionTokenRecord): Promise<void> {
    this.run(() =>
      this.db.transaction(() => {
        if (!this.q.userById.get(r.userId)) throw new StoreError('UNKNOWN_USER', `no user ${r.userId}`)
        const device = this.q.deviceById.get(r.deviceId) as DeviceRow | undefined
        if (!device || device.user_id !== r.userId) throw new StoreError('UNKNOWN_DEVICE', `no device ${r.deviceId} for user ${r.userId}`)
        try {
          this.q.insertToken.run(r.tokenId, r.userId, r.deviceId, r.issuedAtMs, r.expiresAtMs, r.revokedAtMs)
        } catch (err) {
          if (isConstraint(err, 'SQLITE_CONSTRAINT_PRIMARYKEY')) throw new StoreError('TOKEN_EXISTS', 'token id exists')
          throw err
        }
      })(),
    )
  }

  async getSessionToken(tokenId: string): Promise<SessionTokenRecord | undefined> {
    const row = this.run(() => this.q.tokenById.get(tokenId)) as TokenRow | undefined
    return row && toToken(row)
  }

  async revokeToken(args: { tokenId: string; nowMs: number }): Promise<boolean> {
    return this.run(() => this.q.revokeToken.run(args.nowMs, args.tokenId)).changes > 0
  }

  async revokeAllForUser(args: { userId: number; nowMs: number }): Promise<number> {
    return this.run(() => this.q.revokeAll.run(args.nowMs, args.userId, args.nowMs)).changes
  }

  async listActiveTokens(args: { userId: number; nowMs: number }): Promise<SessionTokenRecord[]> {
    return (this.run(() => this.q.activeTokens.all(args.userId, args.nowMs)) as TokenRow[]).map(toToken)
  }

  async deleteExpiredTokens(args: { beforeMs: number }): Promise<number> {
    return this.run(() => this.q.deleteExpired.run(args.beforeMs)).changes
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close()
  }

  private run<T>(fn: () => T): T {
    if (!this.db.open) throw new StoreError('STORE_CLOSED', 'store is closed')
    return fn()
  }
}
