/** One timer for everything: a min-heap re-armed to the earliest entry. */
import t from 'tap'
import fc from 'fast-check'
import { ManualClock, Scheduler } from '../../tools/lossy-link/scheduler.js'
import { fcSeed } from '../wire/helpers.js'

fc.configureGlobal({ seed: fcSeed() }) // reproducible; PIGEON_FC_SEED explores

t.test('runs entries in time order (FIFO on ties) with one timer re-armed', async (t) => {
  const clock = new ManualClock()
  const s = new Scheduler(clock)
  const ran: string[] = []
  const log = (name: string) => ran.push(`${name}@${clock.now()}`)
  s.at(30, log, 'c')
  s.at(10, log, 'a')
  s.at(10, log, 'a2')
  s.at(20, log, 'b')
  t.equal(clock.nextTimerAt(), 10, 'armed for the earliest')
  clock.advance(15)
  t.same(ran, ['a@10', 'a2@10'])
  t.equal(clock.nextTimerAt(), 20, 're-armed for the next')
  clock.advance(100)
  t.same(ran, ['a@10', 'a2@10', 'b@20', 'c@30'])
  t.equal(s.size, 0)
  t.equal(clock.nextTimerAt(), undefined, 'nothing armed when empty')
})

t.test('cancel, entries added while running, close', async (t) => {
  const clock = new ManualClock()
  const s = new Scheduler(clock)
  const ran: number[] = []
  const h = s.at(5, (x: number) => ran.push(x), 5)
  s.at(6, (x: number) => {
    ran.push(x)
    s.at(6, (y: number) => ran.push(y), 66) // due now: runs in the same batch
    s.at(9, (y: number) => ran.push(y), 9)
  }, 6)
  h.cancel()
  clock.advance(7)
  t.same(ran, [6, 66])
  s.close()
  clock.advance(10)
  t.same(ran, [6, 66], 'nothing runs after close')
})

t.test('property: any schedule runs sorted by (time, insertion)', async (t) => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: 1, maxLength: 300 }), (times) => {
      const clock = new ManualClock()
      const s = new Scheduler(clock)
      const ran: Array<[number, number]> = []
      times.forEach((at, i) => s.at(at, (x: [number, number]) => ran.push(x), [at, i]))
      clock.advance(2000)
      const expected = times.map((at, i) => [at, i] as [number, number]).sort((a, b) => a[0] - b[0] || a[1] - b[1])
      return JSON.stringify(ran) === JSON.stringify(expected)
    }),
  )
  t.pass('sorted')
})

t.test('10,000 pending deliveries arm far fewer timers than entries', async (t) => {
  const clock = new ManualClock()
  const s = new Scheduler(clock)
  let n = 0
  for (let i = 0; i < 10_000; i++) s.at(100 + (i % 50), () => n++, undefined)
  t.ok(s.timerArms <= 2, `timer armed ${s.timerArms} times for 10,000 entries`)
  clock.advance(200)
  t.equal(n, 10_000)
  t.ok(s.timerArms <= 52, `one arm per distinct due time at most (${s.timerArms})`)
})
