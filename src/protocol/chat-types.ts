/**
 * The messaging family: what clients and the server say to each other on the control
 * stream 0 once a session is logged in (protocol-spec/messaging.md). Types 0x10-0x3f;
 * the login family keeps 0x01-0x0f. The encoding is in chat-codec.ts.
 *
 * Sync by version (push -> sync -> fin): every user has an inbox whose entries carry a
 * strictly increasing version. The server sends PUSH when an entry is added; the device
 * sends SYNC from the last version it holds; the server answers with SYNC_BATCH (entries
 * in version order); the device reports what it now holds with FIN.
 */

/** A conversation target: another user (1:1) or a group. */
export type Peer = { kind: 'user'; userId: number } | { kind: 'group'; groupId: number }

export const CLIENT_MSG_ID_BYTES = 16

/** Why a request failed; each has a one-byte wire code (chat-codec.ts). */
export type ChatErrorCode =
  | 'INVALID_REQUEST'
  | 'MESSAGE_TOO_LARGE'
  | 'RATE_LIMITED'
  | 'UNKNOWN_USER'
  | 'UNKNOWN_GROUP'
  | 'NOT_A_MEMBER'
  | 'GROUP_FULL'
  | 'ALREADY_MEMBER'
  | 'NOT_LOGGED_IN'
  | 'INTERNAL_ERROR'

export const ReceiptStatus = { delivered: 1, read: 2 } as const
export type ReceiptStatus = 'delivered' | 'read'

export type GroupEventKind = 'created' | 'joined' | 'left' | 'renamed'

/** One inbox entry as a device receives it in SYNC_BATCH. */
export type InboxEntry =
  | {
      kind: 'message'
      version: number
      msgId: number
      /** Sender's user and device (a copy of one's own message names one's own user). */
      fromUserId: number
      fromDeviceId: number
      /** As sent: to a user (1:1) or to a group. */
      to: Peer
      /** Server time when the message was stored (ms since the epoch). */
      sentAtMs: number
      clientMsgId: Uint8Array
      body: string
    }
  | {
      kind: 'receipt'
      version: number
      /** A message this inbox's owner sent. */
      msgId: number
      status: ReceiptStatus
      /** Who received / read it. */
      byUserId: number
      atMs: number
    }
  | {
      kind: 'group'
      version: number
      groupId: number
      event: GroupEventKind
      /** Who did it (the creator, the inviter, the leaver, the renamer). */
      actorUserId: number
      /** Who joined or left (equals actor for created / renamed / leave). */
      subjectUserId: number
      /** The group's name after the event. */
      name: string
      atMs: number
    }

export interface UserSummary {
  userId: number
  username: string
}

export interface ContactSummary extends UserSummary {
  online: boolean
}

export interface GroupSummary {
  groupId: number
  name: string
  memberCount: number
}

export type ChatMessage =
  // client -> server
  | { type: 'SEND'; clientMsgId: Uint8Array; to: Peer; body: string }
  | { type: 'SYNC'; afterVersion: number; maxEntries: number }
  | { type: 'FIN'; version: number }
  | { type: 'READ'; msgIds: number[] }
  | { type: 'CONTACT_ADD'; requestId: number; username: string }
  | { type: 'CONTACT_REMOVE'; requestId: number; username: string }
  | { type: 'CONTACT_LIST'; requestId: number }
  | { type: 'GROUP_CREATE'; requestId: number; name: string; usernames: string[] }
  | { type: 'GROUP_INVITE'; requestId: number; groupId: number; username: string }
  | { type: 'GROUP_LEAVE'; requestId: number; groupId: number }
  | { type: 'GROUP_MEMBERS'; requestId: number; groupId: number }
  | { type: 'GROUP_RENAME'; requestId: number; groupId: number; name: string }
  | { type: 'GROUP_LIST'; requestId: number }
  | { type: 'USER_LOOKUP'; requestId: number; userIds: number[] }
  | { type: 'USER_FIND'; requestId: number; usernames: string[] }
  // server -> client
  /** The message is stored durably ("sent" receipt); `version` is its entry in the sender's own inbox. */
  | { type: 'SEND_OK'; clientMsgId: Uint8Array; msgId: number; version: number; sentAtMs: number }
  | { type: 'SEND_FAILED'; clientMsgId: Uint8Array; code: ChatErrorCode; retryAfterMs?: number }
  /** The user's inbox now ends at `latestVersion`. */
  | { type: 'PUSH'; latestVersion: number }
  /** Entries after `afterVersion`, in version order; `latestVersion` is the inbox's end when read. */
  | { type: 'SYNC_BATCH'; afterVersion: number; latestVersion: number; entries: InboxEntry[] }
  | { type: 'PRESENCE'; userId: number; online: boolean }
  | { type: 'OK'; requestId: number }
  | { type: 'ERROR'; requestId: number; code: ChatErrorCode; message: string }
  | { type: 'CONTACTS'; requestId: number; contacts: ContactSummary[] }
  | { type: 'GROUP'; requestId: number; groupId: number; name: string; members: UserSummary[] }
  | { type: 'GROUPS'; requestId: number; groups: GroupSummary[] }
  | { type: 'USERS'; requestId: number; users: UserSummary[] }

export type ChatMessageType = ChatMessage['type']

/** Requests that carry a requestId and get exactly one OK / ERROR / data reply. */
export type ChatRequest = Extract<ChatMessage, { requestId: number; type: `${'CONTACT' | 'GROUP' | 'USER'}_${string}` }>
export type ChatReply = Extract<ChatMessage, { type: 'OK' | 'ERROR' | 'CONTACTS' | 'GROUP' | 'GROUPS' | 'USERS' }>

/** Limits the codec enforces on decode and encode. */
export const MAX_BODY_BYTES_ON_WIRE = 64 * 1024
export const MAX_NAME_BYTES = 64
export const MAX_LIST_ITEMS = 10_000
export const MAX_ERROR_MESSAGE_BYTES = 256
