/**
 * The server's retention policy (`--retention-days`, `--retention-messages`) as
 * startChatServer applies it.
 */
import t from 'tap'
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
