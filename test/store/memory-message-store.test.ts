import t from 'tap'
import { MemoryAccountStore } from '../../src/store/memory-account-store.js'
import { MemoryMessageStore } from '../../src/store/memory-message-store.js'
import { cid, messageStoreConformance, messageWrite, rejectsMessageCode, versionsOf } from './message-conformance.js'

messageStoreConformance(t, async () => {
  const accounts = new MemoryAccountStore()
  const store = new MemoryMessageStore({ accounts })
  return {
    store,
    accounts,
    cleanup: async () => {
      await store.close()
      await accounts.close()
    },
  }
})

t.test('userExists option; known users are cached, so a batch applies without awaiting', async (t) => {
  const asked: number[] = []
  const store = new MemoryMessageStore({ userExists: (id) => { asked.push(id); return id <= 3 } })
  const p1 = store.applyBatch([messageWrite(1, cid(1), { kind: 'user', userId: 2 }, [2, 1], 10)])
  t.same(versionsOf((await p1)[0]), [{ userId: 2, version: 1 }, { userId: 1, version: 1 }])
  t.same(asked.sort(), [1, 2])
  // all users cached: applied synchronously inside the call
  void store.applyBatch([messageWrite(1, cid(2), { kind: 'user', userId: 2 }, [2, 1], 11)])
  t.equal(await store.inboxHead(2), 2)
  await rejectsMessageCode(t, store.addContact({ userId: 1, contactUserId: 4, nowMs: 1 }), 'UNKNOWN_USER')
  t.equal(await store.addContact({ userId: 1, contactUserId: 3, nowMs: 1 }), true)
  t.same(asked.sort(), [1, 2, 3, 4])
})

t.test('a large inbox reads by binary search', async (t) => {
  const store = new MemoryMessageStore({ userExists: () => true })
  const writes = []
  for (let i = 1; i <= 20_000; i++) writes.push(messageWrite(1, cid(i), { kind: 'user', userId: 2 }, [2], i))
  await store.applyBatch(writes)
  const page = await store.readInbox({ userId: 2, afterVersion: 12_345, limit: 2 })
  t.same(page.map((e) => e.version), [12_346, 12_347])
  t.equal(await store.pruneInboxes({ nowMs: 0, keepLastPerUser: 10 }), 19_990)
  t.same((await store.readInbox({ userId: 2, afterVersion: 0, limit: 1 })).map((e) => e.version), [19_991])
})
