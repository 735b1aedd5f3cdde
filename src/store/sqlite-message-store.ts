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
 * Inbox versions come from `inbox_heads` (one counter per user, kept in memory during a
 * batch and written once per touched user at its end: sqlite-inbox-heads.ts), so they are
 * strictly increasing and never reused, even after entries are pruned. The newest entries
 * of each written inbox are kept in memory once durable (inbox-tail-cache.ts), so a device
 * that keeps up syncs without a database read. Both caches are dropped when
 * `PRAGMA data_version` shows that another connection (the admin CLI) committed.
 *
 * Retention (pruneInboxes) deletes inbox rows, then every message whose last 'message'
 * inbox row went with them (its receipts follow by ON DELETE CASCADE). Message ids are
 * AUTOINCREMENT, so a pruned message's id is never handed out again. Receipt rows in the
 * sender's inbox do not keep a message alive (they carry the msgId themselves).
 */
import { closeSync, fdatasync, openSync } from 'node:fs'
import { promisify } from 'node:util'
import type { GroupEventKind, InboxEntry, Peer, ReceiptStatus } from '../protocol/chat-types.js'
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
import { InboxHeads } from './sqlite-inbox-heads.js'
import { InboxTailCache } from './inbox-tail-cache.js'
import { ACCOUNT_MIGRATIONS, SqliteAccountStore, schemaVersion, type SqliteDatabase } from './sqlite-account-store.js'
import { MESSAGE_MIGRATIONS, SQLITE_MIGRATIONS } from './sqlite-message-schema.js'

const KIND_MESSAGE = 1
const KIND_RECEIPT = 2
const KIND_GROUP = 3
const TO_USER = 1
const TO_GROUP = 2

const STATUS_CODE: Record<ReceiptStatus, number> = { delivered: 1, read: 2 }
const STATUS_BY_CODE: Record<number, ReceiptStatus> = { 1: 'delivered', 2: 'read' }
const EVENT_CODE: Record<GroupEventKind, number> = { created: 1, joined: 2, left: 3, renamed: 4 }
const EVENT_BY_CODE: Record<number, GroupEventKind> = { 1: 'created', 2: 'joined', 3: 'left', 4: 'renamed' }

interface GroupRow { group_id: number; name: string; created_by_user_id: number; created_at_ms: number }
interface MessageRow { msg_id: number; sender_user_id: number; sender_device_id: number; to_kind: number; to_id: number; sent_at_ms: number }
/**
 * One row of readInbox, as an array (better-sqlite3 `raw()`: no object per row):
 * inbox columns, then for kind 1 the message's (LEFT JOIN).
 */
type InboxRow = [
  version: number,
  kind: number,
  msgId: number | null,
  groupId: number | null,
  code: number | null,
  actorUserId: number | null,
  subjectUserId: number | null,
  name: string | null,
  createdAtMs: number,
  senderUserId: number | null,
  senderDeviceId: number | null,
  clientMsgId: Buffer | null,
  toKind: number | null,
  toId: number | null,
  body: string | null,
  sentAtMs: number | null,
]

const isId = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n > 0
const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0
const invalid = (message: string): MessageStoreError => new MessageStoreError('INVALID_ARGUMENT', message)
const unknownUser = (userId: number): MessageStoreError => new MessageStoreError('UNKNOWN_USER', `no user ${userId}`)
const unknownGroup = (groupId: number): MessageStoreError => new MessageStoreError('UNKNOWN_GROUP', `no group ${groupId}`)
const isForeignKey = (err: unknown): boolean =>
  typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'SQLITE_CONSTRAINT_FOREIGNKEY'

const bytes = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength)
const toPeer = (kind: number, id: number): Peer => (kind === TO_USER ? { kind: 'user', userId: id } : { kind: 'group', groupId: id })
const toGroup = (r: GroupRow): GroupRecord => ({ groupId: r.group_id, name: r.name, createdByUserId: r.created_by_user_id, createdAtMs: r.created_at_ms })
const toStored = (r: MessageRow): StoredMessage => ({
  msgId: r.msg_id,
  senderUserId: r.sender_user_id,
  senderDeviceId: r.sender_device_id,
  to: toPeer(r.to_kind, r.to_id),
  sentAtMs: r.sent_at_ms,
})

const toEntry = (r: InboxRow): InboxEntry => {
  switch (r[1]) {
    case KIND_MESSAGE:
      return {
        kind: 'message',
        version: r[0],
        msgId: r[2]!,
        fromUserId: r[9]!,
        fromDeviceId: r[10]!,
        to: toPeer(r[12]!, r[13]!),
        sentAtMs: r[15]!,
        clientMsgId: new Uint8Array(r[11]!),
        body: r[14]!,
      }
    case KIND_RECEIPT:
      return { kind: 'receipt', version: r[0], msgId: r[2]!, status: STATUS_BY_CODE[r[4]!], byUserId: r[5]!, atMs: r[8] }
    case KIND_GROUP:
      return { kind: 'group', version: r[0], groupId: r[3]!, event: EVENT_BY_CODE[r[4]!], actorUserId: r[5]!, subjectUserId: r[6]!, name: r[7]!, atMs: r[8] }
    default:
      // The table's CHECK constraint admits only the three kinds.
      throw new Error(`inbox row of unknown kind ${r[1]}`)
  }
}

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
  private readonly heads: InboxHeads
  private readonly tails = new InboxTailCache()
  /** Entries the batch under way inserted (appended to `tails` once durable); users whose tail it could not extend. */
  private batchEntries: Array<{ userId: number; entry: InboxEntry }> = []
  private batchUntracked: number[] = []
  private readonly dataVersion
  private lastDataVersion: number
  private otherWritersChecked = false
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
      this.noticeOtherWriters()
      this.heads.beginBatch()
      this.batchEntries = []
      this.batchUntracked = []
      const results = new Array<InboxWriteResult>(writes.length)
      for (let i = 0; i < writes.length; i++) {
        const w = writes[i]
        if (w.kind === 'message') results[i] = this.writeMessage(w, inboxIds[i])
        else if (w.kind === 'receipt') results[i] = this.writeReceipt(w)
        else if (w.kind === 'fin') results[i] = this.writeFin(w)
        else results[i] = this.writeGroupEvent(w, inboxIds[i])
      }
      this.heads.writePending()
      return results
    })
    this.heads = new InboxHeads(db)
    this.dataVersion = db.prepare('PRAGMA data_version').pluck()
    this.lastDataVersion = this.dataVersion.get() as number
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
      this.batchDurable(!this.db.inTransaction)
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
      this.batchDurable(synced)
    }
    return results
  }

  /** The batch's entries are on disk (or, `durable` false, not known to be): extend the cached tails, or forget them. */
  private batchDurable(durable: boolean): void {
    for (const { userId, entry } of this.batchEntries) {
      if (durable) this.tails.append(userId, entry)
      else this.tails.forget(userId)
    }
    for (const userId of this.batchUntracked) this.tails.forget(userId)
    this.batchEntries = []
    this.batchUntracked = []
  }

  /**
   * Before reads: at most once per event-loop turn (the PRAGMA costs about as much as the
   * read it guards; another process's commit may land at any instant anyway).
   */
  private noticeOtherWritersThisTurn(): void {
    if (this.otherWritersChecked) return
    this.otherWritersChecked = true
    setImmediate(() => { this.otherWritersChecked = false })
    this.noticeOtherWriters()
  }

  /** Another connection committed since we last looked: heads and tails may be old. */
  private noticeOtherWriters(): void {
    const v = this.dataVersion.get() as number
    if (v === this.lastDataVersion) return
    this.lastDataVersion = v
    this.heads.clear()
    this.tails.clear()
  }

  /** The batch's transaction; the heads it assigned become the cached ones only if it committed. */
  private runBatch(writes: InboxWrite[], inboxIds: number[][]): InboxWriteResult[] {
    let results: InboxWriteResult[]
    try {
      results = this.batchTx.immediate(writes, inboxIds)
    } catch (err) {
      this.heads.rollback()
      this.batchEntries = []
      this.batchUntracked = []
      throw err
    }
    // Nested in a caller's transaction, the commit is the caller's.
    if (this.db.inTransaction) this.heads.forgetPending()
    else this.heads.commit()
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
      const version = this.heads.next(userId)
      this.insertEntry(userId, () => this.q.insertMessageEntry.run(userId, version, msgId, w.nowMs))
      versions[j] = { userId, version }
      this.batchEntries.push({
        userId,
        // As readInbox would return it (toEntry).
        entry: { kind: 'message', version, msgId, fromUserId: w.senderUserId, fromDeviceId: w.senderDeviceId, to: toPeer(to[0], to[1]), sentAtMs: w.nowMs, clientMsgId: new Uint8Array(clientMsgId), body: w.body },
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
    const version = this.heads.next(sender)
    this.insertEntry(sender, () => this.q.insertReceiptEntry.run(sender, version, msgId, status, byUserId, nowMs))
    this.batchEntries.push({ userId: sender, entry: { kind: 'receipt', version, msgId, status: STATUS_BY_CODE[status], byUserId, atMs: nowMs } })
    return version
  }

  private writeFin(w: FinWrite): InboxWriteResult {
    const version = Math.min(w.version, this.heads.current(w.userId))
    const before = (this.q.getCursor.get(w.deviceId) as number | undefined) ?? 0
    if (version <= before) return { kind: 'fin', previousCursor: before, cursor: before, versions: [] }
    this.q.setCursor.run(w.deviceId, version)
    const from = Math.max(before, version - w.maxReceiptEntries)
    const versions: Array<{ userId: number; version: number }> = []
    for (const [msgId, sender] of this.heldFromOthers(w.userId, from, version)) {
      const v = this.addReceipt(msgId, sender, STATUS_CODE.delivered, w.userId, w.nowMs)
      if (v !== 0) versions.push({ userId: sender, version: v })
    }
    return { kind: 'fin', previousCursor: before, cursor: version, versions }
  }

  /** [msgId, sender] of the messages from others in versions (after, upTo] of the user's inbox, oldest first. */
  private heldFromOthers(userId: number, after: number, upTo: number): Array<[number, number]> {
    // The tails hold durable entries only: usable when they reach upTo (not when this batch wrote there).
    const cached = (this.tails.head(userId) ?? 0) >= upTo ? this.tails.readShared(userId, after, upTo - after) : undefined
    if (cached === undefined) return this.q.heldFromOthers.all(userId, after, upTo, userId) as Array<[number, number]>
    const out: Array<[number, number]> = []
    for (const e of cached) if (e.kind === 'message' && e.fromUserId !== userId) out.push([e.msgId, e.fromUserId])
    return out
  }

  private writeGroupEvent(w: GroupEventWrite, inboxIds: number[]): InboxWriteResult {
    this.requireGroup(w.groupId)
    const event = EVENT_CODE[w.event]
    const versions = new Array<{ userId: number; version: number }>(inboxIds.length)
    for (let j = 0; j < inboxIds.length; j++) {
      const userId = inboxIds[j]
      const version = this.heads.next(userId)
      this.insertEntry(userId, () => this.q.insertGroupEntry.run(userId, version, w.groupId, event, w.actorUserId, w.subjectUserId, w.name, w.nowMs))
      this.batchUntracked.push(userId) // rare: read back from the table
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
    this.noticeOtherWritersThisTurn()
    return this.tails.head(userId) ?? (this.q.head.get(userId) as number | undefined) ?? 0
  }

  async readInbox(args: { userId: number; afterVersion: number; limit: number }): Promise<InboxEntry[]> {
    this.open()
    if (!Number.isSafeInteger(args.afterVersion)) throw invalid(`afterVersion ${String(args.afterVersion)}`)
    if (!isCount(args.limit)) throw invalid(`limit ${String(args.limit)}`)
    if (args.limit === 0) return []
    this.noticeOtherWritersThisTurn()
    // Holds durable entries only, so nothing to hold back.
    const cached = this.tails.read(args.userId, args.afterVersion, args.limit)
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
    this.tails.clear() // pruned entries must not be served from memory
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
