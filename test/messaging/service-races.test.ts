/**
 * MessagingService edge cases a review found: an empty body, presence when a device comes
 * and goes at once, two invites into the last place of a group, a retried SEND whose id
 * left the de-duplication cache, a sync larger than the device's session takes, and a group
 * change whose write fails.
 */
import t from 'tap'
import { MessageStoreError } from '../../src/store/message-store.js'
import { FakeLink, id, settle, setup } from './service-helpers.js'

/** alice and bob online; alice created group "g" with bob. */
const aliceAndBobInGroup = async ({ service, user, send }: Pick<Awaited<ReturnType<typeof setup>>, 'service' | 'user' | 'send'>) => {
  const alice = await user('alice', 1)
  const bob = await user('bob', 2)
  service.attach(alice)
  service.attach(bob)
  await settle()
  send(alice, { type: 'GROUP_CREATE', requestId: 1, name: 'g', usernames: ['bob'] })
  await settle()
  return { alice, bob, groupId: alice.of('GROUP')[0].groupId }
}

t.test('an empty body is refused with INVALID_REQUEST and nothing is stored', async (t) => {
  const { service, store, user, send } = await setup()
  const alice = await user('alice', 1)
  const bob = await user('bob', 2)
  service.attach(alice)
  service.attach(bob)
  await settle()
  send(alice, { type: 'SEND', clientMsgId: id(1), to: { kind: 'user', userId: bob.userId }, body: '' })
  await settle()
  t.match(alice.of('SEND_FAILED'), [{ code: 'INVALID_REQUEST' }])
  t.same(alice.of('SEND_OK'), [])
  t.equal(await store.inboxHead(bob.userId), 0)
})

t.test('presence: a device that logs in and out at once leaves its contacts seeing it offline', async (t) => {
  const { service, user, send } = await setup()
  const alice = await user('alice', 1)
  const bob = await user('bob', 2)
  service.attach(bob)
  await settle()
  send(bob, { type: 'CONTACT_ADD', requestId: 1, username: 'alice' })
  await settle()
  service.attach(alice)
  service.detach(alice)
  await settle()
  const seen = bob.of('PRESENCE').filter((p) => p.userId === alice.userId)
  t.ok(seen.length === 0 || seen.at(-1)!.online === false, `bob's last word on alice is offline (${JSON.stringify(seen)})`)

  // And back: out then in at once ends online.
  service.attach(alice)
  await settle()
  const again = new FakeLink(alice.userId, alice.deviceId)
  service.detach(alice)
  service.attach(again)
  await settle()
  t.match(bob.of('PRESENCE').filter((p) => p.userId === alice.userId).at(-1), { online: true }, 'online after out-and-in')
})

t.test('two invites into the last place of a group: one gets GROUP_FULL', async (t) => {
  const { service, store, user, send } = await setup({ maxGroupSize: 3 })
  const { alice, bob, groupId } = await aliceAndBobInGroup({ service, user, send })
  await user('carol', 3)
  await user('dave', 4)
  // Different sessions, so different in-order queues: the requests interleave.
  send(alice, { type: 'GROUP_INVITE', requestId: 2, groupId, username: 'carol' })
  send(bob, { type: 'GROUP_INVITE', requestId: 3, groupId, username: 'dave' })
  await settle()
  t.equal((await store.listGroupMembers(groupId)).length, 3, 'the group holds its limit, not more')
  const answers = [...alice.got, ...bob.got].filter((m) => (m.type === 'OK' || m.type === 'ERROR') && m.requestId >= 2)
  t.same(answers.map((m) => (m.type === 'ERROR' ? m.code : 'OK')).sort(), ['GROUP_FULL', 'OK'])
})

t.test('a retried SEND whose id left the cache gets its first SEND_OK, even after leaving the group', async (t) => {
  const { service, store, user, send } = await setup({ dedupeCacheEntries: 1 })
  const { alice, bob, groupId } = await aliceAndBobInGroup({ service, user, send })
  send(alice, { type: 'SEND', clientMsgId: id(1), to: { kind: 'group', groupId }, body: 'hello' })
  send(alice, { type: 'SEND', clientMsgId: id(2), to: { kind: 'user', userId: bob.userId }, body: 'evicts the first id' })
  await settle()
  const first = alice.of('SEND_OK')[0]
  send(alice, { type: 'GROUP_LEAVE', requestId: 2, groupId })
  await settle()
  const bobHead = await store.inboxHead(bob.userId)
  send(alice, { type: 'SEND', clientMsgId: id(1), to: { kind: 'group', groupId }, body: 'hello' })
  await settle()
  t.same(alice.of('SEND_FAILED'), [], 'not NOT_A_MEMBER: the message was stored before')
  t.same(alice.of('SEND_OK').at(-1), first, 'the first SEND_OK again')
  t.equal(await store.inboxHead(bob.userId), bobHead, 'nothing stored twice')
  t.equal(service.stats.duplicateSends, 1)

  // A retry of a message never stored still gets the check's error.
  send(alice, { type: 'SEND', clientMsgId: id(3), to: { kind: 'group', groupId }, body: 'new' })
  await settle()
  t.match(alice.of('SEND_FAILED'), [{ code: 'NOT_A_MEMBER' }])
})

t.test("SYNC_BATCH stays within the device's maxMessageBytes; an entry too large alone is passed over", async (t) => {
  const { service, user, send } = await setup()
  const alice = await user('alice', 1)
  const bob = await user('bob', 2)
  bob.maxMessageBytes = 10_000
  service.attach(alice)
  service.attach(bob)
  await settle()
  for (let i = 1; i <= 8; i++) send(alice, { type: 'SEND', clientMsgId: id(i), to: { kind: 'user', userId: bob.userId }, body: String(i).repeat(3000) })
  await settle()
  // Bob syncs the way a device does: from the last version it holds, until it holds the head.
  let holds = 0
  const received: string[] = []
  for (let round = 0; round < 20 && holds < 8; round++) {
    send(bob, { type: 'SYNC', afterVersion: holds, maxEntries: 100 })
    await settle()
    const batch = bob.of('SYNC_BATCH').at(-1)!
    t.ok(batch.entries.length >= 1, `round ${round}: progress`)
    for (const e of batch.entries) if (e.kind === 'message') received.push(e.body[0])
    holds = batch.entries.at(-1)!.version
  }
  t.same(received, ['1', '2', '3', '4', '5', '6', '7', '8'], 'every message, in order, three per batch')
  t.ok(bob.of('SYNC_BATCH').length >= 3)

  // A device that cannot take a 3,000-byte body at all: passed over, counted, not stuck.
  const carol = await user('carol', 3)
  carol.maxMessageBytes = 1_000
  service.attach(carol)
  await settle()
  send(alice, { type: 'SEND', clientMsgId: id(20), to: { kind: 'user', userId: carol.userId }, body: 'x'.repeat(3000) })
  send(alice, { type: 'SEND', clientMsgId: id(21), to: { kind: 'user', userId: carol.userId }, body: 'y'.repeat(3000) })
  await settle()
  send(carol, { type: 'SYNC', afterVersion: 0, maxEntries: 1 })
  await settle()
  const empty = carol.of('SYNC_BATCH')[0]
  t.same(empty.entries, [])
  t.equal(empty.latestVersion, 1, 'moves the device past the entry it cannot take')
  t.match(carol.of('PUSH').at(-1), { latestVersion: 2 }, 'and tells it the head, so it syncs on')
  send(alice, { type: 'SEND', clientMsgId: id(22), to: { kind: 'user', userId: carol.userId }, body: 'fits' })
  await settle()
  send(carol, { type: 'SYNC', afterVersion: 1, maxEntries: 10 })
  await settle()
  const rest = carol.of('SYNC_BATCH')[1]
  t.match(rest.entries, [{ version: 3, body: 'fits' }], 'the next fitting entry, the too-large one passed over')
  t.equal(service.stats.entriesTooLargeForDevice, 2)
})

t.test('requests are rate limited per user; a reply too large to send becomes an ERROR', async (t) => {
  const { service, user, send } = await setup({ requestRatePerSecond: 1, requestBurst: 3 })
  const alice = await user('alice', 1)
  service.attach(alice)
  await settle()
  for (let i = 1; i <= 5; i++) send(alice, { type: 'GROUP_LIST', requestId: i })
  await settle()
  t.same(alice.of('GROUPS').map((g) => g.requestId), [1, 2, 3])
  t.match(alice.of('ERROR'), [{ requestId: 4, code: 'RATE_LIMITED' }, { requestId: 5, code: 'RATE_LIMITED' }])

  const { service: service2, user: user2, send: send2 } = await setup()
  const bob = await user2('bob', 2)
  bob.maxMessageBytes = 70
  service2.attach(bob)
  await settle()
  send2(bob, { type: 'GROUP_CREATE', requestId: 7, name: 'a group with a name long enough not to fit a reply in 70 bytes', usernames: [] })
  send2(bob, { type: 'GROUP_LIST', requestId: 8 })
  await settle()
  t.same(bob.of('GROUP'), [], 'the GROUP reply would not fit in 70 bytes')
  t.match(bob.of('ERROR'), [{ requestId: 7, code: 'INVALID_REQUEST' }], 'one reply all the same, before anything is written')
  t.same(bob.of('GROUPS').at(-1)?.groups, [], 'no group was made (a retry would have made a second)')
  t.equal(service2.stats.requestsFailed, 1)
})

t.test('READ from a member who joined after the message gives no read receipt', async (t) => {
  const { service, user, send } = await setup()
  const alice = await user('alice', 1)
  const bob = await user('bob', 2)
  const carol = await user('carol', 3)
  for (const l of [alice, bob, carol]) service.attach(l)
  await settle()
  send(alice, { type: 'GROUP_CREATE', requestId: 1, name: 'g', usernames: ['bob'] })
  await settle()
  const groupId = alice.of('GROUP')[0].groupId
  send(alice, { type: 'SEND', clientMsgId: id(1), to: { kind: 'group', groupId }, body: 'before carol' })
  await settle()
  const msgId = alice.of('SEND_OK')[0].msgId
  send(alice, { type: 'GROUP_INVITE', requestId: 2, groupId, username: 'carol' })
  await settle()
  send(carol, { type: 'READ', msgIds: [msgId] })
  send(bob, { type: 'READ', msgIds: [msgId] })
  await settle()
  send(alice, { type: 'SYNC', afterVersion: 0, maxEntries: 100 })
  await settle()
  const reads = alice.of('SYNC_BATCH').flatMap((b) => b.entries).filter((e) => e.kind === 'receipt' && e.status === 'read')
  t.same(reads.map((e) => (e.kind === 'receipt' ? e.byUserId : 0)), [bob.userId], 'bob read it; carol never had it')
})

t.test('a store that failed for good is reported once; the senders get INTERNAL_ERROR (and retry)', async (t) => {
  const failures: Error[] = []
  const { service, store, user, send } = await setup({}, { onStoreFailed: (err) => failures.push(err) })
  const alice = await user('alice', 1)
  const bob = await user('bob', 2)
  service.attach(alice)
  service.attach(bob)
  await settle()
  store.applyBatch = () => Promise.reject(new MessageStoreError('STORE_FAILED', 'the WAL sync failed: restart the server'))
  send(alice, { type: 'SEND', clientMsgId: id(1), to: { kind: 'user', userId: bob.userId }, body: 'one' })
  send(alice, { type: 'SEND', clientMsgId: id(2), to: { kind: 'user', userId: bob.userId }, body: 'two' })
  await settle()
  t.match(alice.of('SEND_FAILED'), [{ code: 'INTERNAL_ERROR' }, { code: 'INTERNAL_ERROR' }])
  t.equal(failures.length, 1, 'told once')
  t.match(failures[0], { code: 'STORE_FAILED' })
})

t.test('group names with control or text-direction characters, or only blanks, are refused', async (t) => {
  const { service, user, send } = await setup()
  const alice = await user('alice', 1)
  service.attach(alice)
  await settle()
  const names = ['\x1b]0;PWNED\x07', 'a\nb', 'x\u009by', 'evil\u202etxt.exe', '   ']
  names.forEach((name, i) => send(alice, { type: 'GROUP_CREATE', requestId: i + 1, name, usernames: [] }))
  send(alice, { type: 'GROUP_CREATE', requestId: 10, name: 'Ünïcode ok 😀', usernames: [] })
  await settle()
  t.same(alice.of('ERROR').map((e) => [e.requestId, e.code]), names.map((_, i) => [i + 1, 'INVALID_REQUEST']))
  const group = alice.of('GROUP')
  t.match(group, [{ requestId: 10, name: 'Ünïcode ok 😀' }])
  send(alice, { type: 'GROUP_RENAME', requestId: 11, groupId: group[0].groupId, name: 'tab\there' })
  await settle()
  t.match(alice.of('ERROR').at(-1), { requestId: 11, code: 'INVALID_REQUEST' })
})

t.test('a group change whose write fails leaves no change behind (the change and its event are one write)', async (t) => {
  const { service, store, user, send } = await setup()
  const { alice, groupId } = await aliceAndBobInGroup({ service, user, send })
  const carol = await user('carol', 3)
  service.attach(carol)
  await settle()
  const applyBatch = store.applyBatch.bind(store)
  store.applyBatch = () => Promise.reject(new Error('disk I/O error'))
  send(alice, { type: 'GROUP_INVITE', requestId: 2, groupId, username: 'carol' })
  send(alice, { type: 'GROUP_RENAME', requestId: 3, groupId, name: 'renamed' })
  send(alice, { type: 'GROUP_CREATE', requestId: 4, name: 'second', usernames: ['carol'] })
  await settle()
  t.match(alice.of('ERROR'), [{ requestId: 2, code: 'INTERNAL_ERROR' }, { requestId: 3, code: 'INTERNAL_ERROR' }, { requestId: 4, code: 'INTERNAL_ERROR' }])
  t.same(await store.listGroupMembers(groupId), [alice.userId, alice.userId + 1], 'carol was not added without her event')
  t.equal((await store.getGroup(groupId))?.name, 'g', 'nor the group renamed')
  t.equal((await store.listGroupsOf(carol.userId)).length, 0, 'nor a group created')

  store.applyBatch = applyBatch
  send(alice, { type: 'GROUP_INVITE', requestId: 5, groupId, username: 'carol' })
  await settle()
  t.match(alice.of('OK').at(-1), { requestId: 5 }, 'the retried invite works')
  t.same(await store.listGroupMembers(groupId), [alice.userId, alice.userId + 1, carol.userId])
})

t.test('a SYNC from beyond the inbox head is answered with the real head (a device ahead of a restored server learns it)', async (t) => {
  const { service, user, send } = await setup()
  const alice = await user('alice', 1)
  service.attach(alice)
  await settle()
  send(alice, { type: 'SYNC', afterVersion: 1000, maxEntries: 10 })
  await settle()
  t.same(alice.of('SYNC_BATCH'), [{ type: 'SYNC_BATCH', afterVersion: 1000, latestVersion: 0, entries: [] }])
})

t.test('a SEND refused because the server is shutting down is not counted or logged as a store failure', async (t) => {
  const { service, commit, user, send } = await setup()
  const alice = await user('alice', 1)
  const bob = await user('bob', 2)
  service.attach(alice)
  await settle()
  await commit.close()
  send(alice, { type: 'SEND', clientMsgId: id(1), to: { kind: 'user', userId: bob.userId }, body: 'late' })
  await settle()
  t.match(alice.of('SEND_FAILED'), [{ code: 'INTERNAL_ERROR' }], 'refused: the client keeps it and retries on its next session')
  t.equal(service.stats.storeErrors, 0)
})
