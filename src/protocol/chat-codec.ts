/**
 * Wire encoding of the messaging family (types in chat-types.ts), one message per
 * MESSAGE on the control stream 0 after login. See protocol-spec/messaging.md for the
 * byte layout and test vectors. Same conventions as the login family (login-messages.ts):
 * a type byte then the fields; integers are QUIC varints, strings a varint length then
 * UTF-8, booleans one byte 0/1, lists a varint count then the items.
 *
 * Type bytes (0x10-0x3f on stream 0; the login family keeps 0x01-0x0f):
 *   0x10-0x1f  client -> server messaging: SEND, SYNC, FIN, READ
 *   0x20-0x2f  client -> server requests carrying a requestId (contacts, groups, users)
 *   0x30-0x37  server -> client messaging: SEND_OK, SEND_FAILED, PUSH, SYNC_BATCH, PRESENCE
 *   0x38-0x3f  server -> client replies to requests: OK, ERROR, CONTACTS, GROUP, GROUPS, USERS
 */
import { DecodeError } from '../core/errors.js'
import { Reader } from '../core/wire/reader.js'
import {
  Out,
  byWireCode,
  putBool,
  putClientMsgId,
  putCode,
  putEntry,
  putList,
  putName,
  putPeer,
  putString,
  readBool,
  readClientMsgId,
  readCode,
  readEntry,
  readList,
  readName,
  readPeer,
  readString,
} from './chat-codec-parts.js'
import {
  MAX_BODY_BYTES_ON_WIRE,
  MAX_ERROR_MESSAGE_BYTES,
  type ChatErrorCode,
  type ChatMessage,
  type ContactSummary,
  type GroupSummary,
  type UserSummary,
} from './chat-types.js'

export const ChatMessageType = {
  // client -> server: messaging
  SEND: 0x10,
  SYNC: 0x11,
  FIN: 0x12,
  READ: 0x13,
  // client -> server: requests (requestId, one reply each)
  CONTACT_ADD: 0x20,
  CONTACT_REMOVE: 0x21,
  CONTACT_LIST: 0x22,
  GROUP_CREATE: 0x23,
  GROUP_INVITE: 0x24,
  GROUP_LEAVE: 0x25,
  GROUP_MEMBERS: 0x26,
  GROUP_RENAME: 0x27,
  GROUP_LIST: 0x28,
  USER_LOOKUP: 0x29,
  USER_FIND: 0x2a,
  // server -> client: messaging
  SEND_OK: 0x30,
  SEND_FAILED: 0x31,
  PUSH: 0x32,
  SYNC_BATCH: 0x33,
  PRESENCE: 0x34,
  // server -> client: replies
  OK: 0x38,
  ERROR: 0x39,
  CONTACTS: 0x3a,
  GROUP: 0x3b,
  GROUPS: 0x3c,
  USERS: 0x3d,
} as const satisfies Record<ChatMessage['type'], number>
export type ChatMessageTypeName = keyof typeof ChatMessageType

/** First and last type byte of the messaging family on stream 0. */
export const CHAT_TYPE_MIN = 0x10
export const CHAT_TYPE_MAX = 0x3f
export const isChatMessage = (data: Uint8Array): boolean => data.length > 0 && data[0] >= CHAT_TYPE_MIN && data[0] <= CHAT_TYPE_MAX

export const ChatErrorWireCode: Record<ChatErrorCode, number> = {
  INVALID_REQUEST: 0x01,
  MESSAGE_TOO_LARGE: 0x02,
  RATE_LIMITED: 0x03,
  UNKNOWN_USER: 0x04,
  UNKNOWN_GROUP: 0x05,
  NOT_A_MEMBER: 0x06,
  GROUP_FULL: 0x07,
  ALREADY_MEMBER: 0x08,
  NOT_LOGGED_IN: 0x09,
  INTERNAL_ERROR: 0x0a,
}
const errorByWireCode = byWireCode(ChatErrorWireCode)
const typeNameByByte = byWireCode(ChatMessageType)

const putUsername = (o: Out, name: string): void => putName(o, 'username', name)
const readUsername = (r: Reader): string => readName(r, 'username')
const putUser = (o: Out, u: UserSummary): void => {
  o.varint(u.userId)
  putUsername(o, u.username)
}
const readUser = (r: Reader): UserSummary => ({ userId: r.varint(), username: readUsername(r) })
const putContact = (o: Out, c: ContactSummary): void => {
  putUser(o, c)
  putBool(o, c.online)
}
const readContact = (r: Reader): ContactSummary => ({ userId: r.varint(), username: readUsername(r), online: readBool(r, 'online') })
const putGroupSummary = (o: Out, g: GroupSummary): void => {
  o.varint(g.groupId)
  putName(o, 'group name', g.name)
  o.varint(g.memberCount)
}
const readGroupSummary = (r: Reader): GroupSummary => ({ groupId: r.varint(), name: readName(r, 'group name'), memberCount: r.varint() })
const putVarint = (o: Out, v: number): void => o.varint(v)
const readVarint = (r: Reader): number => r.varint()

/**
 * Encode one message. Throws RangeError when a field is over its limit (chat-types.ts)
 * or not a known enumeration value, UsageError when an integer is not a safe non-negative
 * integer. The result is a fresh buffer the caller owns.
 */
export const encodeChatMessage = (m: ChatMessage): Uint8Array => {
  const o = new Out()
  putCode(o, 'message type', ChatMessageType, m.type)
  switch (m.type) {
    case 'SEND':
      putClientMsgId(o, m.clientMsgId)
      putPeer(o, m.to)
      putString(o, 'body', m.body, MAX_BODY_BYTES_ON_WIRE)
      break
    case 'SYNC':
      o.varint(m.afterVersion)
      o.varint(m.maxEntries)
      break
    case 'FIN':
      o.varint(m.version)
      break
    case 'READ':
      putList(o, 'msgIds', m.msgIds, putVarint)
      break
    case 'CONTACT_ADD':
    case 'CONTACT_REMOVE':
      o.varint(m.requestId)
      putUsername(o, m.username)
      break
    case 'CONTACT_LIST':
    case 'GROUP_LIST':
    case 'OK':
      o.varint(m.requestId)
      break
    case 'GROUP_CREATE':
      o.varint(m.requestId)
      putName(o, 'group name', m.name)
      putList(o, 'usernames', m.usernames, putUsername)
      break
    case 'GROUP_INVITE':
      o.varint(m.requestId)
      o.varint(m.groupId)
      putUsername(o, m.username)
      break
    case 'GROUP_LEAVE':
    case 'GROUP_MEMBERS':
      o.varint(m.requestId)
      o.varint(m.groupId)
      break
    case 'GROUP_RENAME':
      o.varint(m.requestId)
      o.varint(m.groupId)
      putName(o, 'group name', m.name)
      break
    case 'USER_LOOKUP':
      o.varint(m.requestId)
      putList(o, 'userIds', m.userIds, putVarint)
      break
    case 'USER_FIND':
      o.varint(m.requestId)
      putList(o, 'usernames', m.usernames, putUsername)
      break
    case 'SEND_OK':
      putClientMsgId(o, m.clientMsgId)
      o.varint(m.msgId)
      o.varint(m.version)
      o.varint(m.sentAtMs)
      break
    case 'SEND_FAILED':
      putClientMsgId(o, m.clientMsgId)
      putCode(o, 'error code', ChatErrorWireCode, m.code)
      o.varint(m.retryAfterMs === undefined ? 0 : Math.ceil(m.retryAfterMs))
      break
    case 'PUSH':
      o.varint(m.latestVersion)
      break
    case 'SYNC_BATCH':
      o.varint(m.afterVersion)
      o.varint(m.latestVersion)
      putList(o, 'entries', m.entries, putEntry)
      break
    case 'PRESENCE':
      o.varint(m.userId)
      putBool(o, m.online)
      break
    case 'ERROR':
      o.varint(m.requestId)
      putCode(o, 'error code', ChatErrorWireCode, m.code)
      putString(o, 'error message', m.message, MAX_ERROR_MESSAGE_BYTES)
      break
    case 'CONTACTS':
      o.varint(m.requestId)
      putList(o, 'contacts', m.contacts, putContact)
      break
    case 'GROUP':
      o.varint(m.requestId)
      o.varint(m.groupId)
      putName(o, 'group name', m.name)
      putList(o, 'members', m.members, putUser)
      break
    case 'GROUPS':
      o.varint(m.requestId)
      putList(o, 'groups', m.groups, putGroupSummary)
      break
    case 'USERS':
      o.varint(m.requestId)
      putList(o, 'users', m.users, putUser)
      break
  }
  return o.finish()
}

const readErrorCode = (r: Reader): ChatErrorCode => readCode(r, 'error code', errorByWireCode)

/** The body of a message of type `type` (its type byte already read). */
const readBody = (r: Reader, type: ChatMessageTypeName): ChatMessage => {
  switch (type) {
    case 'SEND':
      return { type, clientMsgId: readClientMsgId(r), to: readPeer(r), body: readString(r, 'body', MAX_BODY_BYTES_ON_WIRE) }
    case 'SYNC':
      return { type, afterVersion: r.varint(), maxEntries: r.varint() }
    case 'FIN':
      return { type, version: r.varint() }
    case 'READ':
      return { type, msgIds: readList(r, 'msgIds', readVarint) }
    case 'CONTACT_ADD':
    case 'CONTACT_REMOVE':
      return { type, requestId: r.varint(), username: readUsername(r) }
    case 'CONTACT_LIST':
    case 'GROUP_LIST':
    case 'OK':
      return { type, requestId: r.varint() }
    case 'GROUP_CREATE':
      return { type, requestId: r.varint(), name: readName(r, 'group name'), usernames: readList(r, 'usernames', readUsername) }
    case 'GROUP_INVITE':
      return { type, requestId: r.varint(), groupId: r.varint(), username: readUsername(r) }
    case 'GROUP_LEAVE':
    case 'GROUP_MEMBERS':
      return { type, requestId: r.varint(), groupId: r.varint() }
    case 'GROUP_RENAME':
      return { type, requestId: r.varint(), groupId: r.varint(), name: readName(r, 'group name') }
    case 'USER_LOOKUP':
      return { type, requestId: r.varint(), userIds: readList(r, 'userIds', readVarint) }
    case 'USER_FIND':
      return { type, requestId: r.varint(), usernames: readList(r, 'usernames', readUsername) }
    case 'SEND_OK':
      return { type, clientMsgId: readClientMsgId(r), msgId: r.varint(), version: r.varint(), sentAtMs: r.varint() }
    case 'SEND_FAILED': {
      const clientMsgId = readClientMsgId(r)
      const code = readErrorCode(r)
      const retryAfterMs = r.varint()
      return retryAfterMs === 0 ? { type, clientMsgId, code } : { type, clientMsgId, code, retryAfterMs }
    }
    case 'PUSH':
      return { type, latestVersion: r.varint() }
    case 'SYNC_BATCH':
      return { type, afterVersion: r.varint(), latestVersion: r.varint(), entries: readList(r, 'entries', readEntry) }
    case 'PRESENCE':
      return { type, userId: r.varint(), online: readBool(r, 'online') }
    case 'ERROR':
      return { type, requestId: r.varint(), code: readErrorCode(r), message: readString(r, 'error message', MAX_ERROR_MESSAGE_BYTES) }
    case 'CONTACTS':
      return { type, requestId: r.varint(), contacts: readList(r, 'contacts', readContact) }
    case 'GROUP':
      return { type, requestId: r.varint(), groupId: r.varint(), name: readName(r, 'group name'), members: readList(r, 'members', readUser) }
    case 'GROUPS':
      return { type, requestId: r.varint(), groups: readList(r, 'groups', readGroupSummary) }
    case 'USERS':
      return { type, requestId: r.varint(), users: readList(r, 'users', readUser) }
  }
}

/**
 * Decode one whole message; throws DecodeError on truncation, trailing bytes, an unknown
 * type / error code / peer or entry kind, a boolean other than 0 or 1, invalid UTF-8 or a
 * field over its limit. Byte arrays in the result are copies, never views on `data`.
 */
export const decodeChatMessage = (data: Uint8Array): ChatMessage => {
  const r = new Reader(data)
  const byte = r.u8()
  const type = typeNameByByte.get(byte)
  if (type === undefined) throw new DecodeError(`unknown messaging message type 0x${byte.toString(16)}`)
  const m = readBody(r, type)
  if (r.remaining !== 0) throw new DecodeError(`${r.remaining} trailing bytes after ${m.type}`)
  return m
}
