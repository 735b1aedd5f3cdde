import t from 'tap'
import fc from 'fast-check'
import { EventQueue } from '../../src/sim/event-queue.js'

t.test('pops by time, ties in insertion order', async (t) => {
  const q = new EventQueue<string>()
  q.push(5, 'c')
  q.push(1, 'a')
  q.push(5, 'd')
  q.push(3, 'b')
  q.push(5, 'e')
  t.equal(q.size, 5)
  t.equal(q.peek()?.value, 'a')
  const out: string[] = []
  for (let e = q.pop(); e; e = q.pop()) out.push(e.value)
  t.same(out, ['a', 'b', 'c', 'd', 'e'])
  t.equal(q.pop(), undefined)
})

t.test('property: same order as a stable sort by time', async (t) => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 300 }), (times) => {
      const q = new EventQueue<number>()
      times.forEach((time, i) => q.push(time, i))
      const expected = times.map((time, i) => ({ time, i })).sort((a, b) => a.time - b.time || a.i - b.i).map((e) => e.i)
      const got: number[] = []
      for (let e = q.pop(); e; e = q.pop()) got.push(e.value)
      return got.length === expected.length && got.every((v, k) => v === expected[k])
    }),
    { seed: 20240601, numRuns: 200 },
  )
  t.pass('heap order matches a stable sort')
})
