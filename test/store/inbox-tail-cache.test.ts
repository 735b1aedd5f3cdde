import t from 'tap'
import type { InboxEntry } from '../../src/protocol/chat-types.js'
import { InboxTailCache } from '../../src/store/inbox-tail-cache.js'

const msg = (version: number, body = 'hi'): InboxEntry => ({
  kind: 'message', version, msgId: 100 + version, fromUserId: 1, fromDeviceId: 2, to: { kind: 'user', userId: 3 }, sentAtMs: 5, clientMsgId: Uint8Array.of(version), body,
})
const receipt = (version: number): InboxEntry => ({ kind: 'receipt', version, msgId: 7, status: 'delivered', byUserId: 3, atMs: 9 })
const versions = (es: InboxEntry[] | undefined): number[] | undefined => es?.map((e) => e.version)

t.test('answers only what it holds: a run of versions ending at the head', async (t) => {
  const c = new InboxTailCache({ entriesPerUser: 4 })
  t.equal(c.read(1, 0, 10), undefined, 'nothing cached')
  t.equal(c.head(1), undefined)
  c.append(1, msg(5))
  c.append(1, receipt(6))
  c.append(1, msg(7))
  t.equal(c.head(1), 7)
  t.same(versions(c.read(1, 4, 10)), [5, 6, 7], 'from the version before the tail')
  t.same(versions(c.read(1, 5, 1)), [6], 'limit')
  t.same(c.read(1, 7, 10), [], 'up to date')
  t.same(c.read(1, 9, 10), [], 'ahead of the head: nothing, as the table would say')
  t.equal(c.read(1, 3, 10), undefined, 'version 4 is not held: the table must answer')
  t.equal(c.read(2, 0, 10), undefined, 'another user')
})

t.test('a version that does not continue the tail starts a new one; old entries fall off the front', async (t) => {
  const c = new InboxTailCache({ entriesPerUser: 3 })
  c.append(1, msg(1))
  c.append(1, msg(2))
  c.append(1, msg(4)) // 3 was never appended (written elsewhere)
  t.equal(c.read(1, 2, 10), undefined, 'version 3 unknown')
  t.same(versions(c.read(1, 3, 10)), [4])
  for (const v of [5, 6, 7]) c.append(1, msg(v))
  t.same(versions(c.read(1, 4, 10)), [5, 6, 7])
  t.equal(c.read(1, 3, 10), undefined, 'version 4 fell off')
  c.forget(1)
  t.equal(c.read(1, 6, 10), undefined)
  c.append(2, msg(1))
  c.clear()
  t.equal(c.head(2), undefined)
})

t.test('readers get copies', async (t) => {
  const c = new InboxTailCache()
  c.append(1, msg(1))
  const [first] = c.read(1, 0, 1)!
  if (first.kind !== 'message' || first.to.kind !== 'user') throw new Error('expected a 1:1 message')
  first.clientMsgId[0] = 99
  first.to.userId = 99
  first.body = 'changed'
  t.same(c.read(1, 0, 1), [msg(1)])
})

t.test('bounded by bytes: the least recently written users go first', async (t) => {
  const c = new InboxTailCache({ maxBytes: 64 * 1024, entriesPerUser: 8 })
  const big = 'x'.repeat(4000)
  for (let user = 1; user <= 20; user++) for (let v = 1; v <= 2; v++) c.append(user, msg(v, big))
  t.equal(c.head(1), undefined, 'the first users were evicted')
  t.equal(c.head(20), 2, 'the newest stays')
  t.same(versions(c.read(20, 0, 10)), [1, 2])
})
