/**
 * MessageStore over better-sqlite3, sharing the account store's connection and file
 * (`pigeon.db`, WAL). Its schema is MESSAGE_MIGRATIONS (sqlite-message-schema.ts), applied
 * after ACCOUNT_MIGRATIONS: open the database with SQLITE_MIGRATIONS (or `openSqliteStores`).
 *
 * applyBatch runs the whole batch in ONE immediate transaction, so with WAL and
 * synchronous=FULL a batch costs exactly one fsync of the WAL, however many writes it holds.
 * That fsync does not block the event loop: the batch commits with synchronous=NORMAL
 * (frames written to the WAL, not synced) and applyBatch then fdatasyncs the WAL file on
 * libuv's thread pool and resolves only after it returns — the same guarantee as FULL
 * (the WAL holding the commit is on disk before anyone is told), while the server goes on
 * serving meanwhile. Until then the batch's inbox entries are held back from
 * readInbox / inboxHead, so no device can hold an entry a power cut could still undo.
 * Inbox versions come from `inbox_heads` (one counter per user), so they are strictly
 * increasing and never reused, even after entries are pruned. Heads and the newest
 * entries of each written inbox are also kept in memory (sqlite-inbox-memory.ts): a batch
 * writes each touched head once, and a device that keeps up syncs without a read.
 *
 * Retention (pruneInboxes) deletes inbox rows, then every message whose last 'message'
 * inbox row went with them (its receipts follow by ON DELETE CASCADE). Message ids are
 * AUTOINCREMENT, so a pruned message's id is never handed out again. Receipt rows in the
 * sender's inbox do not keep a message alive (they carry the msgId themselves).
 */
import { closeSync, fdatasync, openSync } from 'node:fs'
import { promisify } from 'node:util'
import type { InboxEntry } from '../protocol/chat-types.js'
import { checkGroupName, checkInboxWrite, orderVersionsLike, uniqueUserIds } from './group-commit.js'
import {
  MessageStoreError,
  type GroupRecord,
  type InboxWrite,
  type InboxWriteResult,
  type MessageStore,
  type RetentionPolicy,
  type StoredMessage,
} from './message-store.js'
import { CommitDurability } from './sqlite-durability.js'
import { InboxMemory } from './sqlite-inbox-memory.js'
import { ACCOUNT_MIGRATIONS, SqliteAccountStore, schemaVersion, type SqliteDatabase } from './sqlite-account-store.js'
import {
  EVENT_CODE,
  type GroupRow,
  type InboxRow,
  KIND_MESSAGE,
  type MessageRow,
  STATUS_BY_CODE,
  STATUS_CODE,
  TO_GROUP,
  TO_USER,
  toEntry,
  toGroup,
  toPeer,
  toStored,
} from './sqlite-message-rows.js'
import { MESSAGE_MIGRATIONS, SQLITE_MIGRATIONS } from './sqlite-message-schema.js'

const isId = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n > 0
const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0
const invalid = (message: string): MessageStoreError => new MessageStoreError('INVALID_ARGUMENT', message)
const unknownUser = (userId: number): MessageStoreError => new MessageStoreError('UNKNOWN_USER', `no user ${userId}`)
const unknownGroup = (groupId: number): MessageStoreError => new MessageStoreError('UNKNOWN_GROUP', `no group ${groupId}`)
const isForeignKey = (err: unknown): boolean =>
  typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'SQLITE_CONSTRAINT_FOREIGNKEY'

const bytes = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength)
type MessageWrite = Extract<InboxWrite, { kind: 'message' }>
type ReceiptWrite = Extract<InboxWrite, { kind: 'receipt' }>
type GroupEventWrite = Extract<InboxWrite, { kind: 'group_event' }>
type FinWrite = Extract<InboxWrite, { kind: 'fin' }>

export interface SqliteMessageStoreOptions {
  /** close() also closes the database. Default false: the account store owns it. */
  ownsDatabase?: boolean
}

const fdatasyncAsync = promisify(fdatasync)

export class SqliteMessageStore implements MessageStore {
  readonly db: SqliteDatabase
  private readonly ownsDatabase: boolean
  private closed = false
  private readonly q
  private readonly batchTx
  private readonly memory: InboxMemory
  private readonly pruneTx
  /** WAL database opened with synchronous=FULL: batches sync the WAL off the event loop. */
  private readonly syncOffLoop: boolean
  private readonly durability: CommitDurability
  private walFd: number | undefined
  /** userId -> lowest version written by the batch whose WAL sync is under way (held back from reads). */
  private readonly notYetDurable = new Map<number, number>()

  /** `db` must have been opened with SQLITE_MIGRATIONS (openDatabase / SqliteAccountStore). */
  constructor(db: SqliteDatabase, options: SqliteMessageStoreOptions = {}) {
    const needed = ACCOUNT_MIGRATIONS.length + MESSAGE_MIGRATIONS.length
    if (schemaVersion(db) < needed) {
      throw invalid(`database schema version ${schemaVersion(db)} lacks the messaging tables (${needed}): open it with SQLITE_MIGRATIONS`)
    }
    this.db = db
    this.ownsDatabase = options.ownsDatabase ?? false
    this.q = {
      userExists: db.prepare('SELECT 1 FROM users WHERE user_id = ?').pluck(),

      insertContact: db.prepare('INSERT OR IGNORE INTO contacts (user_id, contact_user_id, created_at_ms) VALUES (?, ?, ?)'),
      deleteContact: db.prepare('DELETE FROM contacts WHERE user_id = ? AND contact_user_id = ?'),
      listContacts: db.prepare('SELECT contact_user_id FROM contacts WHERE user_id = ? ORDER BY contact_user_id').pluck(),

      insertGroup: db.prepare('INSERT INTO groups (name, created_by_user_id, created_at_ms) VALUES (?, ?, ?)'),
      groupById: db.prepare('SELECT * FROM groups WHERE group_id = ?'),
      groupExists: db.prepare('SELECT 1 FROM groups WHERE group_id = ?').pluck(),
      renameGroup: db.prepare('UPDATE groups SET name = ? WHERE group_id = ?'),
      insertMember: db.prepare('INSERT INTO group_members (group_id, user_id, joined_at_ms) VALUES (?, ?, ?)'),
      isMember: db.prepare('SELECT 1 FROM group_members WHERE group_id = ? AND user_id = ?').pluck(),
      deleteMember: db.prepare('DELETE FROM group_members WHERE group_id = ? AND user_id = ?'),
      listMembers: db.prepare('SELECT user_id FROM group_members WHERE group_id = ? ORDER BY user_id').pluck(),
      groupsOf: db.prepare('SELECT g.* FROM group_members m JOIN groups g ON g.group_id = m.group_id WHERE m.user_id = ? ORDER BY m.group_id'),

      insertMessage: db.prepare(`
        INSERT INTO messages (sender_user_id, sender_device_id, client_msg_id, to_kind, to_id, body, sent_at_ms)
        VALUES (?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (sender_user_id, client_msg_id) DO NOTHING
        RETURNING msg_id`).pluck(),
      messageByClientId: db.prepare(
        'SELECT msg_id, sender_user_id, sender_device_id, to_kind, to_id, sent_at_ms FROM messages WHERE sender_user_id = ? AND client_msg_id = ?',
      ),
      messageById: db.prepare('SELECT msg_id, sender_user_id, sender_device_id, to_kind, to_id, sent_at_ms FROM messages WHERE msg_id = ?'),
      senderOf: db.prepare('SELECT sender_user_id FROM messages WHERE msg_id = ?').pluck(),
      copiesOf: db.prepare('SELECT user_id, version FROM inbox WHERE kind = 1 AND msg_id = ?'),
      insertReceipt: db.prepare('INSERT OR IGNORE INTO receipts (msg_id, by_user_id, status, created_at_ms) VALUES (?, ?, ?, ?)'),

      head: db.prepare('SELECT version FROM inbox_heads WHERE user_id = ?').pluck(),
      insertMessageEntry: db.prepare('INSERT INTO inbox (user_id, version, kind, msg_id, created_at_ms) VALUES (?, ?, 1, ?, ?)'),
      insertReceiptEntry: db.prepare('INSERT INTO inbox (user_id, version, kind, msg_id, code, actor_user_id, created_at_ms) VALUES (?, ?, 2, ?, ?, ?, ?)'),
      insertGroupEntry: db.prepare(
        'INSERT INTO inbox (user_id, version, kind, group_id, code, actor_user_id, subject_user_id, name, created_at_ms) VALUES (?, ?, 3, ?, ?, ?, ?, ?, ?)',
      ),
      readInbox: db.prepare(`
        SELECT i.version, i.kind, i.msg_id, i.group_id, i.code, i.actor_user_id, i.subject_user_id, i.name, i.created_at_ms,
               m.sender_user_id, m.sender_device_id, m.client_msg_id, m.to_kind, m.to_id, m.body, m.sent_at_ms
        FROM inbox i LEFT JOIN messages m ON i.kind = 1 AND m.msg_id = i.msg_id
        WHERE i.user_id = ? AND i.version > ?
        ORDER BY i.version
        LIMIT ?`).raw(),

      // [msg_id, sender_user_id] of the messages from others in versions (after, upTo]
      heldFromOthers: db.prepare(`
        SELECT i.msg_id, m.sender_user_id
        FROM inbox i JOIN messages m ON m.msg_id = i.msg_id
        WHERE i.user_id = ? AND i.version > ? AND i.version <= ? AND i.kind = 1 AND m.sender_user_id <> ?
        ORDER BY i.version`).raw(),

      getCursor: db.prepare('SELECT version FROM device_cursors WHERE device_id = ?').pluck(),
      setCursor: db.prepare('INSERT INTO device_cursors (device_id, version) VALUES (?, ?) ON CONFLICT (device_id) DO UPDATE SET version = excluded.version'),

      inboxUsers: db.prepare('SELECT user_id FROM inbox_heads ORDER BY user_id').pluck(),
      nthNewest: db.prepare('SELECT version FROM inbox WHERE user_id = ? ORDER BY version DESC LIMIT 1 OFFSET ?').pluck(),
      deleteUpTo: db.prepare('DELETE FROM inbox WHERE user_id = ? AND version <= ? RETURNING kind, msg_id').raw(),
      deleteOlder: db.prepare('DELETE FROM inbox WHERE created_at_ms < ? RETURNING kind, msg_id').raw(),
      deleteOrphan: db.prepare('DELETE FROM messages WHERE msg_id = ? AND NOT EXISTS (SELECT 1 FROM inbox WHERE kind = 1 AND msg_id = ?)'),
    }
    this.batchTx = db.transaction((writes: InboxWrite[], inboxIds: number[][]): InboxWriteResult[] => {
      this.memory.beginBatch()
      const results = new Array<InboxWriteResult>(writes.length)
      for (let i = 0; i < writes.length; i++) {
        const w = writes[i]
        if (w.kind === 'message') results[i] = this.writeMessage(w, inboxIds[i])
        else if (w.kind === 'receipt') results[i] = this.writeReceipt(w)
        else if (w.kind === 'fin') results[i] = this.writeFin(w)
        else results[i] = this.writeGroupEvent(w, inboxIds[i])
      }
      this.memory.endBatch()
      return results
    })
    this.memory = new InboxMemory(db)
    this.pruneTx = db.transaction((policy: RetentionPolicy): number => this.prune(policy))
    this.durability = new CommitDurability(db)
    this.syncOffLoop = this.durability.fullSync && db.name !== ':memory:' && db.pragma('journal_mode', { simple: true }) === 'wal'
  }

  // ---- contacts ----

  async addContact(args: { userId: number; contactUserId: number; nowMs: number }): Promise<boolean> {
    this.open()
    const { userId, contactUserId } = args
    if (userId === contactUserId) throw invalid('a user cannot be their own contact')
    if (!isCount(args.nowMs)) throw invalid(`nowMs ${String(args.nowMs)}`)
    return this.db.transaction(() => {
      this.requireUser(userId)
      this.requireUser(contactUserId)
      const a = this.q.insertContact.run(userId, contactUserId, args.nowMs).changes
      const b = this.q.insertContact.run(contactUserId, userId, args.nowMs).changes
      return a + b > 0
    }).immediate()
  }

  async removeContact(args: { userId: number; contactUserId: number }): Promise<boolean> {
    this.open()
    return this.db.transaction(() => {
      const a = this.q.deleteContact.run(args.userId, args.contactUserId).changes
      const b = this.q.deleteContact.run(args.contactUserId, args.userId).changes
      return a + b > 0
    }).immediate()
  }

  async listContacts(userId: number): Promise<number[]> {
    this.open()
    return this.q.listContacts.all(userId) as number[]
  }

  // ---- groups ----

  async createGroup(args: { name: string; createdByUserId: number; memberUserIds: number[]; nowMs: number }): Promise<GroupRecord> {
    this.open()
    checkGroupName(args.name)
    if (!isCount(args.nowMs)) throw invalid(`nowMs ${String(args.nowMs)}`)
    if (!Array.isArray(args.memberUserIds)) throw invalid('memberUserIds is not an array')
    const members = uniqueUserIds([args.createdByUserId, ...args.memberUserIds])
    return this.db.transaction((): GroupRecord => {
      for (const u of members) this.requireUser(u)
      const groupId = Number(this.q.insertGroup.run(args.name, args.createdByUserId, args.nowMs).lastInsertRowid)
      for (const u of members) this.q.insertMember.run(groupId, u, args.nowMs)
      return { groupId, name: args.name, createdByUserId: args.createdByUserId, createdAtMs: args.nowMs }
    }).immediate()
  }

  async getGroup(groupId: number): Promise<GroupRecord | undefined> {
    this.open()
    const row = this.q.groupById.get(groupId) as GroupRow | undefined
    return row && toGroup(row)
  }

  async listGroupMembers(groupId: number): Promise<number[]> {
    this.open()
    return this.db.transaction((): number[] => {
      this.requireGroup(groupId)
      return this.q.listMembers.all(groupId) as number[]
    })()
  }

  async addGroupMember(args: { groupId: number; userId: number; nowMs: number }): Promise<void> {
    this.open()
    if (!isCount(args.nowMs)) throw invalid(`nowMs ${String(args.nowMs)}`)
    this.db.transaction(() => {
      this.requireGroup(args.groupId)
      this.requireUser(args.userId)
      if (this.q.isMember.get(args.groupId, args.userId) !== undefined) {
        throw new MessageStoreError('ALREADY_MEMBER', `user ${args.userId} is in group ${args.groupId}`)
      }
      this.q.insertMember.run(args.groupId, args.userId, args.nowMs)
    }).immediate()
  }

  async removeGroupMember(args: { groupId: number; userId: number }): Promise<void> {
    this.open()
    this.db.transaction(() => {
      this.requireGroup(args.groupId)
      if (this.q.deleteMember.run(args.groupId, args.userId).changes === 0) {
        throw new MessageStoreError('NOT_A_MEMBER', `user ${args.userId} is not in group ${args.groupId}`)
      }
    }).immediate()
  }

  async renameGroup(args: { groupId: number; name: string }): Promise<void> {
    this.open()
    this.db.transaction(() => {
      this.requireGroup(args.groupId)
      checkGroupName(args.name)
      this.q.renameGroup.run(args.name, args.groupId)
    }).immediate()
  }

  async listGroupsOf(userId: number): Promise<GroupRecord[]> {
    this.open()
    return (this.q.groupsOf.all(userId) as GroupRow[]).map(toGroup)
  }

  // ---- durable writes ----

  async applyBatch(writes: InboxWrite[]): Promise<InboxWriteResult[]> {
    this.open()
    if (!Array.isArray(writes)) throw invalid('writes is not an array')
    const inboxIds = new Array<number[]>(writes.length)
    for (let i = 0; i < writes.length; i++) {
      const w = writes[i]
      checkInboxWrite(w)
      inboxIds[i] = w.kind === 'receipt' || w.kind === 'fin' ? [] : uniqueUserIds(w.inboxUserIds)
    }
    if (writes.length === 0) return []
    if (!this.syncOffLoop || this.db.inTransaction) {
      const results = this.runBatch(writes, inboxIds)
      if (!this.db.inTransaction) this.memory.durable(true)
      return results
    }
    const results = this.durability.withoutOwnFsync(() => this.runBatch(writes, inboxIds))
    // GroupCommit runs one batch at a time; the map is for this batch only.
    for (const r of results) {
      for (const { userId, version } of r.versions) {
        const lowest = this.notYetDurable.get(userId)
        if (lowest === undefined || version < lowest) this.notYetDurable.set(userId, version)
      }
    }
    let synced = false
    try {
      this.walFd ??= openSync(`${this.db.name}-wal`, 'r')
      await fdatasyncAsync(this.walFd)
      synced = true
    } finally {
      this.notYetDurable.clear()
      this.memory.durable(synced)
    }
    return results
  }

  /** The batch's transaction, and the in-memory heads and entries following its outcome. */
  private runBatch(writes: InboxWrite[], inboxIds: number[][]): InboxWriteResult[] {
    let results: InboxWriteResult[]
    try {
      results = this.batchTx.immediate(writes, inboxIds)
    } catch (err) {
      this.memory.rolledBack()
      throw err
    }
    this.memory.committed(this.db.inTransaction)
    return results
  }

  private writeMessage(w: MessageWrite, inboxIds: number[]): InboxWriteResult {
    const clientMsgId = bytes(w.clientMsgId)
    const to = w.to.kind === 'user' ? [TO_USER, w.to.userId] : [TO_GROUP, w.to.groupId]
    let msgId: number | undefined
    try {
      msgId = this.q.insertMessage.get(w.senderUserId, w.senderDeviceId, clientMsgId, to[0], to[1], w.body, w.nowMs) as number | undefined
    } catch (err) {
      if (isForeignKey(err)) throw unknownUser(w.senderUserId)
      throw err
    }
    if (msgId === undefined) {
      // (sender, clientMsgId) exists: report it as first stored, write nothing.
      const first = this.q.messageByClientId.get(w.senderUserId, clientMsgId) as MessageRow
      const copies = (this.q.copiesOf.all(first.msg_id) as Array<{ user_id: number; version: number }>).map((r) => ({ userId: r.user_id, version: r.version }))
      return { kind: 'message', msgId: first.msg_id, sentAtMs: first.sent_at_ms, duplicate: true, versions: orderVersionsLike(copies, inboxIds) }
    }
    const versions = new Array<{ userId: number; version: number }>(inboxIds.length)
    for (let j = 0; j < inboxIds.length; j++) {
      const userId = inboxIds[j]
      const version = this.memory.nextVersion(userId)
      this.insertEntry(userId, () => this.q.insertMessageEntry.run(userId, version, msgId, w.nowMs))
      versions[j] = { userId, version }
      this.memory.added(userId, {
        kind: 'message', version, msgId, fromUserId: w.senderUserId, fromDeviceId: w.senderDeviceId, to: toPeer(to[0], to[1]), sentAtMs: w.nowMs, clientMsgId: new Uint8Array(clientMsgId), body: w.body,
      })
    }
    return { kind: 'message', msgId, sentAtMs: w.nowMs, duplicate: false, versions }
  }

  private writeReceipt(w: ReceiptWrite): InboxWriteResult {
    const sender = this.q.senderOf.get(w.msgId) as number | undefined
    if (sender === undefined) return { kind: 'receipt', added: false, versions: [] }
    const version = this.addReceipt(w.msgId, sender, STATUS_CODE[w.status], w.byUserId, w.nowMs)
    return version === 0 ? { kind: 'receipt', added: false, versions: [] } : { kind: 'receipt', added: true, versions: [{ userId: sender, version }] }
  }

  /** The receipt row and the sender's inbox entry; returns its version, 0 if the receipt existed. */
  private addReceipt(msgId: number, sender: number, status: number, byUserId: number, nowMs: number): number {
    if (this.q.insertReceipt.run(msgId, byUserId, status, nowMs).changes === 0) return 0
    const version = this.memory.nextVersion(sender)
    this.insertEntry(sender, () => this.q.insertReceiptEntry.run(sender, version, msgId, status, byUserId, nowMs))
    this.memory.added(sender, { kind: 'receipt', version, msgId, status: STATUS_BY_CODE[status], byUserId, atMs: nowMs })
    return version
  }

  private writeFin(w: FinWrite): InboxWriteResult {
    const version = Math.min(w.version, this.memory.currentVersion(w.userId))
    const before = (this.q.getCursor.get(w.deviceId) as number | undefined) ?? 0
    if (version <= before) return { kind: 'fin', previousCursor: before, cursor: before, versions: [] }
    this.q.setCursor.run(w.deviceId, version)
    const from = Math.max(before, version - w.maxReceiptEntries)
    const versions: Array<{ userId: number; version: number }> = []
    const held = this.memory.messagesFromOthers(w.userId, from, version) ?? (this.q.heldFromOthers.all(w.userId, from, version, w.userId) as Array<[number, number]>)
    for (const [msgId, sender] of held) {
      const v = this.addReceipt(msgId, sender, STATUS_CODE.delivered, w.userId, w.nowMs)
      if (v !== 0) versions.push({ userId: sender, version: v })
    }
    return { kind: 'fin', previousCursor: before, cursor: version, versions }
  }

  private writeGroupEvent(w: GroupEventWrite, inboxIds: number[]): InboxWriteResult {
    this.requireGroup(w.groupId)
    const event = EVENT_CODE[w.event]
    const versions = new Array<{ userId: number; version: number }>(inboxIds.length)
    for (let j = 0; j < inboxIds.length; j++) {
      const userId = inboxIds[j]
      const version = this.memory.nextVersion(userId)
      this.insertEntry(userId, () => this.q.insertGroupEntry.run(userId, version, w.groupId, event, w.actorUserId, w.subjectUserId, w.name, w.nowMs))
      this.memory.addedUntracked(userId) // rare: read back from the table
      versions[j] = { userId, version }
    }
    return { kind: 'group_event', versions }
  }

  /** An inbox row of `userId` (inside the batch transaction): a foreign-key failure means no such user. */
  private insertEntry(userId: number, insert: () => unknown): void {
    try {
      insert()
    } catch (err) {
      if (isForeignKey(err)) throw unknownUser(userId)
      throw err
    }
  }

  // ---- inboxes ----

  async inboxHead(userId: number): Promise<number> {
    this.open()
    const held = this.notYetDurable.get(userId)
    if (held !== undefined) return held - 1
    return this.memory.head(userId) ?? (this.q.head.get(userId) as number | undefined) ?? 0
  }

  async readInbox(args: { userId: number; afterVersion: number; limit: number }): Promise<InboxEntry[]> {
    this.open()
    if (!Number.isSafeInteger(args.afterVersion)) throw invalid(`afterVersion ${String(args.afterVersion)}`)
    if (!isCount(args.limit)) throw invalid(`limit ${String(args.limit)}`)
    if (args.limit === 0) return []
    // Memory holds durable entries only, so nothing to hold back.
    const cached = this.memory.read(args.userId, args.afterVersion, args.limit)
    if (cached !== undefined) return cached
    const rows = this.q.readInbox.all(args.userId, args.afterVersion, args.limit) as InboxRow[]
    const held = this.notYetDurable.get(args.userId)
    const out: InboxEntry[] = []
    for (const r of rows) {
      if (held !== undefined && r[0] >= held) break
      out.push(toEntry(r))
    }
    return out
  }

  async getMessage(msgId: number): Promise<StoredMessage | undefined> {
    this.open()
    const row = this.q.messageById.get(msgId) as MessageRow | undefined
    return row && toStored(row)
  }

  async findByClientMsgId(args: { senderUserId: number; clientMsgId: Uint8Array }): Promise<StoredMessage | undefined> {
    this.open()
    if (!(args.clientMsgId instanceof Uint8Array)) throw invalid('clientMsgId is not bytes')
    const row = this.q.messageByClientId.get(args.senderUserId, bytes(args.clientMsgId)) as MessageRow | undefined
    return row && toStored(row)
  }

  // ---- device cursors ----

  async getCursor(deviceId: number): Promise<number> {
    this.open()
    return (this.q.getCursor.get(deviceId) as number | undefined) ?? 0
  }

  async advanceCursor(args: { deviceId: number; version: number }): Promise<number> {
    this.open()
    if (!isId(args.deviceId)) throw invalid(`deviceId ${String(args.deviceId)}`)
    if (!isCount(args.version)) throw invalid(`version ${String(args.version)}`)
    return this.db.transaction((): number => {
      const before = (this.q.getCursor.get(args.deviceId) as number | undefined) ?? 0
      if (args.version > before) this.q.setCursor.run(args.deviceId, args.version)
      return before
    }).immediate()
  }

  // ---- housekeeping ----

  async pruneInboxes(policy: RetentionPolicy): Promise<number> {
    this.open()
    if (policy.olderThanMs !== undefined && !isCount(policy.olderThanMs)) throw invalid(`olderThanMs ${String(policy.olderThanMs)}`)
    if (policy.keepLastPerUser !== undefined && !isCount(policy.keepLastPerUser)) throw invalid(`keepLastPerUser ${String(policy.keepLastPerUser)}`)
    if (policy.olderThanMs === undefined && policy.keepLastPerUser === undefined) return 0
    this.memory.pruned()
    return this.pruneTx.immediate(policy)
  }

  /** Inside pruneTx: the newest N of each inbox as it was, then age; then orphaned messages. */
  private prune(policy: RetentionPolicy): number {
    let deleted = 0
    const touched = new Set<number>()
    const note = (rows: unknown[][]): void => {
      deleted += rows.length
      for (const [kind, msgId] of rows) if (kind === KIND_MESSAGE) touched.add(msgId as number)
    }
    if (policy.keepLastPerUser !== undefined) {
      for (const userId of this.q.inboxUsers.all() as number[]) {
        const cut = this.q.nthNewest.get(userId, policy.keepLastPerUser) as number | undefined
        if (cut !== undefined) note(this.q.deleteUpTo.all(userId, cut) as unknown[][])
      }
    }
    if (policy.olderThanMs !== undefined) note(this.q.deleteOlder.all(policy.olderThanMs) as unknown[][])
    for (const msgId of touched) this.q.deleteOrphan.run(msgId, msgId)
    return deleted
  }

  async close(): Promise<void> {
    this.closed = true
    if (this.walFd !== undefined) closeSync(this.walFd)
    this.walFd = undefined
    if (this.ownsDatabase && this.db.open) this.db.close()
  }

  // ---- internals ----

  private requireUser(userId: number): void {
    if (this.q.userExists.get(userId) === undefined) throw unknownUser(userId)
  }

  private requireGroup(groupId: number): void {
    if (this.q.groupExists.get(groupId) === undefined) throw unknownGroup(groupId)
  }

  private open(): void {
    if (this.closed || !this.db.open) throw new MessageStoreError('STORE_CLOSED', 'store is closed')
  }
}

export interface SqliteStoresOptions {
  /** Directory holding pigeon.db (created if missing). Default ./data. */
  dataDir?: string
  /** PRAGMA synchronous; FULL (default) fsyncs every commit. */
  synchronous?: 'FULL' | 'NORMAL'
  busyTimeoutMs?: number
}

export interface SqliteStores {
  accounts: SqliteAccountStore
  messages: SqliteMessageStore
  /** Closes both (one connection). */
  close(): Promise<void>
}

/** Open pigeon.db once with every migration; both stores share the connection. */
export const openSqliteStores = (options: SqliteStoresOptions = {}): SqliteStores => {
  const accounts = new SqliteAccountStore({ ...options, migrations: SQLITE_MIGRATIONS })
  let messages: SqliteMessageStore
  try {
    messages = new SqliteMessageStore(accounts.db)
  } catch (err) {
    accounts.db.close()
    throw err
  }
  return {
    accounts,
    messages,
    close: async () => {
      await messages.close()
      await accounts.close()
    },
  }
}
