import t from 'tap'
import { KeyedSerial } from '../../src/server/messaging/keyed-serial.js'

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

t.test('tasks of one key run one at a time in order; other keys run alongside; idle keys hold nothing', async (t) => {
  const serial = new KeyedSerial<number>()
  const log: string[] = []
  let running = 0
  let most = 0
  const task = (name: string) => async (): Promise<string> => {
    running++
    most = Math.max(most, running)
    log.push(`start ${name}`)
    await tick()
    log.push(`end ${name}`)
    running--
    return name
  }
  const a = [serial.run(1, task('a1')), serial.run(1, task('a2')), serial.run(1, task('a3'))]
  const b = serial.run(2, task('b1'))
  t.equal(serial.size, 2)
  t.same(await Promise.all([...a, b]), ['a1', 'a2', 'a3', 'b1'])
  t.same(log.filter((l) => l.includes(' a')), ['start a1', 'end a1', 'start a2', 'end a2', 'start a3', 'end a3'], 'key 1 in order, never overlapping')
  t.equal(most, 2, 'key 2 ran alongside key 1')
  t.equal(serial.size, 0)

  // A failing task does not stop the next one of its key.
  const failed = serial.run(1, () => Promise.reject(new Error('no')))
  const after = serial.run(1, task('a4'))
  await t.rejects(failed, /no/)
  t.equal(await after, 'a4')
  // A key queued again right after it went idle gets a queue of its own, serial as ever.
  const first = serial.run(3, task('c1'))
  await first
  const c = [serial.run(3, task('c2')), serial.run(3, task('c3'))]
  await Promise.all(c)
  t.same(log.slice(-4), ['start c2', 'end c2', 'start c3', 'end c3'])
  t.equal(serial.size, 0)
})
