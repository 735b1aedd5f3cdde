import t from 'tap'
import { Cubic, CUBIC_ALPHA, CUBIC_BETA, CUBIC_C } from '../../src/core/cc/cubic.js'
import { AckClock } from './ack-clock.js'

const MSS = 1200

/** RFC 9438 eq. 1 and 2, in segments and seconds, computed independently of the code. */
const wCubicSegments = (tSeconds: number, wMaxSegments: number, cwndEpochSegments: number): number => {
  const k = Math.cbrt((wMaxSegments - cwndEpochSegments) / CUBIC_C)
  return CUBIC_C * (tSeconds - k) ** 3 + wMaxSegments
}

/** Starts a CUBIC flow with a full window of `wMax` segments and loses one packet. */
const afterLoss = (wMaxSegments: number, rttMs: number): { cc: Cubic; clock: AckClock } => {
  const cc = new Cubic({ maxDatagramBytes: MSS, initialWindowBytes: wMaxSegments * MSS })
  const clock = new AckClock(cc, MSS, rttMs)
  clock.nowMs = 1
  clock.loseOldest()
  return { cc, clock }
}

t.test('constants', async (t) => {
  t.equal(CUBIC_BETA, 0.7)
  t.equal(CUBIC_C, 0.4)
  t.ok(Math.abs(CUBIC_ALPHA - 0.5294) < 1e-4)
})

t.test('a loss reduces the window by beta and sets W_max and K', async (t) => {
  const { cc, clock } = afterLoss(1000, 100)
  t.equal(cc.congestionWindowBytes, 700 * MSS)
  t.equal(cc.maxWindowBytes, 1000 * MSS)
  t.equal(cc.metrics().state, 'recovery')
  // Further losses from the same flight are in the same recovery period.
  clock.loseOldest()
  t.equal(cc.congestionWindowBytes, 700 * MSS)
  clock.runUntil(300)
  t.ok(cc.epochStartTimeMs > 100 && cc.epochStartTimeMs <= 300, `epoch started after recovery (${cc.epochStartTimeMs})`)
  t.ok(Math.abs(cc.kMs - 1000 * Math.cbrt(750)) < 1e-6, `K = cbrt(W_max * (1 - beta) / C) = ${cc.kMs} ms`)
})

t.test('the window follows the cubic curve after a loss (large RTT: cubic region)', async (t) => {
  const { cc, clock } = afterLoss(1000, 100)
  clock.runUntil(300)
  const epochMs = cc.epochStartTimeMs
  for (const tSeconds of [0.5, 1, 3, 6, 9.0856, 12, 15, 18]) {
    clock.runUntil(epochMs + tSeconds * 1000)
    const expected = wCubicSegments(tSeconds, 1000, 700)
    const actual = cc.congestionWindowBytes / MSS
    t.comment(`t=${tSeconds}s cwnd=${actual.toFixed(1)} W_cubic=${expected.toFixed(1)} segments`)
    t.ok(Math.abs(actual / expected - 1) < 0.01, `t=${tSeconds}s: ${actual.toFixed(1)} within 1% of ${expected.toFixed(1)}`)
  }
  // Concave then convex: flat around K, accelerating after it.
  t.equal(cc.metrics().state, 'congestion_avoidance')
})

t.test('Reno-friendly region: with a small RTT the window grows like Reno (W_est)', async (t) => {
  const rttMs = 2
  const { cc, clock } = afterLoss(100, rttMs)
  clock.runUntil(3 * rttMs)
  const epochMs = cc.epochStartTimeMs
  // W_est grows by alpha per RTT until it reaches the pre-loss window, then by 1 per RTT.
  const wEst = (tSeconds: number): number => {
    const rounds = (tSeconds * 1000) / rttMs
    const roundsToPrior = 30 / CUBIC_ALPHA
    return rounds < roundsToPrior ? 70 + CUBIC_ALPHA * rounds : 100 + (rounds - roundsToPrior)
  }
  for (const tSeconds of [0.04, 0.1, 0.3, 1]) {
    clock.runUntil(epochMs + tSeconds * 1000)
    const actual = cc.congestionWindowBytes / MSS
    const cubic = wCubicSegments(tSeconds, 100, 70)
    t.comment(`t=${tSeconds}s cwnd=${actual.toFixed(1)} W_est=${wEst(tSeconds).toFixed(1)} W_cubic=${cubic.toFixed(1)}`)
    t.ok(Math.abs(actual / wEst(tSeconds) - 1) < 0.02, `t=${tSeconds}s follows W_est`)
    t.ok(actual > cubic, 'above the cubic curve')
  }
})

t.test('fast convergence lowers W_max when the window shrinks again', async (t) => {
  const { cc, clock } = afterLoss(1000, 100)
  clock.runUntil(2000)
  const cwnd = cc.congestionWindowBytes
  t.ok(cwnd < 1000 * MSS)
  clock.loseOldest()
  t.ok(Math.abs(cc.maxWindowBytes - (cwnd * (1 + CUBIC_BETA)) / 2) < 1, 'W_max = cwnd * (1 + beta) / 2')
  t.ok(Math.abs(cc.congestionWindowBytes - cwnd * CUBIC_BETA) <= 1)
})

t.test('slow start is Reno slow start', async (t) => {
  const cc = new Cubic({ maxDatagramBytes: MSS })
  const clock = new AckClock(cc, MSS, 100)
  clock.runUntil(300)
  t.equal(cc.congestionWindowBytes, 80 * MSS)
  t.equal(cc.metrics().state, 'slow_start')
})

t.test('persistent congestion collapses to the minimum window', async (t) => {
  const { cc, clock } = afterLoss(100, 100)
  clock.runUntil(1000)
  clock.nowMs = 1001
  clock.loseOldest(true)
  t.equal(cc.congestionWindowBytes, 2 * MSS)
  t.equal(cc.metrics().state, 'slow_start')
  t.ok(Number.isNaN(cc.epochStartTimeMs))
})

t.test('idle time does not count as epoch time', async (t) => {
  const { cc, clock } = afterLoss(1000, 100)
  clock.runUntil(1000)
  const epoch = cc.epochStartTimeMs
  // Everything acked, then nothing sent for 5 s; the next send restarts from an empty pipe.
  cc.onPacketSent(1000, { packetNumber: 0, sentTimeMs: 1000, sizeBytes: MSS }, 2 * MSS)
  cc.onPacketSent(6000, { packetNumber: 1, sentTimeMs: 6000, sizeBytes: MSS }, MSS)
  t.equal(cc.epochStartTimeMs, epoch + 5000)
})

t.test('pacing rate', async (t) => {
  const cc = new Cubic({ maxDatagramBytes: MSS })
  t.equal(cc.pacingRateBytesPerMs(0), Infinity)
  t.equal(cc.pacingRateBytesPerMs(50), (2 * 12000) / 50)
})
