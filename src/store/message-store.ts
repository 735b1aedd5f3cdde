/**
 * The messaging store: contacts, groups, messages, per-user inboxes with strictly
 * increasing versions, per-device sync cursors and receipts. An interface so that the
 * embedded SQLite store, the in-memory test store and a later Redis store pass one
 * conformance suite (test/store/message-conformance.ts).
 *
 * Writes that must be durable before the client hears back (messages, receipts, group
 * events, FIN's cursor and delivered receipts) go through `applyBatch`: the server's group
 * commit collects them for a millisecond or two and the store applies the whole batch
 * atomically, with ONE durable commit (one fsync), before any promise resolves.
 *
 * Times are milliseconds since the Unix epoch, passed in by the caller.
 */
import type { GroupEventKind, InboxEntry, Peer, ReceiptStatus } from '../protocol/chat-types.js'

/**
 * STORE_FAILED: a durable commit could not be confirmed (the WAL sync failed); the store
 * refuses every later call until the server is restarted (see SqliteMessageStore).
 */
export type MessageStoreErrorCode =
  | 'UNKNOWN_USER'
  | 'UNKNOWN_GROUP'
  | 'NOT_A_MEMBER'
  | 'ALREADY_MEMBER'
  | 'INVALID_ARGUMENT'
  | 'STORE_CLOSED'
  | 'STORE_FAILED'

export class MessageStoreError extends Error {
  readonly code: MessageStoreErrorCode
  constructor(code: MessageStoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'MessageStoreError'
    this.code = code
  }
}

export interface GroupRecord {
  groupId: number
  name: string
  createdByUserId: number
  createdAtMs: number
}

/** One durable write in a batch. */
export type InboxWrite =
  | {
      kind: 'message'
      senderUserId: number
      senderDeviceId: number
      /** Idempotency key: (senderUserId, clientMsgId) is unique across the store. */
      clientMsgId: Uint8Array
      to: Peer
      body: string
      /** Every inbox that gets a copy (recipients and the sender), each once. */
      inboxUserIds: number[]
      nowMs: number
    }
  | {
      /** A receipt for `msgId` by `byUserId`, added to the sender's inbox once per (msgId, byUserId, status). */
      kind: 'receipt'
      msgId: number
      status: ReceiptStatus
      byUserId: number
      nowMs: number
    }
  | {
      /** A group event recorded in inboxUserIds' inboxes. */
      kind: 'group_event'
      /** 0 for a 'created' event with applyChange: the store assigns the id. */
      groupId: number
      event: GroupEventKind
      actorUserId: number
      subjectUserId: number
      name: string
      inboxUserIds: number[]
      nowMs: number
      /**
       * Also apply the change the event names, in the same transaction, so that a change
       * never stands without its event: created, a group named `name` by actorUserId whose
       * members are actorUserId and inboxUserIds; joined, subjectUserId added; left,
       * subjectUserId removed; renamed, to `name`. A change that cannot apply
       * (UNKNOWN_GROUP, ALREADY_MEMBER, NOT_A_MEMBER) fails this write alone.
       */
      applyChange?: boolean
    }
  | {
      /**
       * FIN: device `deviceId` of `userId` holds every entry up to `version` (clamped to the
       * inbox head). Moves the device's cursor (never backwards) and adds a 'delivered'
       * receipt by `userId` for every message from another user among the newly held
       * entries, looking back at most `maxReceiptEntries` entries below `version` (a new
       * device catching up does not flood the senders).
       */
      kind: 'fin'
      userId: number
      deviceId: number
      version: number
      maxReceiptEntries: number
      nowMs: number
    }

export type InboxWriteResult =
  | {
      kind: 'message'
      msgId: number
      sentAtMs: number
      /** True when (senderUserId, clientMsgId) already existed: nothing new was written. */
      duplicate: boolean
      /** The entry's version in each inbox (for a duplicate: the versions first assigned). */
      versions: Array<{ userId: number; version: number }>
    }
  | {
      kind: 'receipt'
      /** False when the same receipt existed already, or the message is unknown. */
      added: boolean
      /** The sender's inbox entry, when added. */
      versions: Array<{ userId: number; version: number }>
    }
  | { kind: 'group_event'; groupId: number; versions: Array<{ userId: number; version: number }> }
  | {
      kind: 'fin'
      /** The device's cursor before the write. */
      previousCursor: number
      /** The cursor after it (unchanged when the FIN was not beyond it). */
      cursor: number
      /** The delivered-receipt entries added, one per sender inbox entry. */
      versions: Array<{ userId: number; version: number }>
    }
  /** This write alone failed (a group change that cannot apply); GroupCommit rejects its writer. */
  | { kind: 'failed'; error: MessageStoreError }

/** What a write that applied answers (GroupCommit resolves with these, rejects 'failed'). */
export type AppliedWriteResult = Exclude<InboxWriteResult, { kind: 'failed' }>

export interface StoredMessage {
  msgId: number
  senderUserId: number
  senderDeviceId: number
  to: Peer
  sentAtMs: number
}

export interface RetentionPolicy {
  /** The server's clock (ms since the epoch): forgets messages stored MESSAGE_MEMORY_MS before it. */
  nowMs: number
  /**
   * Delete inbox entries older than this (ms since the epoch); undefined keeps all. Entries
   * go oldest version first: one written after a newer one (the clock stepped back) goes
   * once every entry before it has.
   */
  olderThanMs?: number
  /** Keep at most this many newest entries per user; undefined keeps all. */
  keepLastPerUser?: number
}

/**
 * How long a message whose inbox copies were all pruned is still remembered, counted from
 * when it was stored: its clientMsgId keeps de-duplicating retries (the spec promises at
 * least 24 hours), its text is dropped at once.
 */
export const MESSAGE_MEMORY_MS = 24 * 60 * 60 * 1000

export interface MessageStore {
  // ---- contacts (mutual: adding A->B also adds B->A) ----
  /** Returns false if they were contacts already. Throws UNKNOWN_USER. */
  addContact(args: { userId: number; contactUserId: number; nowMs: number }): Promise<boolean>
  /** Returns false if they were not contacts. */
  removeContact(args: { userId: number; contactUserId: number }): Promise<boolean>
  /** Ordered by userId. */
  listContacts(userId: number): Promise<number[]>

  // ---- groups ----
  // The server changes groups with group_event writes (applyChange), which record the event
  // in the members' inboxes in the same transaction; these change a group alone (tests, tools).
  /** The creator is a member; members are deduplicated. Throws UNKNOWN_USER. */
  createGroup(args: { name: string; createdByUserId: number; memberUserIds: number[]; nowMs: number }): Promise<GroupRecord>
  getGroup(groupId: number): Promise<GroupRecord | undefined>
  /** Ordered by userId; throws UNKNOWN_GROUP. */
  listGroupMembers(groupId: number): Promise<number[]>
  /** Throws UNKNOWN_GROUP, UNKNOWN_USER, ALREADY_MEMBER. */
  addGroupMember(args: { groupId: number; userId: number; nowMs: number }): Promise<void>
  /** Throws UNKNOWN_GROUP, NOT_A_MEMBER. */
  removeGroupMember(args: { groupId: number; userId: number }): Promise<void>
  /** Throws UNKNOWN_GROUP. */
  renameGroup(args: { groupId: number; name: string }): Promise<void>
  /** Groups the user belongs to, ordered by groupId. */
  listGroupsOf(userId: number): Promise<GroupRecord[]>

  // ---- durable writes (group commit) ----
  /**
   * Apply every write atomically with one durable commit; results in the same order.
   * A write that fails on its own (unknown message for a receipt) does not fail the batch.
   * Calls made before an earlier one settled are applied after it, in call order.
   */
  applyBatch(writes: InboxWrite[]): Promise<InboxWriteResult[]>

  // ---- inboxes ----
  /** Last version in the user's inbox (0 if it never had an entry). */
  inboxHead(userId: number): Promise<number>
  /** Entries with version > afterVersion, ascending, at most `limit`. */
  readInbox(args: { userId: number; afterVersion: number; limit: number }): Promise<InboxEntry[]>
  /** Looks up a message (for receipts and read checks). */
  getMessage(msgId: number): Promise<StoredMessage | undefined>
  /** The message a sender created with this client id, if any (idempotency after a cache miss). */
  findByClientMsgId(args: { senderUserId: number; clientMsgId: Uint8Array }): Promise<StoredMessage | undefined>
  /**
   * Whether the user's inbox holds an entry of kind message for msgId, as readInbox would
   * serve it: false once that entry was pruned, and false while it is not yet durable.
   * Throws INVALID_ARGUMENT for ids that are not positive safe integers.
   */
  hasInboxCopy(args: { userId: number; msgId: number }): Promise<boolean>

  // ---- device cursors ----
  /** Last version the device reported holding (FIN); 0 if never. */
  getCursor(deviceId: number): Promise<number>
  /** Never moves a cursor backwards; returns the cursor before the call. */
  advanceCursor(args: { deviceId: number; version: number }): Promise<number>

  /**
   * Housekeeping: delete inbox entries per the policy; returns how many were deleted. Runs
   * between batches (the SQLite store in bounded steps, so batches go on meanwhile). A
   * message whose last copy goes is forgotten MESSAGE_MEMORY_MS after it was stored.
   */
  pruneInboxes(policy: RetentionPolicy): Promise<number>

  /** Refuses new calls at once; resolves when the batches already called for are applied. */
  close(): Promise<void>
}
