import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import t from 'tap'
import { DecodeError } from '../../src/core/errors.js'
import {
  CHAT_TYPE_MAX,
  CHAT_TYPE_MIN,
  ChatErrorWireCode,
  ChatMessageType,
  decodeChatMessage,
  encodeChatMessage,
  isChatMessage,
} from '../../src/protocol/chat-codec.js'
import {
  CLIENT_MSG_ID_BYTES,
  MAX_BODY_BYTES_ON_WIRE,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_LIST_ITEMS,
  MAX_NAME_BYTES,
  type ChatErrorCode,
  type ChatMessage,
  type GroupEventKind,
  type InboxEntry,
  type Peer,
} from '../../src/protocol/chat-types.js'
import { fcSeed } from '../wire/helpers.js'

fc.configureGlobal({ seed: fcSeed() }) // reproducible; PIGEON_FC_SEED explores

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')
const unhex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'))
const ID = '00112233445566778899aabbccddeeff'
const id = unhex(ID)
const T = Date.UTC(2026, 0, 1)
const bob: Peer = { kind: 'user', userId: 42 }

const VECTORS: Record<string, ChatMessage> = {
  send: { type: 'SEND', clientMsgId: id, to: bob, body: 'hi' },
  'send-group': { type: 'SEND', clientMsgId: id, to: { kind: 'group', groupId: 7 }, body: 'h\u00e9llo' },
  sync: { type: 'SYNC', afterVersion: 100, maxEntries: 50 },
  fin: { type: 'FIN', version: 152 },
  read: { type: 'READ', msgIds: [1000, 1001] },
  'contact-add': { type: 'CONTACT_ADD', requestId: 1, username: 'bob' },
  'contact-remove': { type: 'CONTACT_REMOVE', requestId: 2, username: 'bob' },
  'contact-list': { type: 'CONTACT_LIST', requestId: 3 },
  'group-create': { type: 'GROUP_CREATE', requestId: 4, name: 'friends', usernames: ['bob', 'carol'] },
  'group-invite': { type: 'GROUP_INVITE', requestId: 5, groupId: 7, username: 'dave' },
  'group-leave': { type: 'GROUP_LEAVE', requestId: 6, groupId: 7 },
  'group-members': { type: 'GROUP_MEMBERS', requestId: 7, groupId: 7 },
  'group-rename': { type: 'GROUP_RENAME', requestId: 8, groupId: 7, name: 'pals' },
  'group-list': { type: 'GROUP_LIST', requestId: 9 },
  'user-lookup': { type: 'USER_LOOKUP', requestId: 10, userIds: [42, 300] },
  'user-find': { type: 'USER_FIND', requestId: 11, usernames: ['bob', 'erin'] },
  'send-ok': { type: 'SEND_OK', clientMsgId: id, msgId: 1000, version: 151, sentAtMs: T },
  'send-failed': { type: 'SEND_FAILED', clientMsgId: id, code: 'MESSAGE_TOO_LARGE' },
  'send-failed-rate': { type: 'SEND_FAILED', clientMsgId: id, code: 'RATE_LIMITED', retryAfterMs: 1500 },
  push: { type: 'PUSH', latestVersion: 152 },
  'sync-batch-empty': { type: 'SYNC_BATCH', afterVersion: 152, latestVersion: 152, entries: [] },
  'sync-batch-message': {
    type: 'SYNC_BATCH',
    afterVersion: 150,
    latestVersion: 152,
    entries: [{ kind: 'message', version: 151, msgId: 1000, fromUserId: 1, fromDeviceId: 3, to: bob, sentAtMs: T, clientMsgId: id, body: 'hi' }],
  },
  'sync-batch-receipt': {
    type: 'SYNC_BATCH',
    afterVersion: 151,
    latestVersion: 153,
    entries: [
      { kind: 'receipt', version: 152, msgId: 1000, status: 'delivered', byUserId: 42, atMs: T + 1000 },
      { kind: 'receipt', version: 153, msgId: 1000, status: 'read', byUserId: 42, atMs: T + 5000 },
    ],
  },
  'sync-batch-group': {
    type: 'SYNC_BATCH',
    afterVersion: 10,
    latestVersion: 11,
    entries: [{ kind: 'group', version: 11, groupId: 7, event: 'joined', actorUserId: 1, subjectUserId: 44, name: 'friends', atMs: T }],
  },
  presence: { type: 'PRESENCE', userId: 42, online: true },
  ok: { type: 'OK', requestId: 1 },
  error: { type: 'ERROR', requestId: 2, code: 'UNKNOWN_USER', message: 'no such user' },
  contacts: {
    type: 'CONTACTS',
    requestId: 3,
    contacts: [
      { userId: 42, username: 'bob', online: true },
      { userId: 43, username: 'carol', online: false },
    ],
  },
  group: {
    type: 'GROUP',
    requestId: 7,
    groupId: 7,
    name: 'friends',
    members: [
      { userId: 1, username: 'alice' },
      { userId: 42, username: 'bob' },
    ],
  },
  groups: { type: 'GROUPS', requestId: 9, groups: [{ groupId: 7, name: 'friends', memberCount: 3 }] },
  users: {
    type: 'USERS',
    requestId: 10,
    users: [
      { userId: 42, username: 'bob' },
      { userId: 300, username: 'erin' },
    ],
  },
}

const doc = readFileSync(new URL('../../protocol-spec/messaging.md', import.meta.url), 'utf8')

t.test('protocol-spec/messaging.md vectors match the encoder and decoder', async (t) => {
  const found = new Map<string, string>()
  for (const m of doc.matchAll(/^ {4}vector ([a-z-]+): ([0-9a-f]+)$/gm)) {
    t.notOk(found.has(m[1]), `vector ${m[1]} documented once`)
    found.set(m[1], m[2])
  }
  t.same([...found.keys()].sort(), Object.keys(VECTORS).sort(), 'every vector documented, none extra')
  for (const [name, message] of Object.entries(VECTORS)) {
    const wire = found.get(name) ?? ''
    t.equal(hex(encodeChatMessage(message)), wire, `encode ${name}`)
    t.same(decodeChatMessage(unhex(wire)), message, `decode ${name}`)
  }
})

t.test('the vectors cover every message type, entry kind, peer kind and receipt status', async (t) => {
  const all = Object.values(VECTORS)
  t.same([...new Set(all.map((m) => m.type))].sort(), Object.keys(ChatMessageType).sort(), 'message types')
  const entries = all.flatMap((m) => (m.type === 'SYNC_BATCH' ? m.entries : []))
  t.same([...new Set(entries.map((e) => e.kind))].sort(), ['group', 'message', 'receipt'], 'entry kinds')
  t.same([...new Set(entries.flatMap((e) => (e.kind === 'receipt' ? [e.status] : [])))].sort(), ['delivered', 'read'], 'receipt statuses')
  t.same([...new Set(all.flatMap((m) => (m.type === 'SEND' ? [m.to.kind] : [])))].sort(), ['group', 'user'], 'peer kinds')
})

t.test('the spec documents every type byte and error code', async (t) => {
  for (const [name, byte] of Object.entries(ChatMessageType)) {
    t.ok(byte >= CHAT_TYPE_MIN && byte <= CHAT_TYPE_MAX, `${name} in range`)
    t.ok(doc.includes(`\`${byte.toString(16)}\` ${name}`), `type ${name} in the type table`)
    t.ok(doc.includes(`**${name}** (\`${byte.toString(16)}\`)`), `type ${name} has a layout table`)
  }
  t.equal(new Set(Object.values(ChatMessageType)).size, Object.keys(ChatMessageType).length, 'type bytes distinct')
  t.equal(new Set(Object.values(ChatErrorWireCode)).size, Object.keys(ChatErrorWireCode).length, 'error codes distinct')
  for (const [name, code] of Object.entries(ChatErrorWireCode)) {
    t.match(doc, new RegExp(`\\| \`${code.toString(16).padStart(2, '0')}\` \\| ${name} \\|`), `error code ${name} documented`)
  }
})

// ---- arbitraries ----

const str = (maxBytes: number, maxLength = Math.floor(maxBytes / 4)) =>
  fc.string({ unit: 'grapheme', maxLength }).filter((s) => Buffer.byteLength(s) <= maxBytes)
const name = str(MAX_NAME_BYTES)
const body = str(MAX_BODY_BYTES_ON_WIRE, 200)
const n = fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: 2 ** 32 }), fc.maxSafeNat())
const list = <T>(a: fc.Arbitrary<T>) => fc.array(a, { maxLength: 5 })
const clientMsgId = fc.uint8Array({ minLength: CLIENT_MSG_ID_BYTES, maxLength: CLIENT_MSG_ID_BYTES })
const errorCode = fc.constantFrom(...(Object.keys(ChatErrorWireCode) as ChatErrorCode[]))
const peer: fc.Arbitrary<Peer> = fc.oneof(
  fc.record({ kind: fc.constant('user' as const), userId: n }),
  fc.record({ kind: fc.constant('group' as const), groupId: n }),
)
const entry: fc.Arbitrary<InboxEntry> = fc.oneof(
  fc.record({
    kind: fc.constant('message' as const),
    version: n,
    msgId: n,
    fromUserId: n,
    fromDeviceId: n,
    to: peer,
    sentAtMs: n,
    clientMsgId,
    body,
  }),
  fc.record({ kind: fc.constant('receipt' as const), version: n, msgId: n, status: fc.constantFrom('delivered' as const, 'read' as const), byUserId: n, atMs: n }),
  fc.record({
    kind: fc.constant('group' as const),
    version: n,
    groupId: n,
    event: fc.constantFrom<GroupEventKind>('created', 'joined', 'left', 'renamed'),
    actorUserId: n,
    subjectUserId: n,
    name,
    atMs: n,
  }),
)
const user = fc.record({ userId: n, username: name })
const type = <K extends ChatMessage['type']>(k: K) => fc.constant(k)

const message: fc.Arbitrary<ChatMessage> = fc.oneof(
  fc.record({ type: type('SEND'), clientMsgId, to: peer, body }),
  fc.record({ type: type('SYNC'), afterVersion: n, maxEntries: n }),
  fc.record({ type: type('FIN'), version: n }),
  fc.record({ type: type('READ'), msgIds: list(n) }),
  fc.record({ type: fc.constantFrom('CONTACT_ADD' as const, 'CONTACT_REMOVE' as const), requestId: n, username: name }),
  fc.record({ type: fc.constantFrom('CONTACT_LIST' as const, 'GROUP_LIST' as const, 'OK' as const), requestId: n }),
  fc.record({ type: type('GROUP_CREATE'), requestId: n, name, usernames: list(name) }),
  fc.record({ type: type('GROUP_INVITE'), requestId: n, groupId: n, username: name }),
  fc.record({ type: fc.constantFrom('GROUP_LEAVE' as const, 'GROUP_MEMBERS' as const), requestId: n, groupId: n }),
  fc.record({ type: type('GROUP_RENAME'), requestId: n, groupId: n, name }),
  fc.record({ type: type('USER_LOOKUP'), requestId: n, userIds: list(n) }),
  fc.record({ type: type('USER_FIND'), requestId: n, usernames: list(name) }),
  fc.record({ type: type('SEND_OK'), clientMsgId, msgId: n, version: n, sentAtMs: n }),
  fc.record({ type: type('SEND_FAILED'), clientMsgId, code: errorCode }),
  fc.record({ type: type('SEND_FAILED'), clientMsgId, code: errorCode, retryAfterMs: fc.integer({ min: 1, max: 2 ** 40 }) }),
  fc.record({ type: type('PUSH'), latestVersion: n }),
  fc.record({ type: type('SYNC_BATCH'), afterVersion: n, latestVersion: n, entries: list(entry) }),
  fc.record({ type: type('PRESENCE'), userId: n, online: fc.boolean() }),
  fc.record({ type: type('ERROR'), requestId: n, code: errorCode, message: str(MAX_ERROR_MESSAGE_BYTES) }),
  fc.record({ type: type('CONTACTS'), requestId: n, contacts: list(fc.record({ userId: n, username: name, online: fc.boolean() })) }),
  fc.record({ type: type('GROUP'), requestId: n, groupId: n, name, members: list(user) }),
  fc.record({ type: type('GROUPS'), requestId: n, groups: list(fc.record({ groupId: n, name, memberCount: n })) }),
  fc.record({ type: type('USERS'), requestId: n, users: list(user) }),
)

// ---- properties ----

/** Key-order- and prototype-insensitive form (fast-check records have null prototypes); keeps undefined keys visible. */
const canon = (v: unknown): unknown => {
  if (v instanceof Uint8Array) return `bytes:${hex(v)}`
  if (Array.isArray(v)) return v.map(canon)
  if (v === undefined) return '<undefined>'
  if (v === null || typeof v !== 'object') return v
  return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canon((v as Record<string, unknown>)[k])]))
}
const sameMessage = (a: unknown, b: unknown): boolean => JSON.stringify(canon(a)) === JSON.stringify(canon(b))

t.test('round trip (property)', async (t) => {
  const seen = new Set<string>()
  fc.assert(
    fc.property(message, (m) => {
      seen.add(m.type)
      const wire = encodeChatMessage(m)
      return isChatMessage(wire) && wire[0] === ChatMessageType[m.type] && sameMessage(decodeChatMessage(wire), m)
    }),
    { numRuns: 2000 },
  )
  t.equal(seen.size, Object.keys(ChatMessageType).length, 'the arbitrary produced every message type')
})

const throwsDecodeError = (data: Uint8Array): boolean => {
  try {
    decodeChatMessage(data)
    return false
  } catch (err) {
    if (!(err instanceof DecodeError)) throw err
    return true
  }
}

t.test('every proper prefix fails to decode with DecodeError; so do trailing bytes', async (t) => {
  fc.assert(
    fc.property(message, fc.integer({ min: 0, max: 255 }), (m, extra) => {
      const wire = encodeChatMessage(m)
      for (let len = 0; len < wire.length; len++) if (!throwsDecodeError(wire.subarray(0, len))) return false
      const longer = new Uint8Array(wire.length + 1)
      longer.set(wire)
      longer[wire.length] = extra
      return throwsDecodeError(longer)
    }),
    { numRuns: 500 },
  )
  t.pass()
})

t.test('malformed inputs throw DecodeError', async (t) => {
  // [hex, what the DecodeError must say]
  const bad: Record<string, [string, RegExp]> = {
    empty: ['', /truncated/],
    'type 0': ['00', /unknown messaging message type/],
    'login family type': ['01', /unknown messaging message type/],
    'reserved type 0x14': ['14', /unknown messaging message type/],
    'reserved type 0x2b': ['2b', /unknown messaging message type/],
    'reserved type 0x35': ['35', /unknown messaging message type/],
    'reserved type 0x3e': ['3e', /unknown messaging message type/],
    'type above the family': ['40', /unknown messaging message type/],
    'unknown SEND_FAILED code 0x00': [`31${ID}0000`, /unknown error code/],
    'unknown SEND_FAILED code 0xff': [`31${ID}ff00`, /unknown error code/],
    'unknown ERROR code': ['3901' + '0b' + '00', /unknown error code/],
    'peer kind 0': [`10${ID}002a026869`, /unknown peer kind/],
    'peer kind 3': [`10${ID}032a026869`, /unknown peer kind/],
    'PRESENCE online 2': ['342a02', /not a boolean/],
    'PRESENCE online ff': ['342aff', /not a boolean/],
    'CONTACTS online 2': ['3a03012a03626f6202', /not a boolean/],
    'entry kind 0': ['3300000100', /unknown inbox entry kind/],
    'entry kind 4': ['33000001040100', /unknown inbox entry kind/],
    'receipt status 0': ['330000010201' + '01' + '00' + '2a00', /unknown receipt status/],
    'receipt status 3': ['330000010201' + '01' + '03' + '2a00', /unknown receipt status/],
    'group event 0': ['3300000103010700' + '0101' + '00' + '00', /unknown group event/],
    'group event 5': ['3300000103010705' + '0101' + '00' + '00', /unknown group event/],
    'invalid UTF-8 username': ['200101ff', /not valid UTF-8/],
    'overlong UTF-8 username': ['200102c0af', /not valid UTF-8/],
    'UTF-16 surrogate in body': [`10${ID}012a03eda080`, /not valid UTF-8/],
    'invalid UTF-8 in error message': ['3901040180', /not valid UTF-8/],
    'invalid UTF-8 in entry body': ['33000001' + '010101010101' + '2a' + '00' + ID + '01fe', /not valid UTF-8/],
    'username over 64 bytes (declared 65)': ['20014041' + '61'.repeat(65), /bytes exceeds/],
    'body over 65536 bytes (declared 65537)': [`10${ID}012a80010001`, /bytes exceeds/],
    'error message over 256 bytes (declared 257)': ['390204' + '4101' + '61'.repeat(257), /bytes exceeds/],
    'list over 10000 items': ['136711', /exceeds 10000/],
    'list count larger than the bytes left': ['1305010203', /truncated/],
    'varint above 2^53-1': ['32ffffffffffffffff', /exceeds 2\^53-1/],
    'clientMsgId short': ['10001122', /truncated/],
  }
  for (const [what, [h, reason]] of Object.entries(bad)) t.throws(() => decodeChatMessage(unhex(h)), { name: 'DecodeError', message: reason }, what)
  // The same bytes with the bad field fixed decode, so the cases above fail for the stated reason.
  t.same(decodeChatMessage(unhex('342a00')), { type: 'PRESENCE', userId: 42, online: false })
  t.same(decodeChatMessage(unhex('330000010201' + '01' + '01' + '2a00')), {
    type: 'SYNC_BATCH',
    afterVersion: 0,
    latestVersion: 0,
    entries: [{ kind: 'receipt', version: 1, msgId: 1, status: 'delivered', byUserId: 42, atMs: 0 }],
  })
  t.same(decodeChatMessage(unhex('33000001030107010101' + '00' + '00')).type, 'SYNC_BATCH')
  t.same(decodeChatMessage(unhex('33000001' + '010101010101' + '2a' + '00' + ID + '0161')).type, 'SYNC_BATCH')
  t.same(decodeChatMessage(unhex(`31${ID}0a00`)), { type: 'SEND_FAILED', clientMsgId: id, code: 'INTERNAL_ERROR' })
  t.same(decodeChatMessage(unhex('3905040161')), { type: 'ERROR', requestId: 5, code: 'UNKNOWN_USER', message: 'a' })
})

t.test('garbage never throws anything but DecodeError (fuzz)', async (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (data) => {
      try {
        decodeChatMessage(data)
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err
      }
    }),
    { numRuns: 5000 },
  )
  // Random bytes rarely get past the type byte: also fuzz bodies behind every valid type.
  const typeByte = fc.constantFrom(...Object.values(ChatMessageType))
  fc.assert(
    fc.property(typeByte, fc.uint8Array({ maxLength: 120 }), (type, rest) => {
      const data = new Uint8Array(rest.length + 1)
      data[0] = type
      data.set(rest, 1)
      try {
        decodeChatMessage(data)
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err
      }
    }),
    { numRuns: 5000 },
  )
  t.pass()
})

t.test('decoded byte arrays are copies, not views on the datagram', async (t) => {
  for (const name of ['send', 'send-ok', 'send-failed', 'sync-batch-message']) {
    const wire = encodeChatMessage(VECTORS[name])
    const m = decodeChatMessage(wire)
    wire.fill(0)
    t.same(m, VECTORS[name], name)
    const ids = m.type === 'SYNC_BATCH' ? m.entries.flatMap((e) => (e.kind === 'message' ? [e.clientMsgId] : [])) : 'clientMsgId' in m ? [m.clientMsgId] : []
    for (const b of ids) t.not(b.buffer, wire.buffer, `${name}: own buffer`)
  }
})

t.test('limits: encode throws RangeError beyond them, and accepts them exactly', async (t) => {
  const send = (b: string): ChatMessage => ({ type: 'SEND', clientMsgId: id, to: bob, body: b })
  const atMax = encodeChatMessage(send('x'.repeat(MAX_BODY_BYTES_ON_WIRE)))
  t.equal(atMax.length, 1 + 16 + 2 + 4 + MAX_BODY_BYTES_ON_WIRE)
  t.same(decodeChatMessage(atMax), send('x'.repeat(MAX_BODY_BYTES_ON_WIRE)), 'largest body round-trips')
  t.throws(() => encodeChatMessage(send('x'.repeat(MAX_BODY_BYTES_ON_WIRE + 1))), RangeError, 'body too large')
  t.throws(() => encodeChatMessage(send('\u00e9'.repeat(MAX_BODY_BYTES_ON_WIRE / 2 + 1))), RangeError, 'body limit counts UTF-8 bytes')
  t.throws(() => encodeChatMessage({ type: 'SEND', clientMsgId: id.subarray(0, 15), to: bob, body: '' }), RangeError, 'clientMsgId 15 bytes')
  t.throws(() => encodeChatMessage({ type: 'SEND_OK', clientMsgId: new Uint8Array(17), msgId: 1, version: 1, sentAtMs: 1 }), RangeError, 'clientMsgId 17 bytes')
  t.throws(() => encodeChatMessage({ type: 'SEND_FAILED', clientMsgId: new Uint8Array(0), code: 'RATE_LIMITED' }), RangeError, 'clientMsgId empty')
  const long = 'x'.repeat(MAX_NAME_BYTES + 1)
  t.throws(() => encodeChatMessage({ type: 'CONTACT_ADD', requestId: 1, username: long }), RangeError, 'username')
  t.throws(() => encodeChatMessage({ type: 'GROUP_CREATE', requestId: 1, name: long, usernames: [] }), RangeError, 'group name')
  t.throws(() => encodeChatMessage({ type: 'GROUP_CREATE', requestId: 1, name: 'g', usernames: ['a', long] }), RangeError, 'username in a list')
  t.throws(() => encodeChatMessage({ type: 'GROUP_RENAME', requestId: 1, groupId: 1, name: long }), RangeError, 'new name')
  t.throws(() => encodeChatMessage({ type: 'USERS', requestId: 1, users: [{ userId: 1, username: long }] }), RangeError, 'user summary')
  t.throws(() => encodeChatMessage({ type: 'ERROR', requestId: 1, code: 'INTERNAL_ERROR', message: 'x'.repeat(MAX_ERROR_MESSAGE_BYTES + 1) }), RangeError, 'error message')
  const ids = Array.from({ length: MAX_LIST_ITEMS }, (_, i) => i)
  t.same(decodeChatMessage(encodeChatMessage({ type: 'READ', msgIds: ids })), { type: 'READ', msgIds: ids }, 'longest list round-trips')
  t.throws(() => encodeChatMessage({ type: 'READ', msgIds: [...ids, 1] }), RangeError, 'list too long')
  t.throws(() => encodeChatMessage({ type: 'USER_LOOKUP', requestId: 1, userIds: [...ids, 1] }), RangeError, 'user ids too long')
  const entry = { kind: 'group', version: 1, groupId: 1, event: 'renamed', actorUserId: 1, subjectUserId: 1, name: long, atMs: 0 } as const
  t.throws(() => encodeChatMessage({ type: 'SYNC_BATCH', afterVersion: 0, latestVersion: 1, entries: [entry] }), RangeError, 'name in an entry')
  // Values outside the TypeScript types (e.g. from untyped callers) are refused too.
  const bogus = (m: object) => () => encodeChatMessage(m as ChatMessage)
  t.throws(bogus({ type: 'SEND', clientMsgId: id, to: { kind: 'room', roomId: 1 }, body: '' }), RangeError, 'unknown peer kind')
  t.throws(bogus({ type: 'ERROR', requestId: 1, code: 'NOPE', message: '' }), RangeError, 'unknown error code')
  t.throws(bogus({ type: 'NOPE' }), RangeError, 'unknown type')
  t.throws(bogus({ type: 'SYNC_BATCH', afterVersion: 0, latestVersion: 1, entries: [{ ...entry, name: 'g', event: 'exploded' }] }), RangeError, 'unknown group event')
  t.throws(bogus({ type: 'SYNC_BATCH', afterVersion: 0, latestVersion: 1, entries: [{ kind: 'note', version: 1 }] }), RangeError, 'unknown entry kind')
})

t.test('SEND_FAILED retryAfterMs: 0 is absent, fractions round up', async (t) => {
  const base = { type: 'SEND_FAILED', clientMsgId: id, code: 'RATE_LIMITED' } as const
  t.same(decodeChatMessage(encodeChatMessage({ ...base, retryAfterMs: 0 })), base)
  t.same(decodeChatMessage(encodeChatMessage({ ...base, retryAfterMs: 0.2 })), { ...base, retryAfterMs: 1 })
  t.notOk('retryAfterMs' in decodeChatMessage(encodeChatMessage(base)), 'no undefined key')
})

t.test('isChatMessage', async (t) => {
  t.equal(isChatMessage(new Uint8Array(0)), false)
  t.equal(isChatMessage(unhex('0f')), false, 'login family')
  t.equal(isChatMessage(unhex('10')), true)
  t.equal(isChatMessage(unhex('3f')), true, 'reserved but in range')
  t.equal(isChatMessage(unhex('40')), false)
})
