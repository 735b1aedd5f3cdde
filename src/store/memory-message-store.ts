/**
 * In-memory MessageStore for tests and simulations; same semantics as SqliteMessageStore
 * (test/store/message-conformance.ts runs against both).
 *
 * Users live in the account store, so the constructor takes either that store
 * (`{ accounts }`, its getUserById is asked) or a `userExists(userId)` function; users are
 * never deleted, so a user once found is cached and later writes for it need no await.
 * applyBatch validates the whole batch first (shapes, users, groups) and only then
 * applies it, so a batch is all or nothing like the SQLite transaction. Batches apply one
 * at a time in call order, as in the SQLite store (serial-queue.ts): when none is pending
 * and every user of a batch is already cached it applies synchronously inside the call;
 * otherwise it waits for the batches before it and the user lookups. close() refuses new
 * calls at once and resolves when the batches called before it are applied.
 *
 * Retention (pruneInboxes) deletes inbox entries; a message no inbox entry of kind
 * 'message' refers to any more keeps de-duplicating until MESSAGE_MEMORY_MS after it was
 * stored, then goes with its receipts, as in the SQLite store.
 */
import type { InboxEntry, Peer, ReceiptStatus } from '../protocol/chat-types.js'
import type { AccountStore } from './account-store.js'
import { checkGroupName, checkInboxWrite, orderVersionsLike, uniqueUserIds } from './group-commit.js'
import { SerialQueue } from './serial-queue.js'
import {
  MESSAGE_MEMORY_MS,
  MessageStoreError,
  type GroupRecord,
  type InboxWrite,
  type InboxWriteResult,
  type MessageStore,
  type RetentionPolicy,
  type StoredMessage,
} from './message-store.js'

export type MemoryMessageStoreOptions =
  | { accounts: Pick<AccountStore, 'getUserById'> }
  | { userExists: (userId: number) => boolean | Promise<boolean> }

interface MemMessage {
  msgId: number
  senderUserId: number
  senderDeviceId: number
  /** The store's own copy. */
  clientMsgId: Uint8Array
  key: string
  to: Peer
  body: string
  sentAtMs: number
  /** The versions first assigned, in write order. */
  versions: Array<{ userId: number; version: number }>
  /** Message entries still in inboxes; the message is forgotten when pruning takes this to 0. */
  copies: number
  /** Keys into `receipts`, dropped with the message. */
  receiptKeys: string[] | undefined
}

type ReceiptEntry = Extract<InboxEntry, { kind: 'receipt' }>
type GroupEntry = Extract<InboxEntry, { kind: 'group' }>
type GroupEventWrite = Extract<InboxWrite, { kind: 'group_event' }>

type Slot =
  | { kind: 'message'; version: number; atMs: number; msg: MemMessage }
  | { kind: 'receipt'; version: number; atMs: number; entry: ReceiptEntry }
  | { kind: 'group'; version: number; atMs: number; entry: GroupEntry }

interface Inbox {
  /** Last version ever assigned (kept across pruning). */
  head: number
  /** Ascending by version. */
  entries: Slot[]
}

interface MemGroup {
  record: GroupRecord
  members: Set<number>
}

const isId = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n > 0
const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0
const invalid = (message: string): MessageStoreError => new MessageStoreError('INVALID_ARGUMENT', message)
const unknownUser = (userId: number): MessageStoreError => new MessageStoreError('UNKNOWN_USER', `no user ${userId}`)
const unknownGroup = (groupId: number): MessageStoreError => new MessageStoreError('UNKNOWN_GROUP', `no group ${groupId}`)

const clientKey = (senderUserId: number, clientMsgId: Uint8Array): string =>
  `${senderUserId}:${Buffer.from(clientMsgId.buffer, clientMsgId.byteOffset, clientMsgId.byteLength).toString('hex')}`

const copyPeer = (p: Peer): Peer => (p.kind === 'user' ? { kind: 'user', userId: p.userId } : { kind: 'group', groupId: p.groupId })

const toStored = (m: MemMessage): StoredMessage => ({
  msgId: m.msgId,
  senderUserId: m.senderUserId,
  senderDeviceId: m.senderDeviceId,
  to: copyPeer(m.to),
  sentAtMs: m.sentAtMs,
})

const toEntry = (s: Slot): InboxEntry => {
  if (s.kind !== 'message') return { ...s.entry }
  const m = s.msg
  return {
    kind: 'message',
    version: s.version,
    msgId: m.msgId,
    fromUserId: m.senderUserId,
    fromDeviceId: m.senderDeviceId,
    to: copyPeer(m.to),
    sentAtMs: m.sentAtMs,
    clientMsgId: m.clientMsgId.slice(),
    body: m.body,
  }
}

/** Index of the first entry with version > v. */
const firstAfter = (entries: Slot[], v: number): number => {
  let lo = 0
  let hi = entries.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (entries[mid].version > v) hi = mid
    else lo = mid + 1
  }
  return lo
}

export class MemoryMessageStore implements MessageStore {
  private readonly userExists: (userId: number) => boolean | Promise<boolean>
  private readonly knownUsers = new Set<number>()
  private readonly contacts = new Map<number, Set<number>>()
  private readonly groups = new Map<number, MemGroup>()
  private readonly groupsOf = new Map<number, Set<number>>()
  private readonly messages = new Map<number, MemMessage>()
  private readonly byClientKey = new Map<string, MemMessage>()
  private readonly receipts = new Set<string>()
  /** Messages without a copy left, until MESSAGE_MEMORY_MS after they were stored. */
  private readonly orphans = new Set<MemMessage>()
  private readonly inboxes = new Map<number, Inbox>()
  private readonly cursors = new Map<number, number>()
  private nextGroupId = 1
  private nextMsgId = 1
  private closed = false
  /** Batches (and close) one at a time, in call order. */
  private readonly queue = new SerialQueue()

  constructor(options: MemoryMessageStoreOptions) {
    if ('userExists' in options) {
      this.userExists = options.userExists
    } else {
      const accounts = options.accounts
      this.userExists = async (userId) => (await accounts.getUserById(userId)) !== undefined
    }
  }

  // ---- contacts ----

  async addContact(args: { userId: number; contactUserId: number; nowMs: number }): Promise<boolean> {
    this.open()
    const { userId, contactUserId } = args
    if (userId === contactUserId) throw invalid('a user cannot be their own contact')
    if (!isCount(args.nowMs)) throw invalid(`nowMs ${String(args.nowMs)}`)
    await this.requireUsers([userId, contactUserId])
    this.open()
    const mine = this.contactsOf(userId)
    if (mine.has(contactUserId) && this.contactsOf(contactUserId).has(userId)) return false
    mine.add(contactUserId)
    this.contactsOf(contactUserId).add(userId)
    return true
  }

  async removeContact(args: { userId: number; contactUserId: number }): Promise<boolean> {
    this.open()
    const a = this.contacts.get(args.userId)?.delete(args.contactUserId) ?? false
    const b = this.contacts.get(args.contactUserId)?.delete(args.userId) ?? false
    return a || b
  }

  async listContacts(userId: number): Promise<number[]> {
    this.open()
    const set = this.contacts.get(userId)
    return set === undefined ? [] : [...set].sort((x, y) => x - y)
  }

  // ---- groups ----

  async createGroup(args: { name: string; createdByUserId: number; memberUserIds: number[]; nowMs: number }): Promise<GroupRecord> {
    this.open()
    checkGroupName(args.name)
    if (!isCount(args.nowMs)) throw invalid(`nowMs ${String(args.nowMs)}`)
    if (!Array.isArray(args.memberUserIds)) throw invalid('memberUserIds is not an array')
    await this.requireUsers(uniqueUserIds([args.createdByUserId, ...args.memberUserIds]))
    this.open()
    return { ...this.insertGroup(args).record }
  }

  async getGroup(groupId: number): Promise<GroupRecord | undefined> {
    this.open()
    const g = this.groups.get(groupId)
    return g === undefined ? undefined : { ...g.record }
  }

  async listGroupMembers(groupId: number): Promise<number[]> {
    this.open()
    return [...this.group(groupId).members].sort((x, y) => x - y)
  }

  async addGroupMember(args: { groupId: number; userId: number; nowMs: number }): Promise<void> {
    this.open()
    if (!isCount(args.nowMs)) throw invalid(`nowMs ${String(args.nowMs)}`)
    this.group(args.groupId)
    await this.requireUsers([args.userId])
    this.open()
    this.insertMember(args)
  }

  async removeGroupMember(args: { groupId: number; userId: number }): Promise<void> {
    this.open()
    this.deleteMember(args)
  }

  async renameGroup(args: { groupId: number; name: string }): Promise<void> {
    this.open()
    const g = this.group(args.groupId)
    checkGroupName(args.name)
    g.record.name = args.name
  }

  async listGroupsOf(userId: number): Promise<GroupRecord[]> {
    this.open()
    const ids = this.groupsOf.get(userId)
    if (ids === undefined) return []
    return [...ids].sort((x, y) => x - y).map((id) => ({ ...this.groups.get(id)!.record }))
  }

  // ---- durable writes ----

  async applyBatch(writes: InboxWrite[]): Promise<InboxWriteResult[]> {
    this.open()
    if (!Array.isArray(writes)) throw invalid('writes is not an array')
    for (const w of writes) checkInboxWrite(w)
    return this.queue.run(() => this.applyInTurn(writes))
  }

  /** Its turn come; close() waits for it, so it does not check `closed` again. */
  private async applyInTurn(writes: InboxWrite[]): Promise<InboxWriteResult[]> {
    const n = writes.length
    // 1. shapes; the inboxes of each write, each once
    const inboxIds: number[][] = new Array(n)
    const keys: string[] = new Array(n)
    let missing: number[] | undefined
    const need = (id: number): void => {
      if (!this.knownUsers.has(id)) (missing ??= []).push(id)
    }
    for (let i = 0; i < n; i++) {
      const w = writes[i]
      if (w.kind === 'receipt' || w.kind === 'fin') continue
      const ids = uniqueUserIds(w.inboxUserIds)
      inboxIds[i] = ids
      for (const id of ids) need(id)
      if (w.kind === 'message') {
        need(w.senderUserId)
        keys[i] = clientKey(w.senderUserId, w.clientMsgId)
      } else if (w.applyChange === true) {
        need(w.actorUserId) // a creator
        need(w.subjectUserId) // one who joins
      }
    }
    // 2. users not seen before (the only await, skipped when all are cached)
    if (missing !== undefined) await this.loadUsers(missing)
    // 3. validate against the state the batch will see, so that applying cannot fail
    const created = new Set<string>()
    for (let i = 0; i < n; i++) {
      const w = writes[i]
      if (w.kind === 'message') {
        if (this.byClientKey.has(keys[i]) || created.has(keys[i])) continue // a duplicate writes nothing
        if (!this.knownUsers.has(w.senderUserId)) throw unknownUser(w.senderUserId)
        for (const id of inboxIds[i]) if (!this.knownUsers.has(id)) throw unknownUser(id)
        created.add(keys[i])
      } else if (w.kind === 'group_event') {
        // Unknown inbox users fail the batch; a group change that cannot apply fails alone (as it applies).
        for (const id of inboxIds[i]) if (!this.knownUsers.has(id)) throw unknownUser(id)
      }
    }
    // 4. apply
    const results: InboxWriteResult[] = new Array(n)
    for (let i = 0; i < n; i++) {
      const w = writes[i]
      if (w.kind === 'message') results[i] = this.applyMessage(w, keys[i], inboxIds[i])
      else if (w.kind === 'receipt') results[i] = this.applyReceipt(w)
      else if (w.kind === 'fin') results[i] = this.applyFin(w)
      else results[i] = this.applyGroupEvent(w, inboxIds[i])
    }
    return results
  }

  private applyMessage(w: Extract<InboxWrite, { kind: 'message' }>, key: string, ids: number[]): InboxWriteResult {
    const existing = this.byClientKey.get(key)
    if (existing !== undefined) {
      const remaining = existing.versions.filter((v) => this.hasEntry(v.userId, v.version))
      return { kind: 'message', msgId: existing.msgId, sentAtMs: existing.sentAtMs, duplicate: true, versions: orderVersionsLike(remaining, ids) }
    }
    const msg: MemMessage = {
      msgId: this.nextMsgId++,
      senderUserId: w.senderUserId,
      senderDeviceId: w.senderDeviceId,
      clientMsgId: w.clientMsgId.slice(),
      key,
      to: copyPeer(w.to),
      body: w.body,
      sentAtMs: w.nowMs,
      versions: [],
      copies: ids.length,
      receiptKeys: undefined,
    }
    this.messages.set(msg.msgId, msg)
    this.byClientKey.set(key, msg)
    const versions = new Array<{ userId: number; version: number }>(ids.length)
    for (let j = 0; j < ids.length; j++) {
      const inbox = this.inbox(ids[j])
      const version = ++inbox.head
      inbox.entries.push({ kind: 'message', version, atMs: w.nowMs, msg })
      msg.versions.push({ userId: ids[j], version })
      versions[j] = { userId: ids[j], version }
    }
    return { kind: 'message', msgId: msg.msgId, sentAtMs: msg.sentAtMs, duplicate: false, versions }
  }

  private applyReceipt(w: Extract<InboxWrite, { kind: 'receipt' }>): InboxWriteResult {
    const msg = this.messages.get(w.msgId)
    const version = msg === undefined ? 0 : this.addReceipt(msg, w.status, w.byUserId, w.nowMs)
    return version === 0 ? { kind: 'receipt', added: false, versions: [] } : { kind: 'receipt', added: true, versions: [{ userId: msg!.senderUserId, version }] }
  }

  /** The receipt and the sender's inbox entry; returns its version, 0 if the receipt existed. */
  private addReceipt(msg: MemMessage, status: ReceiptStatus, byUserId: number, nowMs: number): number {
    const rk = `${msg.msgId}:${byUserId}:${status}`
    if (this.receipts.has(rk)) return 0
    this.receipts.add(rk)
    ;(msg.receiptKeys ??= []).push(rk)
    const inbox = this.inbox(msg.senderUserId)
    const version = ++inbox.head
    const entry: ReceiptEntry = { kind: 'receipt', version, msgId: msg.msgId, status, byUserId, atMs: nowMs }
    inbox.entries.push({ kind: 'receipt', version, atMs: nowMs, entry })
    return version
  }

  private applyFin(w: Extract<InboxWrite, { kind: 'fin' }>): InboxWriteResult {
    const inbox = this.inboxes.get(w.userId)
    const version = Math.min(w.version, inbox?.head ?? 0)
    const before = this.cursors.get(w.deviceId) ?? 0
    if (inbox === undefined || version <= before) return { kind: 'fin', previousCursor: before, cursor: before, versions: [] }
    this.cursors.set(w.deviceId, version)
    const from = Math.max(before, version - w.maxReceiptEntries)
    const versions: Array<{ userId: number; version: number }> = []
    for (let i = firstAfter(inbox.entries, from); i < inbox.entries.length && inbox.entries[i].version <= version; i++) {
      const slot = inbox.entries[i]
      if (slot.kind !== 'message' || slot.msg.senderUserId === w.userId) continue
      const v = this.addReceipt(slot.msg, 'delivered', w.userId, w.nowMs)
      if (v !== 0) versions.push({ userId: slot.msg.senderUserId, version: v })
    }
    return { kind: 'fin', previousCursor: before, cursor: version, versions }
  }

  private applyGroupEvent(w: GroupEventWrite, ids: number[]): InboxWriteResult {
    let groupId: number
    try {
      groupId = this.applyGroupChange(w, ids) // checks before it changes anything: fails alone
    } catch (err) {
      if (err instanceof MessageStoreError) return { kind: 'failed', error: err }
      throw err
    }
    const versions = new Array<{ userId: number; version: number }>(ids.length)
    for (let j = 0; j < ids.length; j++) {
      const inbox = this.inbox(ids[j])
      const version = ++inbox.head
      const entry: GroupEntry = {
        kind: 'group',
        version,
        groupId,
        event: w.event,
        actorUserId: w.actorUserId,
        subjectUserId: w.subjectUserId,
        name: w.name,
        atMs: w.nowMs,
      }
      inbox.entries.push({ kind: 'group', version, atMs: w.nowMs, entry })
      versions[j] = { userId: ids[j], version }
    }
    return { kind: 'group_event', groupId, versions }
  }

  /** The change a group event names (if it is to be applied); returns the group's id. */
  private applyGroupChange(w: GroupEventWrite, ids: number[]): number {
    if (w.applyChange !== true) return this.group(w.groupId).record.groupId
    const args = { groupId: w.groupId, userId: w.subjectUserId, nowMs: w.nowMs }
    if (w.event === 'created') return this.insertGroup({ name: w.name, createdByUserId: w.actorUserId, memberUserIds: ids, nowMs: w.nowMs }).record.groupId
    if (w.event === 'joined') this.insertMember(args)
    else if (w.event === 'left') this.deleteMember(args)
    else this.group(w.groupId).record.name = w.name
    return w.groupId
  }

  /** Users already known (cached). */
  private insertGroup(args: { name: string; createdByUserId: number; memberUserIds: number[]; nowMs: number }): MemGroup {
    const members = uniqueUserIds([args.createdByUserId, ...args.memberUserIds])
    for (const u of members) if (!this.knownUsers.has(u)) throw unknownUser(u)
    const record: GroupRecord = { groupId: this.nextGroupId++, name: args.name, createdByUserId: args.createdByUserId, createdAtMs: args.nowMs }
    const group = { record, members: new Set(members) }
    this.groups.set(record.groupId, group)
    for (const u of members) this.groupIdsOf(u).add(record.groupId)
    return group
  }

  /** The user already known (cached). */
  private insertMember(args: { groupId: number; userId: number }): void {
    const g = this.group(args.groupId)
    if (!this.knownUsers.has(args.userId)) throw unknownUser(args.userId)
    if (g.members.has(args.userId)) throw new MessageStoreError('ALREADY_MEMBER', `user ${args.userId} is in group ${args.groupId}`)
    g.members.add(args.userId)
    this.groupIdsOf(args.userId).add(args.groupId)
  }

  private deleteMember(args: { groupId: number; userId: number }): void {
    const g = this.group(args.groupId)
    if (!g.members.delete(args.userId)) throw new MessageStoreError('NOT_A_MEMBER', `user ${args.userId} is not in group ${args.groupId}`)
    this.groupsOf.get(args.userId)?.delete(args.groupId)
  }

  // ---- inboxes ----

  async inboxHead(userId: number): Promise<number> {
    this.open()
    return this.inboxes.get(userId)?.head ?? 0
  }

  async readInbox(args: { userId: number; afterVersion: number; limit: number }): Promise<InboxEntry[]> {
    this.open()
    if (!Number.isSafeInteger(args.afterVersion)) throw invalid(`afterVersion ${String(args.afterVersion)}`)
    if (!isCount(args.limit)) throw invalid(`limit ${String(args.limit)}`)
    const inbox = this.inboxes.get(args.userId)
    if (inbox === undefined || args.limit === 0) return []
    const from = firstAfter(inbox.entries, args.afterVersion)
    const to = Math.min(inbox.entries.length, from + args.limit)
    const out = new Array<InboxEntry>(to - from)
    for (let i = from; i < to; i++) out[i - from] = toEntry(inbox.entries[i])
    return out
  }

  /** Pruned copies count as absent (as in the SQLite store). */
  async hasInboxCopy(args: { userId: number; msgId: number }): Promise<boolean> {
    this.open()
    if (!isId(args.userId)) throw invalid(`userId ${String(args.userId)}`)
    if (!isId(args.msgId)) throw invalid(`msgId ${String(args.msgId)}`)
    const m = this.messages.get(args.msgId)
    const copy = m?.versions.find((v) => v.userId === args.userId)
    return copy !== undefined && this.hasEntry(copy.userId, copy.version)
  }

  async getMessage(msgId: number): Promise<StoredMessage | undefined> {
    this.open()
    const m = this.messages.get(msgId)
    return m === undefined ? undefined : toStored(m)
  }

  async findByClientMsgId(args: { senderUserId: number; clientMsgId: Uint8Array }): Promise<StoredMessage | undefined> {
    this.open()
    if (!(args.clientMsgId instanceof Uint8Array)) throw invalid('clientMsgId is not bytes')
    const m = this.byClientKey.get(clientKey(args.senderUserId, args.clientMsgId))
    return m === undefined ? undefined : toStored(m)
  }

  // ---- device cursors ----

  async getCursor(deviceId: number): Promise<number> {
    this.open()
    return this.cursors.get(deviceId) ?? 0
  }

  async advanceCursor(args: { deviceId: number; version: number }): Promise<number> {
    this.open()
    if (!isId(args.deviceId)) throw invalid(`deviceId ${String(args.deviceId)}`)
    if (!isCount(args.version)) throw invalid(`version ${String(args.version)}`)
    const before = this.cursors.get(args.deviceId) ?? 0
    if (args.version > before) this.cursors.set(args.deviceId, args.version)
    return before
  }

  // ---- housekeeping ----

  async pruneInboxes(policy: RetentionPolicy): Promise<number> {
    this.open()
    const { olderThanMs, keepLastPerUser, nowMs } = policy
    if (!isCount(nowMs)) throw invalid(`nowMs ${String(nowMs)}`)
    if (olderThanMs !== undefined && !isCount(olderThanMs)) throw invalid(`olderThanMs ${String(olderThanMs)}`)
    if (keepLastPerUser !== undefined && !isCount(keepLastPerUser)) throw invalid(`keepLastPerUser ${String(keepLastPerUser)}`)
    let deleted = 0
    // The newest N of each inbox as it was, then age: an entry goes if either policy says so.
    if (keepLastPerUser !== undefined) {
      for (const inbox of this.inboxes.values()) {
        const excess = inbox.entries.length - keepLastPerUser
        if (excess <= 0) continue
        for (const s of inbox.entries.splice(0, excess)) this.dropSlot(s)
        deleted += excess
      }
    }
    if (olderThanMs !== undefined) {
      // Oldest first, as the SQLite store: an old entry behind a younger one waits for it.
      for (const inbox of this.inboxes.values()) {
        let old = 0
        while (old < inbox.entries.length && inbox.entries[old].atMs < olderThanMs) old++
        for (const s of inbox.entries.splice(0, old)) this.dropSlot(s)
        deleted += old
      }
    }
    this.forgetOrphans(nowMs - MESSAGE_MEMORY_MS)
    return deleted
  }

  private forgetOrphans(sentBeforeMs: number): void {
    for (const m of this.orphans) {
      if (m.sentAtMs >= sentBeforeMs) continue
      this.orphans.delete(m)
      this.messages.delete(m.msgId)
      this.byClientKey.delete(m.key)
      if (m.receiptKeys !== undefined) for (const rk of m.receiptKeys) this.receipts.delete(rk)
    }
  }

  async close(): Promise<void> {
    this.closed = true
    await this.queue.run(() => undefined)
  }

  // ---- internals ----

  /** A message's last copy going leaves it an orphan: remembered for de-duplication, text dropped. */
  private dropSlot(s: Slot): void {
    if (s.kind !== 'message') return
    const m = s.msg
    if (--m.copies > 0) return
    m.body = ''
    this.orphans.add(m)
  }

  private hasEntry(userId: number, version: number): boolean {
    const entries = this.inboxes.get(userId)?.entries
    if (entries === undefined) return false
    const i = firstAfter(entries, version - 1)
    return i < entries.length && entries[i].version === version
  }

  private inbox(userId: number): Inbox {
    let inbox = this.inboxes.get(userId)
    if (inbox === undefined) {
      inbox = { head: 0, entries: [] }
      this.inboxes.set(userId, inbox)
    }
    return inbox
  }

  private contactsOf(userId: number): Set<number> {
    let set = this.contacts.get(userId)
    if (set === undefined) {
      set = new Set()
      this.contacts.set(userId, set)
    }
    return set
  }

  private groupIdsOf(userId: number): Set<number> {
    let set = this.groupsOf.get(userId)
    if (set === undefined) {
      set = new Set()
      this.groupsOf.set(userId, set)
    }
    return set
  }

  private group(groupId: number): MemGroup {
    const g = this.groups.get(groupId)
    if (g === undefined) throw unknownGroup(groupId)
    return g
  }

  /** Looks up users not cached yet; found ones are cached (users are never deleted). */
  private async loadUsers(ids: number[]): Promise<void> {
    const todo = [...new Set(ids)].filter((id) => !this.knownUsers.has(id) && isId(id))
    if (todo.length === 0) return
    const found = await Promise.all(todo.map((id) => this.userExists(id)))
    for (let i = 0; i < todo.length; i++) if (found[i]) this.knownUsers.add(todo[i])
  }

  /** Throws UNKNOWN_USER for the first id (in order) that names no user. */
  private async requireUsers(ids: number[]): Promise<void> {
    await this.loadUsers(ids)
    for (const id of ids) if (!this.knownUsers.has(id)) throw unknownUser(id)
  }

  private open(): void {
    if (this.closed) throw new MessageStoreError('STORE_CLOSED', 'store is closed')
  }
}

