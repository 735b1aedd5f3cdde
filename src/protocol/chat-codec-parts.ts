/**
 * Building blocks of the messaging codec (chat-codec.ts): a growable writer, strings,
 * fixed-size client message ids, booleans, one-byte enumerations, lists, peers and inbox
 * entries. Encoders throw RangeError on values the wire cannot carry (over a limit, an
 * unknown enumeration value); decoders throw DecodeError. Byte layouts are in
 * protocol-spec/messaging.md.
 */
import { DecodeError } from '../core/errors.js'
import type { Reader } from '../core/wire/reader.js'
import { Writer } from '../core/wire/writer.js'
import {
  CLIENT_MSG_ID_BYTES,
  MAX_BODY_BYTES_ON_WIRE,
  MAX_LIST_ITEMS,
  MAX_NAME_BYTES,
  ReceiptStatus,
  type GroupEventKind,
  type InboxEntry,
  type Peer,
} from './chat-types.js'

/** A Writer that grows: messages range from one byte to a SYNC_BATCH of many bodies. */
export class Out {
  private w = new Writer(64)

  private room(n: number): void {
    if (this.w.remaining >= n) return
    const grown = new Writer(Math.max(this.w.capacity * 2, this.w.length + n))
    grown.bytes(this.w.finish())
    this.w = grown
  }

  u8(v: number): void {
    this.room(1)
    this.w.u8(v)
  }

  /** QUIC varint; a negative, fractional or unsafe value throws UsageError (Writer). */
  varint(v: number): void {
    this.room(8)
    this.w.varint(v)
  }

  bytes(b: Uint8Array): void {
    this.room(b.length)
    this.w.bytes(b)
  }

  /** The message; a view on this writer's buffer, which is not reused. */
  finish(): Uint8Array {
    return this.w.finish()
  }
}

const utf8 = new TextEncoder()
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** A string: varint byte length then UTF-8. RangeError beyond `max` bytes. */
export const putString = (o: Out, what: string, s: string, max: number): void => {
  const bytes = utf8.encode(s)
  if (bytes.length > max) throw new RangeError(`${what} is ${bytes.length} bytes, more than ${max}`)
  o.varint(bytes.length)
  o.bytes(bytes)
}

export const readString = (r: Reader, what: string, max: number): string => {
  const n = r.varint()
  if (n > max) throw new DecodeError(`${what} of ${n} bytes exceeds ${max}`)
  try {
    return utf8Strict.decode(r.bytes(n))
  } catch {
    throw new DecodeError(`${what} is not valid UTF-8`)
  }
}

/** A client message id: exactly CLIENT_MSG_ID_BYTES raw bytes, no length prefix. */
export const putClientMsgId = (o: Out, id: Uint8Array): void => {
  if (id.length !== CLIENT_MSG_ID_BYTES) throw new RangeError(`clientMsgId is ${id.length} bytes, not ${CLIENT_MSG_ID_BYTES}`)
  o.bytes(id)
}

/** A copy: the caller may keep it beyond the datagram's lifetime. */
export const readClientMsgId = (r: Reader): Uint8Array => r.bytes(CLIENT_MSG_ID_BYTES).slice()

export const putBool = (o: Out, v: boolean): void => o.u8(v ? 1 : 0)

export const readBool = (r: Reader, what: string): boolean => {
  const b = r.u8()
  if (b > 1) throw new DecodeError(`${what} is 0x${b.toString(16)}, not a boolean (0 or 1)`)
  return b === 1
}

/** A one-byte enumeration: the wire value of `name`, RangeError if it has none. */
export const putCode = <K extends string>(o: Out, what: string, table: Record<K, number>, name: K): void => {
  const v = Object.hasOwn(table, name) ? table[name] : undefined
  if (v === undefined) throw new RangeError(`unknown ${what} ${String(name)}`)
  o.u8(v)
}

/** The reverse of a wire-code table, for decoding. */
export const byWireCode = <K extends string>(table: Record<K, number>): Map<number, K> =>
  new Map(Object.entries<number>(table).map(([k, v]) => [v, k as K]))

export const readCode = <K extends string>(r: Reader, what: string, names: Map<number, K>): K => {
  const b = r.u8()
  const name = names.get(b)
  if (name === undefined) throw new DecodeError(`unknown ${what} 0x${b.toString(16)}`)
  return name
}

/** A list: varint count (at most MAX_LIST_ITEMS) then the items. */
export const putList = <T>(o: Out, what: string, items: readonly T[], put: (o: Out, item: T) => void): void => {
  if (items.length > MAX_LIST_ITEMS) throw new RangeError(`${what} has ${items.length} items, more than ${MAX_LIST_ITEMS}`)
  o.varint(items.length)
  for (const item of items) put(o, item)
}

export const readList = <T>(r: Reader, what: string, read: (r: Reader) => T): T[] => {
  const n = r.varint()
  if (n > MAX_LIST_ITEMS) throw new DecodeError(`${what} of ${n} items exceeds ${MAX_LIST_ITEMS}`)
  // Every item takes at least one byte: refuse an impossible count before looping.
  if (n > r.remaining) throw new DecodeError(`truncated: ${what} of ${n} items in ${r.remaining} bytes`)
  const items: T[] = []
  for (let i = 0; i < n; i++) items.push(read(r))
  return items
}

export const putName = (o: Out, what: string, s: string): void => putString(o, what, s, MAX_NAME_BYTES)
export const readName = (r: Reader, what: string): string => readString(r, what, MAX_NAME_BYTES)

const PeerKind = { user: 1, group: 2 } as const

/** A peer: kind byte (1 user, 2 group) then the varint id. */
export const putPeer = (o: Out, p: Peer): void => {
  putCode(o, 'peer kind', PeerKind, p.kind)
  o.varint(p.kind === 'user' ? p.userId : p.groupId)
}

export const readPeer = (r: Reader): Peer => {
  const kind = r.u8()
  if (kind === PeerKind.user) return { kind: 'user', userId: r.varint() }
  if (kind === PeerKind.group) return { kind: 'group', groupId: r.varint() }
  throw new DecodeError(`unknown peer kind 0x${kind.toString(16)}`)
}

export const EntryKind = { message: 1, receipt: 2, group: 3 } as const satisfies Record<InboxEntry['kind'], number>
export const GroupEventWireCode = { created: 1, joined: 2, left: 3, renamed: 4 } as const satisfies Record<GroupEventKind, number>
const receiptByWire = byWireCode(ReceiptStatus)
const groupEventByWire = byWireCode(GroupEventWireCode)

/** An inbox entry: kind byte (1 message, 2 receipt, 3 group event) then its fields. */
export const putEntry = (o: Out, e: InboxEntry): void => {
  putCode(o, 'inbox entry kind', EntryKind, e.kind)
  o.varint(e.version)
  switch (e.kind) {
    case 'message':
      o.varint(e.msgId)
      o.varint(e.fromUserId)
      o.varint(e.fromDeviceId)
      putPeer(o, e.to)
      o.varint(e.sentAtMs)
      putClientMsgId(o, e.clientMsgId)
      putString(o, 'body', e.body, MAX_BODY_BYTES_ON_WIRE)
      return
    case 'receipt':
      o.varint(e.msgId)
      putCode(o, 'receipt status', ReceiptStatus, e.status)
      o.varint(e.byUserId)
      o.varint(e.atMs)
      return
    case 'group':
      o.varint(e.groupId)
      putCode(o, 'group event', GroupEventWireCode, e.event)
      o.varint(e.actorUserId)
      o.varint(e.subjectUserId)
      putName(o, 'group name', e.name)
      o.varint(e.atMs)
      return
  }
}

export const readEntry = (r: Reader): InboxEntry => {
  const kind = r.u8()
  switch (kind) {
    case EntryKind.message:
      return {
        kind: 'message',
        version: r.varint(),
        msgId: r.varint(),
        fromUserId: r.varint(),
        fromDeviceId: r.varint(),
        to: readPeer(r),
        sentAtMs: r.varint(),
        clientMsgId: readClientMsgId(r),
        body: readString(r, 'body', MAX_BODY_BYTES_ON_WIRE),
      }
    case EntryKind.receipt:
      return {
        kind: 'receipt',
        version: r.varint(),
        msgId: r.varint(),
        status: readCode(r, 'receipt status', receiptByWire),
        byUserId: r.varint(),
        atMs: r.varint(),
      }
    case EntryKind.group:
      return {
        kind: 'group',
        version: r.varint(),
        groupId: r.varint(),
        event: readCode(r, 'group event', groupEventByWire),
        actorUserId: r.varint(),
        subjectUserId: r.varint(),
        name: readName(r, 'group name'),
        atMs: r.varint(),
      }
    default:
      throw new DecodeError(`unknown inbox entry kind 0x${kind.toString(16)}`)
  }
}
