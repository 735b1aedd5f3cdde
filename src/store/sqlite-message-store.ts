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
 * serving meanwhile. Until then the versions the batch wrote are held back from
 * readInbox / inboxHead / hasInboxCopy, so no device can hold an entry a power cut could
 * still undo. The WAL file is the one SQLite writes (symlinks resolved: wal-file.ts).
 * Inbox versions come from `inbox_heads` (one counter per user), so they are strictly
 * increasing and never reused, even after entries are pruned. Heads and the newest
 * entries of each written inbox are also kept in memory (sqlite-inbox-memory.ts): a batch
 * writes each touched head once, and a device that keeps up syncs without a read.
 *
 * Batches run one at a time, in call order (serial-queue.ts): a batch waits for the one
 * before it, including its fdatasync, so a retried write's duplicate answer or a FIN's
 * receipts never rest on a batch that is not yet durable, and the hold-back belongs to one
 * batch. Pruning and close() take their turn in the same queue; close() refuses new calls
 * at once and closes once the batches called before it are done.
 *
 * A failed fdatasync (EIO, ENOSPC, ...) is final, the PostgreSQL "fsyncgate" lesson: the
 * batch has committed and may or may not be on disk, and a second fdatasync after EIO can
 * succeed without the data being there. So the store fails: that batch and every later
 * call (reads too, which would serve the batch) reject with STORE_FAILED, and only a
 * restart, whose recovery from the WAL decides what is durable, brings it back. The store
 * logs nothing (its callers log store errors); `failure` holds the error.
 *
 * Retention (pruneInboxes, sqlite-prune.ts) deletes inbox rows in bounded steps, then
 * forgets every message whose last 'message' inbox row went, once it is MESSAGE_MEMORY_MS
 * old (its receipts follow by ON DELETE CASCADE); until then it stays, text cleared, so a
 * retried SEND is still a duplicate. Message ids are AUTOINCREMENT, so a pruned message's
 * id is never handed out again. Receipt rows in the sender's inbox do not keep a message
 * alive (they carry the msgId themselves).
 */
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
import { type BatchMemory, InboxMemory } from './sqlite-inbox-memory.js'
import { prepareMessageQueries, type MessageQueries } from './sqlite-message-queries.js'
import { SqlitePruneRun } from './sqlite-prune.js'
import { ACCOUNT_MIGRATIONS, SqliteAccountStore, schemaVersion, type SqliteDatabase } from './sqlite-account-store.js'
import {
  EVENT_CODE,
  type GroupRow,
  type InboxRow,
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
import { SerialQueue } from './serial-queue.js'
import { WalFile } from './wal-file.js'

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
  /** Syncs the WAL after each batch; default fs.fdatasync on the thread pool. Tests hold or fail it. */
  fdatasync?: (fd: number) => Promise<void>
}

export class SqliteMessageStore implements MessageStore {
  readonly db: SqliteDatabase
  private readonly ownsDatabase: boolean
  private closed = false
  private readonly q: MessageQueries
  private readonly batchTx
  private readonly memory: InboxMemory
  private readonly pruneStepTx
  private readonly groupChangeTx
  private readonly durability: CommitDurability
  /** Set for a WAL database opened with synchronous=FULL: batches sync the WAL off the event loop. */
  private readonly wal: WalFile | undefined
  /** Batches, pruning and close, one at a time. */
  private readonly queue = new SerialQueue()
  /** userId -> first version written by the batch whose WAL sync is under way (held back from reads). */
  private holdBack: ReadonlyMap<number, number> | undefined
  private failedWith: MessageStoreError | undefined

  /** `db` must have been opened with SQLITE_MIGRATIONS (openDatabase / SqliteAccountStore). */
  constructor(db: SqliteDatabase, options: SqliteMessageStoreOptions = {}) {
    const needed = ACCOUNT_MIGRATIONS.length + MESSAGE_MIGRATIONS.length
    if (schemaVersion(db) < needed) {
      throw invalid(`database schema version ${schemaVersion(db)} lacks the messaging tables (${needed}): open it with SQLITE_MIGRATIONS`)
    }
    this.db = db
    this.ownsDatabase = options.ownsDatabase ?? false
    this.q = prepareMessageQueries(db)
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
    this.pruneStepTx = db.transaction((run: SqlitePruneRun): number[] => run.step())
    this.groupChangeTx = db.transaction((w: GroupEventWrite, inboxIds: number[]): number => this.applyGroupChange(w, inboxIds))
    this.durability = new CommitDurability(db)
    const syncOffLoop = this.durability.fullSync && db.name !== ':memory:' && db.name !== '' && db.pragma('journal_mode', { simple: true }) === 'wal'
    this.wal = syncOffLoop ? new WalFile(db.name, options.fdatasync) : undefined
  }

  /** Why the store refuses every call (STORE_FAILED), if it does: a WAL sync failed. */
  get failure(): MessageStoreError | undefined {
    return this.failedWith
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
    const groupId = this.db.transaction(() => this.insertGroup(args)).immediate()
    return { groupId, name: args.name, createdByUserId: args.createdByUserId, createdAtMs: args.nowMs }
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
    this.db.transaction(() => this.insertMember(args)).immediate()
  }

  async removeGroupMember(args: { groupId: number; userId: number }): Promise<void> {
    this.open()
    this.db.transaction(() => this.deleteMember(args)).immediate()
  }

  async renameGroup(args: { groupId: number; name: string }): Promise<void> {
    this.open()
    checkGroupName(args.name)
    this.db.transaction(() => this.rename(args)).immediate()
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
    if (this.db.inTransaction) {
      // Inside a caller's transaction, which decides when (and whether) it is durable: now, unqueued.
      return this.runBatch(writes, inboxIds).results
    }
    return this.queue.run(() => this.applyInTurn(writes, inboxIds))
  }

  /** The batch's commit and durable sync, its turn in the queue come. */
  private async applyInTurn(writes: InboxWrite[], inboxIds: number[][]): Promise<InboxWriteResult[]> {
    this.usable()
    const wal = this.wal
    if (wal === undefined) {
      const { results, batch } = this.runBatch(writes, inboxIds)
      this.memory.durable(batch, true)
      return results
    }
    // Before the commit: a WAL that cannot be opened fails this batch with nothing committed.
    wal.open()
    const { results, batch } = this.durability.withoutOwnFsync(() => this.runBatch(writes, inboxIds))
    this.holdBack = batch.firstVersions
    try {
      await wal.sync()
    } catch (err) {
      throw this.fail(err)
    } finally {
      this.holdBack = undefined
      this.memory.durable(batch, this.failedWith === undefined)
    }
    return results
  }

  /** A committed batch's WAL sync failed: from now on the store refuses everything. */
  private fail(err: unknown): MessageStoreError {
    const code = (err as { code?: unknown } | null)?.code
    this.failedWith ??= new MessageStoreError(
      'STORE_FAILED',
      `syncing the WAL ${this.wal?.path ?? ''} failed${typeof code === 'string' ? ` (${code})` : ''} after a batch committed: ` +
        'it may not be on disk and the store refuses every call; restart the server (recovery from the WAL decides what is durable)',
      { cause: err },
    )
    return this.failedWith
  }

  /** The batch's transaction, and the in-memory heads and entries following its outcome. */
  private runBatch(writes: InboxWrite[], inboxIds: number[][]): { results: InboxWriteResult[]; batch: BatchMemory } {
    let results: InboxWriteResult[]
    try {
      results = this.batchTx.immediate(writes, inboxIds)
    } catch (err) {
      this.memory.rolledBack()
      throw err
    }
    return { results, batch: this.memory.committed(this.db.inTransaction) }
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
    for (const userId of inboxIds) this.requireUser(userId) // unknown inbox users fail the batch, as in every store
    let groupId: number
    try {
      groupId = this.groupChangeTx(w, inboxIds) // a savepoint inside the batch: undone alone
    } catch (err) {
      if (err instanceof MessageStoreError) return { kind: 'failed', error: err }
      throw err
    }
    const event = EVENT_CODE[w.event]
    const versions = new Array<{ userId: number; version: number }>(inboxIds.length)
    for (let j = 0; j < inboxIds.length; j++) {
      const userId = inboxIds[j]
      const version = this.memory.nextVersion(userId)
      this.insertEntry(userId, () => this.q.insertGroupEntry.run(userId, version, groupId, event, w.actorUserId, w.subjectUserId, w.name, w.nowMs))
      this.memory.addedUntracked(userId) // rare: read back from the table
      versions[j] = { userId, version }
    }
    return { kind: 'group_event', groupId, versions }
  }

  /** The change a group event names (if it is to be applied); returns the group's id. */
  private applyGroupChange(w: GroupEventWrite, inboxIds: number[]): number {
    if (w.applyChange !== true) {
      this.requireGroup(w.groupId)
      return w.groupId
    }
    const args = { groupId: w.groupId, userId: w.subjectUserId, nowMs: w.nowMs }
    if (w.event === 'created') return this.insertGroup({ name: w.name, createdByUserId: w.actorUserId, memberUserIds: inboxIds, nowMs: w.nowMs })
    if (w.event === 'joined') this.insertMember(args)
    else if (w.event === 'left') this.deleteMember(args)
    else this.rename({ groupId: w.groupId, name: w.name })
    return w.groupId
  }

  private insertGroup(args: { name: string; createdByUserId: number; memberUserIds: number[]; nowMs: number }): number {
    const members = uniqueUserIds([args.createdByUserId, ...args.memberUserIds])
    for (const u of members) this.requireUser(u)
    const groupId = Number(this.q.insertGroup.run(args.name, args.createdByUserId, args.nowMs).lastInsertRowid)
    for (const u of members) this.q.insertMember.run(groupId, u, args.nowMs)
    return groupId
  }

  private insertMember(args: { groupId: number; userId: number; nowMs: number }): void {
    this.requireGroup(args.groupId)
    this.requireUser(args.userId)
    if (this.q.isMember.get(args.groupId, args.userId) !== undefined) {
      throw new MessageStoreError('ALREADY_MEMBER', `user ${args.userId} is in group ${args.groupId}`)
    }
    this.q.insertMember.run(args.groupId, args.userId, args.nowMs)
  }

  private rename(args: { groupId: number; name: string }): void {
    this.requireGroup(args.groupId)
    this.q.renameGroup.run(args.name, args.groupId)
  }

  private deleteMember(args: { groupId: number; userId: number }): void {
    this.requireGroup(args.groupId)
    if (this.q.deleteMember.run(args.groupId, args.userId).changes === 0) {
      throw new MessageStoreError('NOT_A_MEMBER', `user ${args.userId} is not in group ${args.groupId}`)
    }
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
    const held = this.holdBack?.get(userId)
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
    const held = this.holdBack?.get(args.userId)
    const out: InboxEntry[] = []
    for (const r of rows) {
      if (held !== undefined && r[0] >= held) break
      out.push(toEntry(r))
    }
    return out
  }

  /** Pruned copies count as absent; so do copies of a batch whose sync is under way. */
  async hasInboxCopy(args: { userId: number; msgId: number }): Promise<boolean> {
    this.open()
    if (!isId(args.userId)) throw invalid(`userId ${String(args.userId)}`)
    if (!isId(args.msgId)) throw invalid(`msgId ${String(args.msgId)}`)
    // The table, not the tails: a copy may be older than any cached tail.
    const version = this.q.copyVersion.get(args.msgId, args.userId) as number | undefined
    if (version === undefined) return false
    const held = this.holdBack?.get(args.userId)
    return held === undefined || version < held
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
    if (!isCount(policy.nowMs)) throw invalid(`nowMs ${String(policy.nowMs)}`)
    if (policy.olderThanMs !== undefined && !isCount(policy.olderThanMs)) throw invalid(`olderThanMs ${String(policy.olderThanMs)}`)
    if (policy.keepLastPerUser !== undefined && !isCount(policy.keepLastPerUser)) throw invalid(`keepLastPerUser ${String(policy.keepLastPerUser)}`)
    const run = new SqlitePruneRun(this.q, policy)
    while (!run.done) {
      // Each step between batches: a batch syncing meanwhile would otherwise put entries the
      // step deleted back into the tails (InboxMemory's generation guards that too). The
      // deletes need no fsync of their own: the next batch's WAL sync carries them, and a
      // power cut that undoes them only means pruning again.
      await this.queue.run(() => {
        this.usable()
        const changed = this.durability.withoutOwnFsync(() => this.pruneStepTx.immediate(run))
        if (changed.length > 0) this.memory.pruned(changed)
      })
      if (!run.done) await new Promise((resolve) => setImmediate(resolve)) // let the network in
    }
    return run.deleted
  }

  /** Refuses new calls at once; closes once the batches called before are done (a failed store closes too). */
  async close(): Promise<void> {
    this.closed = true
    await this.queue.run(() => {
      this.wal?.close()
      if (this.ownsDatabase && this.db.open) this.db.close()
    })
  }

  // ---- internals ----

  private requireUser(userId: number): void {
    if (this.q.userExists.get(userId) === undefined) throw unknownUser(userId)
  }

  private requireGroup(groupId: number): void {
    if (this.q.groupExists.get(groupId) === undefined) throw unknownGroup(groupId)
  }

  /** Every call first: closed, or failed (a WAL sync failed; nothing may be served any more). */
  private open(): void {
    if (this.closed) throw new MessageStoreError('STORE_CLOSED', 'store is closed')
    this.usable()
  }

  /** A queued task, its turn come: close() may have been called meanwhile and waits for it. */
  private usable(): void {
    if (this.failedWith !== undefined) throw this.failedWith
    if (!this.db.open) throw new MessageStoreError('STORE_CLOSED', 'store is closed')
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
