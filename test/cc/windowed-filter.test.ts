import fc from 'fast-check'
import t from 'tap'
import { WindowedMaxFilter } from '../../src/core/cc/windowed-filter.js'
import { fcSeed } from '../wire/helpers.js'

fc.configureGlobal({ seed: fcSeed() }) // reproducible; PIGEON_FC_SEED explores

t.test('tracks the maximum and forgets it after the window', async (t) => {
  const f = new WindowedMaxFilter(10)
  t.equal(f.update(0, 5), 5)
  t.equal(f.update(1, 3), 5)
  t.equal(f.update(5, 4), 5)
  t.equal(f.update(10, 2), 5, 'still inside the window')
  t.equal(f.update(11, 2), 4, 'the 5 aged out; the best later sample takes over')
  t.equal(f.update(16, 1), 2)
  t.equal(f.update(30, 1), 1, 'everything aged out')
  t.equal(f.update(31, 9), 9)
})

t.test('result is a sample from the window, at least the newest sample, at most the true max', async (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 20 }),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 1000 })), { minLength: 1, maxLength: 300 }),
      (window, steps) => {
        const f = new WindowedMaxFilter(window)
        const samples: [number, number][] = []
        let time = 0
        for (const [dt, value] of steps) {
          time += dt
          samples.push([time, value])
          const best = f.update(time, value)
          const inWindow = samples.filter(([st]) => time - st <= window).map(([, v]) => v)
          if (best < value || best > Math.max(...inWindow) || !inWindow.includes(best)) return false
        }
        return true
      },
    ),
  )
  t.pass()
})
