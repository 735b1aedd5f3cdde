/**
 * RangeSet against a naive Set<number> model: random sequences of add / addRange /
 * removeBelow / truncateToNewest, comparing every observable after each step.
 */
import fc from 'fast-check'
import t from 'tap'
import { RangeSet } from '../../src/core/range-set.js'
import { fcParams } from '../wire/helpers.js'

const DOMAIN = 160

type Op =
  | { op: 'add'; value: number }
  | { op: 'addRange'; start: number; end: number }
  | { op: 'removeBelow'; value: number }
  | { op: 'truncateToNewest'; maxRanges: number }
  | { op: 'clear' }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('add' as const), value: fc.integer({ min: 0, max: DOMAIN - 1 }) }) },
  {
    weight: 5,
    arbitrary: fc
      .record({ start: fc.integer({ min: 0, max: DOMAIN - 1 }), len: fc.integer({ min: -3, max: 25 }) })
      .map(({ start, len }) => ({ op: 'addRange' as const, start, end: start + len })),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('removeBelow' as const), value: fc.integer({ min: 0, max: DOMAIN }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('truncateToNewest' as const), maxRanges: fc.integer({ min: 0, max: 8 }) }) },
  { weight: 1, arbitrary: fc.constant({ op: 'clear' as const }) },
)

/** Maximal runs of consecutive members, ascending, half-open. */
const modelRanges = (model: Set<number>): Array<[number, number]> => {
  const sorted = [...model].sort((a, b) => a - b)
  const out: Array<[number, number]> = []
  for (const v of sorted) {
    const last = out[out.length - 1]
    if (last !== undefined && last[1] === v) last[1] = v + 1
    else out.push([v, v + 1])
  }
  return out
}

const check = (rs: RangeSet, model: Set<number>, where: string): void => {
  const fail = (msg: string): never => {
    throw new Error(`${where}: ${msg}; ranges=${JSON.stringify(rs.ranges())} model=${JSON.stringify(modelRanges(model))}`)
  }
  const ranges = rs.ranges()
  // Normalised: each non-empty, sorted, disjoint and non-adjacent.
  for (let i = 0; i < ranges.length; i++) {
    if (!(ranges[i][0] < ranges[i][1])) fail(`empty range ${i}`)
    if (i > 0 && !(ranges[i - 1][1] < ranges[i][0])) fail(`ranges ${i - 1},${i} overlap or touch`)
  }
  const expected = modelRanges(model)
  if (JSON.stringify(ranges) !== JSON.stringify(expected)) fail('ranges differ from model')
  if (rs.rangeCount !== expected.length) fail('rangeCount')
  if (rs.size() !== model.size) fail(`size ${rs.size()} != ${model.size}`)
  if (rs.isEmpty !== (model.size === 0)) fail('isEmpty')
  const min = model.size === 0 ? undefined : Math.min(...model)
  const max = model.size === 0 ? undefined : Math.max(...model)
  if (rs.min !== min) fail(`min ${rs.min} != ${min}`)
  if (rs.max !== max) fail(`max ${rs.max} != ${max}`)
  for (let v = -2; v < DOMAIN + 30; v++) {
    if (rs.has(v) !== model.has(v)) fail(`has(${v})`)
    let end = v
    while (model.has(end)) end++
    if (rs.contiguousEnd(v) !== end) fail(`contiguousEnd(${v}) = ${rs.contiguousEnd(v)}, want ${end}`)
  }
  for (const limit of [0, 1, 3, 1000]) {
    const desc = rs.descendingInclusive(limit)
    const want = [...expected]
      .reverse()
      .slice(0, limit)
      .map(([s, e]) => ({ smallest: s, largest: e - 1 }))
    if (JSON.stringify(desc) !== JSON.stringify(want)) fail(`descendingInclusive(${limit})`)
  }
}

t.test('RangeSet behaves like Set<number> (property)', async (t) => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
      const rs = new RangeSet()
      const model = new Set<number>()
      ops.forEach((o, step) => {
        const where = `step ${step} ${JSON.stringify(o)}`
        switch (o.op) {
          case 'add': {
            const added = rs.add(o.value)
            const want = !model.has(o.value)
            model.add(o.value)
            if (added !== want) throw new Error(`${where}: add returned ${added}`)
            break
          }
          case 'addRange': {
            let want = 0
            for (let v = o.start; v < o.end; v++) {
              if (!model.has(v)) want++
              model.add(v)
            }
            const got = rs.addRange(o.start, o.end)
            if (got !== want) throw new Error(`${where}: addRange returned ${got}, want ${want}`)
            break
          }
          case 'removeBelow':
            rs.removeBelow(o.value)
            for (const v of [...model]) if (v < o.value) model.delete(v)
            break
          case 'truncateToNewest': {
            rs.truncateToNewest(o.maxRanges)
            const ranges = modelRanges(model)
            for (const [s, e] of ranges.slice(0, Math.max(0, ranges.length - o.maxRanges))) for (let v = s; v < e; v++) model.delete(v)
            break
          }
          case 'clear':
            rs.clear()
            model.clear()
            break
        }
        check(rs, model, where)
      })
    }),
    fcParams(3000),
  )
  t.pass('3000 random operation sequences')
})

t.test('addRange merges across several ranges and counts only new members', async (t) => {
  const rs = new RangeSet()
  t.equal(rs.addRange(10, 12), 2)
  t.equal(rs.addRange(14, 16), 2)
  t.equal(rs.addRange(20, 22), 2)
  t.equal(rs.addRange(0, 2), 2, 'below everything')
  t.same(rs.ranges(), [[0, 2], [10, 12], [14, 16], [20, 22]])
  t.equal(rs.addRange(11, 21), 10 - 4, 'bridges three ranges; 11, 14, 15, 20 were members')
  t.same(rs.ranges(), [[0, 2], [10, 22]])
  t.equal(rs.addRange(2, 10), 8, 'adjacent on both sides joins')
  t.same(rs.ranges(), [[0, 22]])
  t.equal(rs.addRange(5, 5), 0, 'empty range')
  t.equal(rs.addRange(7, 3), 0, 'inverted range')
  t.equal(rs.addRange(0, 22), 0, 'already covered')
  t.equal(rs.addRange(22, 23), 1, 'appending adjacent at the top extends')
  t.equal(rs.rangeCount, 1)
})

t.test('removeBelow inside a range trims it; truncateToNewest keeps the newest', async (t) => {
  const rs = new RangeSet()
  rs.addRange(0, 10)
  rs.addRange(20, 30)
  rs.addRange(40, 50)
  rs.removeBelow(5)
  t.same(rs.ranges(), [[5, 10], [20, 30], [40, 50]])
  rs.removeBelow(10)
  t.same(rs.ranges(), [[20, 30], [40, 50]], 'removing up to a range end drops it')
  rs.truncateToNewest(1)
  t.same(rs.ranges(), [[40, 50]])
  rs.truncateToNewest(5)
  t.same(rs.ranges(), [[40, 50]], 'no-op when under the limit')
  t.same(rs.descendingInclusive(10), [{ smallest: 40, largest: 49 }])
})

t.test('large values (packet numbers above 2^32) and the append fast path', async (t) => {
  const rs = new RangeSet()
  const base = 2 ** 40
  for (let i = 0; i < 1000; i++) if (i % 10 !== 3) rs.add(base + i)
  t.equal(rs.rangeCount, 101, '[0,3) then one range per gap')
  t.equal(rs.size(), 900)
  t.equal(rs.min, base)
  t.equal(rs.max, base + 999)
  t.ok(rs.has(base + 2))
  t.notOk(rs.has(base + 3))
  t.equal(rs.descendingInclusive(1)[0].largest, base + 999)
  t.equal(rs.descendingInclusive(1)[0].smallest, base + 994)
})
