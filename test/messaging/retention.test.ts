/**
 * The server's retention policy (`--retention-days`, `--retention-messages`) as
 * startChatServer applies it, and what pruning must not undo: de-duplication of retries.
 */
import t from 'tap'
import { silentLogger } from '../../src/io/logger.js'
import { encodeChatMessage } from '../../src/protocol/chat-codec.js'
import { MessagingService } from '../../src/server/messaging/service.js'
import { GroupCommit } from '../../src/store/group-commit.js'
import { FakeLink, id, settle, setup } from './service-helpers.js'
import { startWorld } from './udp-helpers.js'

t.test('retention days reaching back before 1970 keep everything by age, and the per-user count still applies', async (t) => {
  const w = await startWorld('127.0.0.1', { retention: { days: 30_000, messagesPerUser: 2 }, retentionIntervalMs: 3_600_000 })
  t.teardown(() => w.close())
  const alice = await w.addUser('alice')
  const bob = await w.addUser('bob')
  const nowMs = Date.now()
  for (let i = 0; i < 5; i++) {
    await w.stores.messages.applyBatch([
      { kind: 'message', senderUserId: alice, senderDeviceId: 1, clientMsgId: new Uint8Array(16).fill(i + 1), to: { kind: 'user', userId: bob }, body: `m${i}`, inboxUserIds: [bob], nowMs },
    ])
  }
  t.equal(await w.server.pruneNow(), 3, 'the three oldest of five pruned (it failed on a negative cutoff before)')
  const left = await w.stores.messages.readInbox({ userId: bob, afterVersion: 0, limit: 10 })
  t.same(left.map((e) => (e.kind === 'message' ? e.body : '')), ['m3', 'm4'])
})

t.test('a SEND retried after a restart, its message pruned from every inbox, is still a duplicate: delivered once', async (t) => {
  const { accounts, store, service, user, send } = await setup()
  const alice = await user('alice', 1)
  const bob = await user('bob', 2)
  service.attach(alice)
  service.attach(bob)
  const to = { kind: 'user' as const, userId: bob.userId }
  send(alice, { type: 'SEND', clientMsgId: id(1), to, body: 'once' })
  send(alice, { type: 'SEND', clientMsgId: id(2), to, body: 'later' })
  await settle()
  const [first] = alice.of('SEND_OK')
  t.equal(await store.pruneInboxes({ nowMs: 1_060_000, keepLastPerUser: 1 }), 2, "a minute later 'once' leaves both inboxes")

  // The restarted server has an empty de-dup cache; alice never saw her SEND_OK and retries.
  const restarted = new MessagingService({ store, accounts, commit: new GroupCommit({ store, windowMs: 0, schedule: (fn) => setImmediate(fn) }), log: silentLogger(), nowMs: () => 1_060_000 })
  const aliceAgain = new FakeLink(alice.userId, 1)
  const bobAgain = new FakeLink(bob.userId, 2)
  restarted.attach(aliceAgain)
  restarted.attach(bobAgain)
  await settle()
  const bobHead = bobAgain.of('PUSH').at(-1)?.latestVersion
  restarted.handle(aliceAgain, encodeChatMessage({ type: 'SEND', clientMsgId: id(1), to, body: 'once' }))
  await settle()
  t.match(aliceAgain.of('SEND_OK'), [{ clientMsgId: id(1), msgId: first.msgId, sentAtMs: first.sentAtMs }], 'the stored SEND_OK, not a new message')
  t.equal(await store.inboxHead(bob.userId), bobHead, "nothing new in bob's inbox")
  t.equal(restarted.stats.duplicateSends, 1)
})

t.test('a retention run asked for while one is under way joins it (a long run is not started twice)', async (t) => {
  const w = await startWorld('127.0.0.1', { retention: { messagesPerUser: 1 }, retentionIntervalMs: 3_600_000 })
  t.teardown(() => w.close())
  const alice = await w.addUser('alice')
  const bob = await w.addUser('bob')
  for (let i = 0; i < 3; i++) {
    await w.stores.messages.applyBatch([
      { kind: 'message', senderUserId: alice, senderDeviceId: 1, clientMsgId: new Uint8Array(16).fill(i + 1), to: { kind: 'user', userId: bob }, body: `m${i}`, inboxUserIds: [bob], nowMs: Date.now() },
    ])
  }
  const messages = w.stores.messages
  const original = messages.pruneInboxes.bind(messages)
  let runs = 0
  messages.pruneInboxes = (policy) => {
    runs++
    return original(policy)
  }
  const [first, second] = await Promise.all([w.server.pruneNow(), w.server.pruneNow()])
  t.same([first, second, runs], [2, 2, 1], 'one run, both callers told its result')
  t.equal(await w.server.pruneNow(), 0, 'a later call starts a new run')
  t.equal(runs, 2)
})
