/** RttEstimator against RFC 9002 §5 (and the PTO / loss-delay formulas of §6). */
import fc from 'fast-check'
import t from 'tap'
import { RttEstimator } from '../../src/core/recovery/rtt.js'
import { fcParams } from '../wire/helpers.js'

const make = (initialRttMs = 333, maxAckDelayMs = 25): RttEstimator => new RttEstimator({ initialRttMs, maxAckDelayMs })

t.test('before any sample: initial RTT, variance half of it (RFC 9002 §6.2.2)', async (t) => {
  const r = make(333, 25)
  t.equal(r.hasSample, false)
  t.equal(r.smoothedRttMs, 333)
  t.equal(r.rttVarianceMs, 166.5)
  t.equal(r.minRttMs, Infinity)
  t.equal(r.probeTimeoutMs(1), 333 + 4 * 166.5 + 25)
  t.equal(r.lossDelayMs(1), (9 / 8) * 333)
})

t.test('first sample replaces the initial values; its ack delay is ignored', async (t) => {
  const r = make()
  r.update(100, 20)
  t.equal(r.hasSample, true)
  t.equal(r.latestRttMs, 100)
  t.equal(r.smoothedRttMs, 100)
  t.equal(r.rttVarianceMs, 50)
  t.equal(r.minRttMs, 100)
})

t.test('smoothing: srtt 7/8 + 1/8 sample, rttvar 3/4 + 1/4 |srtt - sample|', async (t) => {
  const r = make()
  r.update(100, 0)
  r.update(200, 0)
  t.equal(r.rttVarianceMs, 0.75 * 50 + 0.25 * 100)
  t.equal(r.smoothedRttMs, 0.875 * 100 + 0.125 * 200)
  t.equal(r.minRttMs, 100)
  t.equal(r.latestRttMs, 200)
  r.update(80, 0)
  t.equal(r.minRttMs, 80, 'min RTT follows the smallest sample')
  t.equal(r.smoothedRttMs, 0.875 * 112.5 + 0.125 * 80)
  t.equal(r.rttVarianceMs, 0.75 * 62.5 + 0.25 * Math.abs(112.5 - 80))
})

t.test('ack delay is subtracted only when the result stays >= min RTT', async (t) => {
  const r = make(333, 25)
  r.update(100, 0) // min 100
  r.update(120, 10) // 120 - 10 = 110 >= 100: adjusted
  t.equal(r.smoothedRttMs, 0.875 * 100 + 0.125 * 110)
  const srtt1 = r.smoothedRttMs
  const var1 = r.rttVarianceMs
  r.update(105, 10) // 105 - 10 = 95 < 100: not adjusted, 105 used
  t.equal(r.smoothedRttMs, 0.875 * srtt1 + 0.125 * 105)
  t.equal(r.rttVarianceMs, 0.75 * var1 + 0.25 * Math.abs(srtt1 - 105))
  t.equal(r.latestRttMs, 105, 'latest RTT is the raw sample')
  t.equal(r.minRttMs, 100, 'min RTT is never ack-delay adjusted')
})

t.test('ack delay is capped at the peer max_ack_delay', async (t) => {
  const r = make(333, 25)
  r.update(100, 0)
  r.update(200, 90) // capped to 25: 175
  t.equal(r.smoothedRttMs, 0.875 * 100 + 0.125 * 175)
  r.maxAckDelayMs = 100 // the peer's HELLO changes it
  const before = r.smoothedRttMs
  r.update(200, 90) // 110
  t.equal(r.smoothedRttMs, 0.875 * before + 0.125 * 110)
})

t.test('exactly min RTT after subtraction still adjusts', async (t) => {
  const r = make()
  r.update(50, 0)
  r.update(60, 10) // 50 == min
  t.equal(r.smoothedRttMs, 50)
  t.equal(r.rttVarianceMs, 0.75 * 25)
})

t.test('zero and negative samples are clamped positive', async (t) => {
  const r = make()
  r.update(0, 0)
  t.ok(r.latestRttMs > 0 && r.smoothedRttMs > 0 && r.minRttMs > 0)
  r.update(-5, 0)
  t.ok(r.latestRttMs > 0)
})

t.test('probeTimeoutMs and lossDelayMs', async (t) => {
  const r = make(333, 25)
  r.update(100, 0) // srtt 100, var 50
  t.equal(r.probeTimeoutMs(1), 100 + 200 + 25)
  t.equal(r.lossDelayMs(1), 112.5)
  r.update(300, 0) // latest 300 > srtt 125
  t.equal(r.lossDelayMs(1), (9 / 8) * 300, 'uses the larger of latest and smoothed')
  const low = make(1, 0)
  low.update(0.1, 0)
  t.equal(low.probeTimeoutMs(5), 0.1 + 5, 'granularity floors 4 * rttvar')
  t.equal(low.lossDelayMs(5), 5, 'granularity floors the loss delay')
})

t.test('smoothed RTT stays within [min sample, max sample] and min RTT is the min (property)', async () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ rtt: fc.double({ min: 0.5, max: 5000, noNaN: true }), delay: fc.double({ min: 0, max: 100, noNaN: true }) }), { minLength: 1, maxLength: 50 }),
      (samples) => {
        const r = make(333, 25)
        for (const s of samples) r.update(s.rtt, s.delay)
        const min = Math.min(...samples.map((s) => s.rtt))
        const max = Math.max(...samples.map((s) => s.rtt))
        const eps = 1e-9
        return (
          r.minRttMs === min &&
          // adjusted samples are never below min RTT, so neither is their average
          r.smoothedRttMs >= min - eps &&
          r.smoothedRttMs <= max + eps &&
          r.rttVarianceMs >= 0 &&
          r.latestRttMs === samples[samples.length - 1].rtt
        )
      },
    ),
    fcParams(3000),
  )
})
