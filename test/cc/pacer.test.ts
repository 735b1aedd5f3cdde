import fc from 'fast-check'
import t from 'tap'
import { Pacer } from '../../src/core/cc/pacer.js'
import { SeededRng } from '../../src/core/rng.js'
import { fcSeed } from '../wire/helpers.js'

fc.configureGlobal({ seed: fcSeed() }) // reproducible; PIGEON_FC_SEED explores

const SIZE = 1200

/** Sends as fast as the pacer allows, waking `lateMs()` after each returned time. */
const drive = (opts: { pacer: Pacer; rate: number; startMs: number; count: number; lateMs?: () => number }): number[] => {
  const times: number[] = []
  let now = opts.startMs
  for (let i = 0; i < opts.count; i++) {
    let at = opts.pacer.earliestSendTimeMs(now, SIZE, opts.rate)
    let guard = 0
    while (at > now) {
      now = at + (opts.lateMs?.() ?? 0)
      at = opts.pacer.earliestSendTimeMs(now, SIZE, opts.rate)
      if (++guard > 3) throw new Error(`pacer spins at ${now}`)
    }
    opts.pacer.onPacketSent(now, SIZE, opts.rate)
    times.push(now)
  }
  return times
}

t.test('infinite rate never delays', async (t) => {
  const pacer = new Pacer({ maxBurstBytes: 10 * SIZE })
  let delayed = 0
  for (let i = 0; i < 1000; i++) {
    if (pacer.earliestSendTimeMs(5, SIZE, Infinity) !== 5) delayed++
    pacer.onPacketSent(5, SIZE, Infinity)
  }
  t.equal(delayed, 0)
  // Switching back to a finite rate starts from a full bucket, not a debt.
  t.equal(pacer.earliestSendTimeMs(5, SIZE, 100), 5)
})

t.test('long-run rate matches the configured rate within 1 %', async (t) => {
  for (const [rate, startMs, jitter] of [
    [1250, 0, 0],
    [1250, 1e9, 0], // large clock values: no drift from rounding
    [125, 0, 0.7], // late timer wake-ups of up to 0.7 ms
    [12_500, 1e9 + 0.3, 0.9],
    [37.5, 0, 5],
  ] as const) {
    const rng = new SeededRng(rate)
    const pacer = new Pacer({ maxBurstBytes: 10 * SIZE })
    const count = 50_000
    const times = drive({ pacer, rate, startMs, count, lateMs: () => rng.nextFloat() * jitter })
    // Skip the initial burst: measure from the 11th packet on.
    const measured = ((count - 11) * SIZE) / (times[count - 1] - times[10])
    t.comment(`rate ${rate} bytes/ms from ${startMs}, jitter ${jitter} ms: measured ${measured.toFixed(3)}`)
    t.ok(Math.abs(measured / rate - 1) < 0.01, `rate ${rate}: ${measured}`)
  }
})

t.test('a burst after idle is bounded by the bucket', async (t) => {
  const pacer = new Pacer({ maxBurstBytes: 10 * SIZE })
  const rate = 125 // 1 Mbit/s: capacity is maxBurstBytes
  t.equal(pacer.capacityBytes(rate), 10 * SIZE)
  const first = drive({ pacer, rate, startMs: 0, count: 30 })
  t.equal(first.filter((x) => x === 0).length, 10, 'initial burst of 10 packets')
  t.ok(Math.abs(first[10] - SIZE / rate) < 1e-9, 'then one packet per size/rate')
  // Idle for a second: again at most 10 packets at once.
  const idleStart = first[29] + 1000
  const again = drive({ pacer, rate, startMs: idleStart, count: 30 })
  t.equal(again.filter((x) => x === idleStart).length, 10)
  // At high rates the bucket holds 2 ms of data so a 1 ms timer can keep up.
  t.equal(pacer.capacityBytes(125_000), 250_000)
  t.equal(new Pacer({ maxBurstBytes: SIZE, burstIntervalMs: 1 }).capacityBytes(125_000), 125_000)
})

t.test('never sends more than capacity + rate * interval (property)', async (t) => {
  fc.assert(
    fc.property(
      fc.double({ min: 1, max: 50_000, noNaN: true }),
      fc.integer({ min: 1, max: 20 }),
      fc.double({ min: 0, max: 3, noNaN: true }),
      fc.integer(),
      (rate, burstPackets, jitter, seed) => {
        const rng = new SeededRng(seed)
        const pacer = new Pacer({ maxBurstBytes: burstPackets * SIZE })
        const cap = pacer.capacityBytes(rate)
        const times = drive({ pacer, rate, startMs: rng.nextFloat() * 1e6, count: 300, lateMs: () => rng.nextFloat() * jitter })
        for (let j = 0; j < times.length; j++) {
          for (let i = j; i < times.length; i++) {
            const bytes = (i - j + 1) * SIZE
            // 0.5 byte of rounding slack per packet.
            if (bytes > cap + SIZE + rate * (times[i] - times[j]) + 0.5 * (i - j + 1)) return false
          }
        }
        return true
      },
    ),
    { numRuns: 60 },
  )
  t.pass('bounded')
})

t.test('rate changes take effect and oversized packets still pass', async (t) => {
  const pacer = new Pacer({ maxBurstBytes: 2 * SIZE })
  drive({ pacer, rate: 1000, startMs: 0, count: 10 })
  // Drop the rate tenfold: the gap becomes size / rate.
  const slow = drive({ pacer, rate: 100, startMs: 20, count: 20 })
  t.ok(Math.abs((slow[19] - slow[9]) / 10 - SIZE / 100) < 1e-6)
  // A packet larger than the bucket waits for a full bucket, then goes (and repays the debt).
  const big = new Pacer({ maxBurstBytes: 1000 })
  t.equal(big.earliestSendTimeMs(0, 5000, 10), 0)
  big.onPacketSent(0, 5000, 10)
  t.equal(big.availableBytes, -4000)
  t.ok(Math.abs(big.earliestSendTimeMs(0, 5000, 10) - 500) < 1e-9)
  t.equal(new Pacer({ maxBurstBytes: 1000 }).earliestSendTimeMs(0, 1200, 0), Infinity, 'zero rate: never')
  t.throws(() => new Pacer({ maxBurstBytes: 0 }))
})
