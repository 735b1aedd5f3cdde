/**
 * MessagingService without a network: links that record what the server sends them.
 * Limits and errors (oversized, rate, unknown user/group, not a member, group full,
 * malformed input), presence, and request/reply.
 */
import t from 'tap'
import { encodeChatMessage } from '../../src/protocol/chat-codec.js'
import { FakeLink, id, settle, setup } from './service-helpers.js'

t.test('attach pushes the inbox head; SEND is stored, acknowledged and pushed to both inboxes', async (t) => {
  const { service, user, send } = await setup()
  const alice = await user('alice', 1)
  const bob = await user('bob', 2)
  service.attach(alice)
  service.attach(bob)
  await settle()
  t.same(alice.of('PUSH'), [{ type: 'PUSH', latestVersion: 0 }], 'PUSH of the empty inbox at login')
  send(alice, { type: 'SEND', clientMsgId: id(1), to: { kind: 'user', userId: bob.userId }, body: 'hi' })
  await settle()
  const ok = alice.of('SEND_OK')
  t.equal(ok.length, 1)
  t.equal(ok[0].version, 1, "the copy's version in alice's inbox")
  t.same(bob.of('PUSH').at(-1), { type: 'PUSH', latestVersion: 1 })
  send(bob, { type: 'SYNC', afterVersion: 0, maxEntries: 10 })
  await settle()
  const batch = bob.of('SYNC_BATCH')[0]
  t.equal(batch.entries.length, 1)
  t.match(batch.entries[0], { kind: 'message', body: 'hi', fromUserId: alice.userId, msgId: ok[0].msgId })

  // The same client id again: the same answer, nothing new stored.
  send(alice, { type: 'SEND', clientMsgId: id(1), to: { kind: 'user', userId: bob.userId }, body: 'hi' })
  await settle()
  t.equal(alice.of('SEND_OK').length, 2)
  t.same(alice.of('SEND_OK')[1], ok[0], 'duplicate answered with the first SEND_OK')
  t.equal(service.stats.duplicateSends, 1)

  // FIN gives alice a delivered receipt.
  send(bob, { type: 'FIN', version: 1 })
  await settle()
  send(alice, { type: 'SYNC', afterVersion: 1, maxEntries: 10 })
  await settle()
  t.match(alice.of('SYNC_BATCH').at(-1)!.entries, [{ kind: 'receipt', status: 'delivered', msgId: ok[0].msgId, byUserId: bob.userId }])
})

t.test('limits and errors get clear codes', async (t) => {
  const { service, user, send } = await setup({ maxBodyBytes: 10, sendRatePerSecond: 1, sendBurst: 2, maxGroupSize: 3 })
  const alice = await user('alice', 1)
  const bob = await user('bob', 2)
  const carol = await user('carol', 3)
  const dave = await user('dave', 4)
  for (const l of [alice, bob, carol, dave]) service.attach(l)
  await settle()
  const failed = (link: FakeLink) => link.of('SEND_FAILED').map((m) => m.code)

  send(alice, { type: 'SEND', clientMsgId: id(1), to: { kind: 'user', userId: bob.userId }, body: 'far too long for the limit' })
  send(alice, { type: 'SEND', clientMsgId: id(2), to: { kind: 'user', userId: 999 }, body: 'x' })
  send(alice, { type: 'SEND', clientMsgId: id(3), to: { kind: 'group', groupId: 77 }, body: 'x' })
  await settle()
  t.same(failed(alice), ['MESSAGE_TOO_LARGE', 'UNKNOWN_USER', 'UNKNOWN_GROUP'])

  // Burst of 2 was spent by the two checks that passed the size limit; the next is limited.
  send(alice, { type: 'SEND', clientMsgId: id(4), to: { kind: 'user', userId: bob.userId }, body: 'x' })
  await settle()
  const limited = alice.of('SEND_FAILED').at(-1)!
  t.equal(limited.code, 'RATE_LIMITED')
  t.ok(limited.retryAfterMs !== undefined && limited.retryAfterMs > 0, 'with a retry-after')

  send(alice, { type: 'GROUP_CREATE', requestId: 1, name: 'big', usernames: ['bob', 'carol', 'dave'] })
  send(alice, { type: 'GROUP_CREATE', requestId: 2, name: 'g', usernames: ['bob', 'nobody'] })
  send(alice, { type: 'GROUP_CREATE', requestId: 3, name: 'g', usernames: ['bob'] })
  await settle()
  t.match(alice.of('ERROR'), [{ requestId: 1, code: 'GROUP_FULL' }, { requestId: 2, code: 'UNKNOWN_USER' }])
  const group = alice.of('GROUP').find((g) => g.requestId === 3)!
  t.same(group.members.map((m) => m.username).sort(), ['alice', 'bob'])

  send(carol, { type: 'GROUP_MEMBERS', requestId: 4, groupId: group.groupId })
  send(carol, { type: 'SEND', clientMsgId: id(5), to: { kind: 'group', groupId: group.groupId }, body: 'x' })
  send(alice, { type: 'GROUP_INVITE', requestId: 5, groupId: group.groupId, username: 'bob' })
  await settle()
  t.match(carol.of('ERROR'), [{ requestId: 4, code: 'NOT_A_MEMBER' }])
  t.same(failed(carol), ['NOT_A_MEMBER'])
  t.match(alice.of('ERROR').at(-1), { requestId: 5, code: 'ALREADY_MEMBER' })

  send(alice, { type: 'USER_FIND', requestId: 8, usernames: ['carol', 'ghost'] })
  await settle()
  t.same(alice.of('USERS'), [{ type: 'USERS', requestId: 8, users: [{ userId: carol.userId, username: 'carol' }] }], 'USER_FIND leaves unknown names out')
  send(alice, { type: 'CONTACT_ADD', requestId: 6, username: 'alice' })
  send(alice, { type: 'CONTACT_ADD', requestId: 7, username: 'ghost' })
  await settle()
  t.match(alice.of('ERROR').slice(-2), [{ requestId: 6, code: 'INVALID_REQUEST' }, { requestId: 7, code: 'UNKNOWN_USER' }])
})

t.test('malformed input and server-only types are counted and dropped', async (t) => {
  const { service, user } = await setup()
  const alice = await user('alice', 1)
  service.attach(alice)
  await settle()
  const before = alice.got.length
  service.handle(alice, Uint8Array.of(0x10))
  service.handle(alice, Uint8Array.of(0x3f, 1, 2, 3))
  service.handle(alice, encodeChatMessage({ type: 'PUSH', latestVersion: 5 }))
  await settle()
  t.equal(service.stats.malformed, 3)
  t.equal(alice.got.length, before, 'no reply to garbage')
})

t.test('presence: contacts hear online and offline', async (t) => {
  const { service, user, send } = await setup()
  const alice = await user('alice', 1)
  const bob = await user('bob', 2)
  const bobTablet = new FakeLink(bob.userId, 3)
  service.attach(alice)
  service.attach(bob)
  await settle()
  send(alice, { type: 'CONTACT_ADD', requestId: 1, username: 'bob' })
  await settle()
  t.match(alice.of('PRESENCE'), [{ userId: bob.userId, online: true }], 'adding an online contact tells its presence')
  t.match(bob.of('PRESENCE'), [{ userId: alice.userId, online: true }])
  send(alice, { type: 'CONTACT_LIST', requestId: 2 })
  await settle()
  t.match(alice.of('CONTACTS')[0].contacts, [{ username: 'bob', online: true }])

  service.attach(bobTablet)
  service.detach(bob)
  await settle()
  t.equal(alice.of('PRESENCE').length, 1, 'still online through the tablet')
  service.detach(bobTablet)
  await settle()
  t.match(alice.of('PRESENCE').at(-1), { userId: bob.userId, online: false }, 'offline when the last device goes')
})

t.test('READ adds read receipts only for messages the reader received', async (t) => {
  const { service, user, send } = await setup()
  const alice = await user('alice', 1)
  const bob = await user('bob', 2)
  const eve = await user('eve', 3)
  for (const l of [alice, bob, eve]) service.attach(l)
  await settle()
  send(alice, { type: 'SEND', clientMsgId: id(9), to: { kind: 'user', userId: bob.userId }, body: 'secret' })
  await settle()
  const msgId = alice.of('SEND_OK')[0].msgId
  send(eve, { type: 'READ', msgIds: [msgId, 12345] })
  send(bob, { type: 'READ', msgIds: [msgId, msgId] })
  await settle()
  send(alice, { type: 'SYNC', afterVersion: 0, maxEntries: 10 })
  await settle()
  const receipts = alice.of('SYNC_BATCH')[0].entries.filter((e) => e.kind === 'receipt')
  t.match(receipts, [{ status: 'read', byUserId: bob.userId, msgId }], 'one read receipt, from bob only')
})
