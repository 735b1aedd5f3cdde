/**
 * How the messaging tables' rows map to pigeon's types: the codes stored for kinds,
 * statuses and group events, and the row shapes better-sqlite3 returns.
 */
import type { GroupEventKind, InboxEntry, Peer, ReceiptStatus } from '../protocol/chat-types.js'
import type { GroupRecord, StoredMessage } from './message-store.js'

export const KIND_MESSAGE = 1
const KIND_RECEIPT = 2
const KIND_GROUP = 3
export const TO_USER = 1
export const TO_GROUP = 2

export const STATUS_CODE: Record<ReceiptStatus, number> = { delivered: 1, read: 2 }
export const STATUS_BY_CODE: Record<number, ReceiptStatus> = { 1: 'delivered', 2: 'read' }
export const EVENT_CODE: Record<GroupEventKind, number> = { created: 1, joined: 2, left: 3, renamed: 4 }
export const EVENT_BY_CODE: Record<number, GroupEventKind> = { 1: 'created', 2: 'joined', 3: 'left', 4: 'renamed' }

export interface GroupRow { group_id: number; name: string; created_by_user_id: number; created_at_ms: number }
export interface MessageRow { msg_id: number; sender_user_id: number; sender_device_id: number; to_kind: number; to_id: number; sent_at_ms: number }
/**
 * One row of readInbox, as an array (better-sqlite3 `raw()`: no object per row):
 * inbox columns, then for kind 1 the message's (LEFT JOIN).
 */
export type InboxRow = [
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

export const toPeer = (kind: number, id: number): Peer => (kind === TO_USER ? { kind: 'user', userId: id } : { kind: 'group', groupId: id })
export const toGroup = (r: GroupRow): GroupRecord => ({ groupId: r.group_id, name: r.name, createdByUserId: r.created_by_user_id, createdAtMs: r.created_at_ms })
export const toStored = (r: MessageRow): StoredMessage => ({
  msgId: r.msg_id,
  senderUserId: r.sender_user_id,
  senderDeviceId: r.sender_device_id,
  to: toPeer(r.to_kind, r.to_id),
  sentAtMs: r.sent_at_ms,
})

export const toEntry = (r: InboxRow): InboxEntry => {
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
