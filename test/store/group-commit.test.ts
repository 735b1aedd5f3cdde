import t from 'tap'
import { GroupCommit, checkInboxWrite } from '../../src/store/group-commit.js'
import { MessageStoreError, type AppliedWriteResult, type InboxWrite, type InboxWriteResult } from '../../src/store/message-store.js'
import { MemoryMessageStore } from '../../src/store/memory-message-store.js'
import { cid, messageWrite } from './message-conformance.js'

/** A scheduler the test drives by hand. */
class ManualScheduler {
  readonly queue: Array<{ fn: () => void; delayMs: number }> = []
  readonly schedule = (fn: () => void, delayMs: number): void => {
    this.queue.push({ fn, delayMs })
  }

  /** Run everything scheduled so far (and what that schedules), in order. */
  runAll(): number {
    let n = 0
    while (this.queue.length > 0) {
      this.queue.shift()!.fn()
      n++
    }
    return n
  }
}

interface Call {
  writes: InboxWrite[]
  resolve: (r: InboxWriteResult[]) => void
  reject: (err: unknown) => void
}

/** applyBatch that answers only when the test says so; echoes each write's nowMs as msgId. */
class FakeStore {
  readonly calls: Call[] = []
  inFlight = 0
  maxInFlight = 0
  applyBatch = (writes: InboxWrite[]): Promise<InboxWriteResult[]> => {
    this.inFlight++
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight)
    return new Promise((resolve, reject) => {
      this.calls.push({
        writes,
        resolve: (r) => { this.inFlight--; resolve(r) },
        reject: (e) => { this.inFlight--; reject(e) },
      })
    })
  }

  /** Complete call i successfully. */
  succeed(i: number): void {
    const call = this.calls[i]
    call.resolve(call.writes.map((w) => ({ kind: 'message', msgId: w.nowMs, sentAtMs: w.nowMs, duplicate: false, versions: [] })))
  }
}

const w = (n: number): InboxWrite => messageWrite(1, cid(n), { kind: 'user', userId: 2 }, [2, 1], n)
const msgIdOf = (r: InboxWriteResult): number => (r.kind === 'message' ? r.msgId : -1)
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

t.test('writes within the window form one batch; results in order', async (t) => {
  const sched = new ManualScheduler()
  const store = new FakeStore()
  const gc = new GroupCommit({ store, windowMs: 2, schedule: sched.schedule })
  const ps = [gc.write(w(1)), gc.write(w(2)), gc.write(w(3))]
  t.equal(sched.queue.length, 1, 'only the first write schedules a flush')
  t.equal(sched.queue[0].delayMs, 2, 'after windowMs')
  t.equal(store.calls.length, 0, 'nothing written before the window ends')
  sched.runAll()
  t.equal(store.calls.length, 1)
  t.same(store.calls[0].writes.map((x) => x.nowMs), [1, 2, 3])
  store.succeed(0)
  t.same((await Promise.all(ps)).map(msgIdOf), [1, 2, 3])
  t.same(gc.stats, { batches: 1, writes: 3, maxBatchSize: 3, failedBatches: 0 })

  const p4 = gc.write(w(4))
  t.equal(sched.queue.length, 1, 'the next batch schedules its own window')
  sched.runAll()
  store.succeed(1)
  t.equal(msgIdOf(await p4), 4)
  t.equal(gc.stats.batches, 2)
})

t.test('default window is 1 ms', async (t) => {
  const sched = new ManualScheduler()
  const gc = new GroupCommit({ store: new FakeStore(), schedule: sched.schedule })
  void gc.write(w(1))
  t.equal(sched.queue[0].delayMs, 1)
})

t.test('reaching maxBatch flushes at once; a stale window timer does not flush the next batch early', async (t) => {
  const sched = new ManualScheduler()
  const store = new FakeStore()
  const gc = new GroupCommit({ store, maxBatch: 3, schedule: sched.schedule })
  const ps = [gc.write(w(1)), gc.write(w(2)), gc.write(w(3))]
  t.equal(store.calls.length, 1, 'flushed without the scheduler')
  t.equal(store.calls[0].writes.length, 3)
  store.succeed(0)
  await Promise.all(ps)
  const p4 = gc.write(w(4))
  t.equal(sched.queue.length, 2, 'the old timer and a new one')
  sched.queue.shift()!.fn() // the first batch's window timer fires late
  t.equal(store.calls.length, 1, 'stale timer ignored')
  sched.runAll()
  t.equal(store.calls.length, 2)
  store.succeed(1)
  t.equal(msgIdOf(await p4), 4)
  t.equal(gc.stats.maxBatchSize, 3)
})

t.test('one applyBatch in flight; writes meanwhile form the next batch, started when it finishes', async (t) => {
  const sched = new ManualScheduler()
  const store = new FakeStore()
  const gc = new GroupCommit({ store, maxBatch: 4, schedule: sched.schedule })
  const first = [gc.write(w(1)), gc.write(w(2))]
  sched.runAll()
  t.equal(store.calls.length, 1)
  const second: Array<Promise<InboxWriteResult>> = []
  for (let i = 3; i <= 12; i++) second.push(gc.write(w(i)))
  t.equal(sched.queue.length, 0, 'nothing scheduled while a batch is in flight')
  t.equal(store.calls.length, 1, 'not even at maxBatch')
  t.equal(gc.queued, 10)
  store.succeed(0)
  t.same((await Promise.all(first)).map(msgIdOf), [1, 2])
  t.equal(store.calls.length, 1, 'the next batch waits for the scheduler (acknowledgements go first)')
  t.equal(sched.queue.length, 1)
  t.equal(sched.queue[0].delayMs, 0, 'immediately')
  sched.runAll()
  t.equal(store.calls.length, 2)
  t.same(store.calls[1].writes.map((x) => x.nowMs), [3, 4, 5, 6], 'at most maxBatch')
  store.succeed(1)
  await tick()
  sched.runAll()
  store.succeed(2)
  await tick()
  sched.runAll()
  store.succeed(3)
  t.same((await Promise.all(second)).map(msgIdOf), [3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
  t.equal(store.maxInFlight, 1)
  t.same(gc.stats, { batches: 4, writes: 12, maxBatchSize: 4, failedBatches: 0 })
})

t.test('a failed applyBatch rejects every write of that batch with its error, and only those', async (t) => {
  const sched = new ManualScheduler()
  const store = new FakeStore()
  const gc = new GroupCommit({ store, schedule: sched.schedule })
  const failed = [gc.write(w(1)), gc.write(w(2))]
  sched.runAll()
  const later = gc.write(w(3))
  const boom = new Error('disk full')
  store.calls[0].reject(boom)
  for (const p of failed) {
    await t.rejects(p, boom)
    try {
      await p
    } catch (err) {
      t.equal(err, boom, 'the very error')
    }
  }
  await tick()
  sched.runAll()
  store.succeed(1)
  t.equal(msgIdOf(await later), 3, 'the next batch goes on')
  t.equal(gc.stats.failedBatches, 1)
})

t.test('a store that throws synchronously or answers with the wrong count fails the batch', async (t) => {
  const sched = new ManualScheduler()
  let calls = 0
  const gc1 = new GroupCommit({ store: { applyBatch: () => { calls++; throw new Error('sync') } }, schedule: sched.schedule })
  const p1 = gc1.write(w(1))
  sched.runAll()
  await t.rejects(p1, /sync/)
  const p1b = gc1.write(w(2))
  sched.runAll()
  await t.rejects(p1b, /sync/, 'the next batch is not stuck behind the failed one')
  t.equal(calls, 2)
  await gc1.close()
  const gc2 = new GroupCommit({ store: { applyBatch: async () => [] }, schedule: sched.schedule })
  const p2 = gc2.write(w(1))
  sched.runAll()
  await t.rejects(p2, /0 results for 1 writes/)
})

t.test('a malformed write is refused at once and does not join the batch', async (t) => {
  const sched = new ManualScheduler()
  const store = new FakeStore()
  const gc = new GroupCommit({ store, schedule: sched.schedule })
  const good = gc.write(w(1))
  const bad = gc.write({ ...w(2), clientMsgId: new Uint8Array(0) } as InboxWrite)
  const err = await bad.then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof MessageStoreError && err.code === 'INVALID_ARGUMENT', 'INVALID_ARGUMENT')
  sched.runAll()
  t.equal(store.calls[0].writes.length, 1)
  store.succeed(0)
  t.equal(msgIdOf(await good), 1)
  t.throws(() => checkInboxWrite({ kind: 'receipt', msgId: 1, status: 'read', byUserId: 0, nowMs: 1 }))
})

t.test('flush() commits now and waits, including what is in flight and queued behind it', async (t) => {
  const sched = new ManualScheduler()
  const store = new FakeStore()
  const gc = new GroupCommit({ store, windowMs: 1000, schedule: sched.schedule })
  await gc.flush() // nothing to do
  const p1 = gc.write(w(1))
  let flushed = false
  const f1 = gc.flush().then(() => { flushed = true })
  t.equal(store.calls.length, 1, 'no waiting for the window')
  const p2 = gc.write(w(2)) // behind the in-flight batch
  const f2 = gc.flush()
  await tick()
  t.equal(flushed, false)
  store.succeed(0)
  await f1
  t.equal(msgIdOf(await p1), 1)
  await tick()
  t.equal(store.calls.length, 2, 'a waiting flush starts the next batch without the scheduler')
  store.succeed(1)
  await f2
  t.equal(msgIdOf(await p2), 2)
  sched.runAll() // stale timers do nothing
  t.equal(store.calls.length, 2)
})

t.test('flush() resolves even when the batch fails (the writers hear about it)', async (t) => {
  const store = new FakeStore()
  const gc = new GroupCommit({ store, schedule: new ManualScheduler().schedule })
  const p = gc.write(w(1))
  const f = gc.flush()
  store.calls[0].reject(new Error('io'))
  await t.rejects(p, /io/)
  await f
  t.pass('flush resolved')
})

t.test('close() flushes and refuses later writes', async (t) => {
  const sched = new ManualScheduler()
  const store = new FakeStore()
  const gc = new GroupCommit({ store, schedule: sched.schedule })
  const p = gc.write(w(1))
  const closing = gc.close()
  await t.rejects(gc.write(w(2)), /closed/)
  store.succeed(0)
  await closing
  t.equal(msgIdOf(await p), 1)
  await t.rejects(gc.write(w(3)), /closed/)
  t.equal(store.calls.length, 1)
  await gc.close()
})

t.test('with a real MemoryMessageStore and the default scheduler', async (t) => {
  const store = new MemoryMessageStore({ userExists: () => true })
  const gc = new GroupCommit({ store })
  const ps: Array<Promise<AppliedWriteResult>> = []
  for (let i = 1; i <= 1000; i++) ps.push(gc.write(w(i)))
  const results = await Promise.all(ps)
  t.same(results.map((r) => r.versions[0].version), Array.from({ length: 1000 }, (_, i) => i + 1), 'versions in write order')
  t.equal(gc.stats.writes, 1000)
  t.ok(gc.stats.batches >= 2 && gc.stats.batches <= 3, `batched: ${gc.stats.batches} batches`)
  t.equal(gc.stats.maxBatchSize, 512)
  await gc.close()
})
