import t from 'tap'
import { SerialQueue } from '../../src/store/serial-queue.js'

const deferred = () => {
  let resolve!: () => void
  const promise = new Promise<void>((r) => { resolve = r })
  return { promise, resolve }
}

t.test('tasks run one at a time, in call order; an idle queue starts a task inside run()', async (t) => {
  const q = new SerialQueue()
  const log: string[] = []
  const gate = deferred()
  const first = q.run(async () => {
    log.push('1 start')
    await gate.promise
    log.push('1 end')
    return 1
  })
  t.same(log, ['1 start'], 'started synchronously')
  const second = q.run(() => {
    log.push('2')
    throw new Error('boom')
  })
  const third = q.run(() => {
    log.push('3')
    return 3
  })
  t.equal(q.length, 3)
  await Promise.resolve()
  t.same(log, ['1 start'], 'the others wait')
  gate.resolve()
  t.equal(await first, 1)
  await t.rejects(second, /boom/)
  t.equal(await third, 3, 'a failed task does not stop the queue')
  t.same(log, ['1 start', '1 end', '2', '3'])
  t.equal(q.length, 0)
  let ran = false
  void q.run(() => { ran = true })
  t.equal(ran, true, 'idle again: runs at once')
})

t.test('a task called right after an awaited one still starts synchronously', async (t) => {
  const q = new SerialQueue()
  await q.run(async () => undefined)
  let ran = false
  void q.run(() => { ran = true })
  t.equal(ran, true)
})
