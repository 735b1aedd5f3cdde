/**
 * TimerHeap against a naive model (a map item -> deadline): random schedule /
 * reschedule / cancel / popDue / peekMs / rebuild sequences; lazy deletion must never
 * surface a stale deadline nor lose a live one.
 */
import fc from 'fast-check'
import t from 'tap'
import { SeededRng } from '../../src/core/rng.js'
import { TimerHeap, type TimerItem } from '../../src/core/timer-heap.js'
import { fcParams } from '../wire/helpers.js'

interface Item extends TimerItem {
  id: number
}

const newItems = (n: number): Item[] => Array.from({ length: n }, (_, id) => ({ id, deadlineMs: Infinity }))

type Op =
  | { op: 'schedule'; item: number; atMs: number }
  | { op: 'cancel'; item: number }
  | { op: 'pop'; nowMs: number }
  | { op: 'drain'; nowMs: number }
  | { op: 'peek' }
  | { op: 'rebuild' }

const N = 8
const timeArb = fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 400 }).map((x) => x / 10))
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant('schedule' as const), item: fc.integer({ min: 0, max: N - 1 }), atMs: timeArb }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('cancel' as const), item: fc.integer({ min: 0, max: N - 1 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('pop' as const), nowMs: timeArb }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('drain' as const), nowMs: timeArb }) },
  { weight: 2, arbitrary: fc.constant({ op: 'peek' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'rebuild' as const }) },
)

const modelMin = (model: Map<number, number>): number => {
  let m = Infinity
  for (const v of model.values()) if (v < m) m = v
  return m
}

t.test('TimerHeap matches a naive model (property)', async (t) => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 80 }), (ops) => {
      const heap = new TimerHeap<Item>()
      const items = newItems(N)
      const model = new Map<number, number>()
      ops.forEach((o, step) => {
        const where = `step ${step} ${JSON.stringify(o)} model=${JSON.stringify([...model])}`
        switch (o.op) {
          case 'schedule':
            heap.schedule(items[o.item], o.atMs)
            model.set(o.item, o.atMs)
            break
          case 'cancel':
            heap.schedule(items[o.item], Infinity)
            model.delete(o.item)
            break
          case 'pop': {
            const min = modelMin(model)
            const got = heap.popDue(o.nowMs)
            if (min > o.nowMs) {
              if (got !== undefined) throw new Error(`${where}: popped ${got.id} though nothing is due`)
              break
            }
            if (got === undefined) throw new Error(`${where}: nothing popped though ${min} is due`)
            if (model.get(got.id) !== min) throw new Error(`${where}: popped ${got.id} (deadline ${model.get(got.id)}), earliest is ${min}`)
            if (got.deadlineMs !== Infinity) throw new Error(`${where}: popped item keeps deadline ${got.deadlineMs}`)
            model.delete(got.id)
            break
          }
          case 'drain': {
            let last = -Infinity
            for (;;) {
              const got = heap.popDue(o.nowMs)
              if (got === undefined) break
              const d = model.get(got.id)
              if (d === undefined) throw new Error(`${where}: popped ${got.id} which is not scheduled (stale entry)`)
              if (d < last) throw new Error(`${where}: out of order ${d} after ${last}`)
              last = d
              model.delete(got.id)
            }
            if (modelMin(model) <= o.nowMs) throw new Error(`${where}: a due item was left behind`)
            break
          }
          case 'peek':
            break
          case 'rebuild':
            heap.rebuild()
            break
        }
        const peek = heap.peekMs()
        if (peek !== modelMin(model)) throw new Error(`${where}: peekMs ${peek} != ${modelMin(model)}`)
        for (const it of items) {
          const want = model.get(it.id) ?? Infinity
          if (it.deadlineMs !== want) throw new Error(`${where}: item ${it.id} deadline ${it.deadlineMs} != ${want}`)
        }
      })
    }),
    fcParams(3000),
  )
  t.pass('3000 random sequences')
})

t.test('an item rescheduled back to an earlier deadline fires once', async (t) => {
  const heap = new TimerHeap<Item>()
  const [a] = newItems(1)
  heap.schedule(a, 5)
  heap.schedule(a, 7)
  heap.schedule(a, 5) // the first (5) entry is valid again, and a second (5) entry is pushed
  t.equal(heap.popDue(10), a)
  t.equal(heap.popDue(10), undefined, 'the duplicate entry is stale once the item fired')
  t.equal(heap.peekMs(), Infinity)
  heap.schedule(a, 7) // the leftover (7) entry becomes valid again; still exactly one firing
  t.equal(heap.popDue(10), a)
  t.equal(heap.popDue(10), undefined)
})

t.test('scheduling the same deadline twice pushes one entry; Infinity cancels', async (t) => {
  const heap = new TimerHeap<Item>()
  const [a, b] = newItems(2)
  heap.schedule(a, 3)
  heap.schedule(a, 3)
  t.equal(heap.size, 1)
  heap.schedule(b, 1)
  heap.schedule(b, Infinity)
  t.equal(heap.peekMs(), 3, 'cancelled b is skipped')
  t.equal(heap.popDue(2.999), undefined, 'fractional times')
  t.equal(heap.popDue(3), a)
})

t.test('stale entries are shed: the heap stays bounded under constant rescheduling', async (t) => {
  const rng = new SeededRng(0x7157)
  const heap = new TimerHeap<Item>()
  const items = newItems(2000)
  heap.validCountHint = items.length
  let maxSize = 0
  let nowMs = 0
  for (let round = 0; round < 100_000; round++) {
    const it = items[rng.nextU32() % items.length]
    heap.schedule(it, nowMs + 1 + (rng.nextU32() % 1000))
    if (heap.size > maxSize) maxSize = heap.size
    if (round % 1000 === 999) {
      nowMs += 100
      for (;;) {
        const nextMs = heap.peekMs()
        const due = heap.popDue(nowMs)
        if (due === undefined) break
        if (nextMs > nowMs) throw new Error(`seed 0x7157: popped an item due at ${nextMs} at ${nowMs}`)
        if (due.deadlineMs !== Infinity) throw new Error('seed 0x7157: popped item keeps its deadline')
      }
      if (heap.peekMs() <= nowMs) throw new Error('seed 0x7157: a due item was left behind')
    }
  }
  t.ok(maxSize <= 4 * items.length + 1, `heap entries ${maxSize} stay within 4x the live items (seed 0x7157)`)
  // Every remaining live deadline comes out in order and nothing stale does.
  const live = items.filter((i) => i.deadlineMs !== Infinity).map((i) => i.deadlineMs).sort((a, b) => a - b)
  const popped: number[] = []
  for (;;) {
    const before = heap.peekMs()
    const due = heap.popDue(Infinity)
    if (due === undefined) break
    popped.push(before)
  }
  t.same(popped, live, 'remaining items pop in deadline order, once each')
})

t.test('rebuild without a hint still sheds stale entries past 1024', async (t) => {
  const heap = new TimerHeap<Item>()
  const items = newItems(10)
  for (let i = 0; i < 20_000; i++) heap.schedule(items[i % 10], i)
  t.ok(heap.size <= 1024 + 1, `size ${heap.size} bounded with only 10 live items`)
  const order: number[] = []
  for (;;) {
    const due = heap.popDue(Infinity)
    if (due === undefined) break
    order.push(due.id)
  }
  t.same(order, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
})
