import t from 'tap'
import { Bbr, BBR_HIGH_GAIN } from '../../src/core/cc/bbr.js'
import type { RateSample } from '../../src/core/cc/controller.js'
import { createCongestionController } from '../../src/core/cc/index.js'
import { SeededRng } from '../../src/core/rng.js'
import { runPathSim, type PathSimOptions } from './sim.js'

const MSS = 1200
const RATE = 1250 // 10 Mbit/s in bytes/ms
const RTT = 100
const BDP = RATE * RTT

const path = (cc: Bbr | ReturnType<typeof createCongestionController>, over: Partial<PathSimOptions> = {}) =>
  runPathSim({
    cc,
    rng: new SeededRng(over.rng?.seed ?? 42),
    bottleneckBytesPerMs: RATE,
    bufferBytes: BDP,
    oneWayDelayMs: RTT / 2,
    lossRate: 0,
    durationMs: 60_000,
    measureFromMs: 10_000,
    ...over,
  })

const pct = (x: number): string => `${(100 * x).toFixed(1)} %`

t.test('goodput on a 10 Mbit/s, 100 ms path with a 1-BDP drop-tail buffer', async (t) => {
  const seeds = [1, 2, 3]
  for (const seed of seeds) {
    const bbr0 = path(new Bbr({ maxDatagramBytes: MSS, rng: new SeededRng(seed) }), { rng: new SeededRng(seed) })
    const bbr1 = path(new Bbr({ maxDatagramBytes: MSS, rng: new SeededRng(seed) }), { rng: new SeededRng(seed), lossRate: 0.01 })
    const reno1 = path(createCongestionController('newreno', { maxDatagramBytes: MSS }), { rng: new SeededRng(seed), lossRate: 0.01 })
    const cubic1 = path(createCongestionController('cubic', { maxDatagramBytes: MSS }), { rng: new SeededRng(seed), lossRate: 0.01 })
    t.comment(
      `seed ${seed}: BBR 0 % loss ${pct(bbr0.utilization)} (mean RTT ${bbr0.meanRttMs.toFixed(1)} ms), ` +
        `BBR 1 % loss ${pct(bbr1.utilization)}, NewReno 1 % loss ${pct(reno1.utilization)}, CUBIC 1 % loss ${pct(cubic1.utilization)}`,
    )
    t.ok(bbr0.utilization >= 0.95, `seed ${seed}: BBR >= 95 % at 0 % loss (${pct(bbr0.utilization)})`)
    t.ok(bbr1.utilization >= 0.85, `seed ${seed}: BBR >= 85 % at 1 % loss (${pct(bbr1.utilization)})`)
    t.ok(reno1.utilization < 0.5, `seed ${seed}: NewReno far lower at 1 % loss (${pct(reno1.utilization)})`)
    t.ok(bbr1.utilization > 3 * reno1.utilization, 'BBR beats NewReno at 1 % loss by a wide margin')
    t.ok(bbr1.packetsLost > 0.009 * bbr1.packetsSent, 'the loss really happened')
  }
})

t.test('goodput holds with aggregated, delayed acks (every 10th packet or 25 ms)', async (t) => {
  const bbr = path(new Bbr({ maxDatagramBytes: MSS, rng: new SeededRng(3) }), { lossRate: 0.01, ackEvery: 10, maxAckDelayMs: 25 })
  const reno = path(createCongestionController('newreno', { maxDatagramBytes: MSS }), { lossRate: 0.01, ackEvery: 10, maxAckDelayMs: 25 })
  t.comment(`1 % loss, ack every 10: BBR ${pct(bbr.utilization)} (max RTT ${bbr.maxRttMs.toFixed(1)} ms), NewReno ${pct(reno.utilization)}`)
  t.ok(bbr.utilization >= 0.85)
  t.ok(bbr.maxRttMs < 1.5 * RTT)
  t.ok(reno.utilization < bbr.utilization / 3)
})

t.test('BBR keeps the queue bounded where loss-based control fills the buffer', async (t) => {
  // A 10-BDP buffer: NewReno fills it until it overflows; BBR keeps about BDP in flight.
  const bbr = path(new Bbr({ maxDatagramBytes: MSS, rng: new SeededRng(5) }), { bufferBytes: 10 * BDP })
  const reno = path(createCongestionController('newreno', { maxDatagramBytes: MSS }), { bufferBytes: 10 * BDP })
  t.comment(
    `10-BDP buffer: BBR ${pct(bbr.utilization)} mean RTT ${bbr.meanRttMs.toFixed(1)} ms max ${bbr.maxRttMs.toFixed(1)} ms; ` +
      `NewReno ${pct(reno.utilization)} mean RTT ${reno.meanRttMs.toFixed(1)} ms max ${reno.maxRttMs.toFixed(1)} ms`,
  )
  t.ok(bbr.maxRttMs < 1.5 * RTT, `BBR max RTT ${bbr.maxRttMs.toFixed(1)} ms < 1.5 x base`)
  t.ok(bbr.meanRttMs < 1.25 * RTT)
  t.ok(reno.maxRttMs > 4 * RTT, 'NewReno builds a large queue')
  t.ok(bbr.utilization >= 0.95)
  // No growth over time: the second half of a longer run looks like the first.
  const early = path(new Bbr({ maxDatagramBytes: MSS, rng: new SeededRng(5) }), { bufferBytes: 10 * BDP, durationMs: 40_000, measureFromMs: 10_000 })
  const late = path(new Bbr({ maxDatagramBytes: MSS, rng: new SeededRng(5) }), { bufferBytes: 10 * BDP, durationMs: 120_000, measureFromMs: 90_000 })
  t.ok(Math.abs(late.meanRttMs - early.meanRttMs) < 5, `mean RTT ${early.meanRttMs.toFixed(1)} -> ${late.meanRttMs.toFixed(1)} ms`)
})

t.test('state machine: Startup -> Drain -> ProbeBW with gain cycling', async (t) => {
  const cc = new Bbr({ maxDatagramBytes: MSS, rng: new SeededRng(9) })
  const seen: string[] = []
  const gains = new Set<number>()
  path(cc, {
    durationMs: 10_000,
    onAck: () => {
      if (seen[seen.length - 1] !== cc.state) seen.push(cc.state)
      if (cc.state === 'probe_bw') gains.add(cc.currentPacingGain)
    },
  })
  t.same(seen, ['startup', 'drain', 'probe_bw'])
  t.same([...gains].sort(), [0.75, 1, 1.25])
  t.ok(Math.abs(cc.bottleneckBandwidthBytesPerMs / RATE - 1) < 0.02, `btlBw ${cc.bottleneckBandwidthBytesPerMs}`)
  t.ok(Math.abs(cc.minRttMs - (RTT + MSS / RATE)) < 0.01, `min RTT ${cc.minRttMs}`)
  const bdp = cc.bottleneckBandwidthBytesPerMs * cc.minRttMs
  t.ok(cc.congestionWindowBytes >= 2 * bdp && cc.congestionWindowBytes < 2.3 * bdp, 'cwnd = 2 BDP + headroom')
  const m = cc.metrics()
  t.equal(m.state, 'probe_bw')
  t.ok(typeof m.btlBwBytesPerMs === 'number' && typeof m.minRttMs === 'number' && typeof m.pacingRateBytesPerMs === 'number')
})

const ack = (nowMs: number, ackedBytes: number, bytesInFlight: number, rateSample?: RateSample) => ({
  ackedBytes,
  largestAckedSentTimeMs: nowMs - RTT,
  latestRttMs: RTT,
  smoothedRttMs: RTT,
  minRttMs: RTT,
  bytesInFlight,
  rateSample,
})

/** Runs BBR into ProbeBW on the model path and returns it with the time reached. */
const steadyBbr = (): Bbr => {
  const cc = new Bbr({ maxDatagramBytes: MSS, rng: new SeededRng(3) })
  path(cc, { durationMs: 5_000 })
  return cc
}

t.test('random losses do not shrink the window; persistent congestion does', async (t) => {
  const cc = steadyBbr()
  const cwnd = cc.congestionWindowBytes
  for (let i = 0; i < 50; i++) {
    cc.onLoss(5_000 + i, { lostBytes: MSS, largestLostSentTimeMs: 4_900 + i, persistentCongestion: false, bytesInFlight: BDP })
  }
  t.equal(cc.congestionWindowBytes, cwnd)
  cc.onLoss(5_100, { lostBytes: 10 * MSS, largestLostSentTimeMs: 5_000, persistentCongestion: true, bytesInFlight: 0 })
  t.equal(cc.congestionWindowBytes, 4 * MSS, 'minimum window of 4 packets')
  // Acks regrow it by the delivered bytes, up to the model's target.
  const rs: RateSample = { deliveryRateBytesPerMs: RATE, intervalMs: RTT, deliveredBytes: 0, priorDelivered: 0, isAppLimited: false, rttMs: RTT }
  cc.onAck(5_200, ack(5_200, 4 * MSS, 0, rs))
  t.equal(cc.congestionWindowBytes, 8 * MSS)
  for (let i = 0; i < 400; i++) cc.onAck(5_201 + i, ack(5_201 + i, RATE, 0, rs))
  t.comment(`cwnd before ${cwnd}, after regrowth ${cc.congestionWindowBytes}`)
  t.ok(Math.abs(cc.congestionWindowBytes / cwnd - 1) < 0.05, 'back to 2 BDP + headroom')
})

t.test('ProbeRTT: after 10 s without a new min RTT the window drops to 4 packets, then recovers', async (t) => {
  const cc = new Bbr({ maxDatagramBytes: MSS, rng: new SeededRng(4) })
  const states: { now: number; state: string; cwnd: number }[] = []
  // The forward path gets 20 ms longer at t = 3 s: the old min
  // RTT is never seen again, so it expires 10 s after it was last observed.
  path(cc, {
    durationMs: 16_000,
    extraDelayMs: (now) => (now >= 3_000 ? 20 : 0),
    onAck: (now) => {
      if (states.length === 0 || states[states.length - 1].state !== cc.state) states.push({ now, state: cc.state, cwnd: cc.congestionWindowBytes })
    },
  })
  const probe = states.find((s) => s.state === 'probe_rtt')
  t.ok(probe !== undefined, 'entered ProbeRTT')
  t.ok(probe !== undefined && probe.now > 12_000 && probe.now < 13_500, `at ${probe?.now.toFixed(0)} ms`)
  t.equal(probe?.cwnd, 4 * MSS)
  const after = states[states.indexOf(probe!) + 1]
  t.equal(after?.state, 'probe_bw', 'back to ProbeBW')
  t.ok(after !== undefined && after.now - probe!.now >= 200, `ProbeRTT lasted ${(after.now - probe!.now).toFixed(0)} ms`)
  t.ok(Math.abs(cc.minRttMs - (RTT + 20 + MSS / RATE)) < 0.5, `new min RTT ${cc.minRttMs.toFixed(2)}`)
  t.equal(cc.state, 'probe_bw')
})

t.test('ProbeRTT samples do not replace the bandwidth estimate (short RTT: ProbeRTT spans > 10 rounds)', async (t) => {
  const rate = 12_500 // 100 Mbit/s
  const cc = new Bbr({ maxDatagramBytes: MSS, rng: new SeededRng(4) })
  let probes = 0
  let last = ''
  let minBw = Infinity
  const r = runPathSim({
    cc,
    rng: new SeededRng(1),
    bottleneckBytesPerMs: rate,
    bufferBytes: rate * 20,
    oneWayDelayMs: 10,
    lossRate: 0,
    durationMs: 30_000,
    measureFromMs: 3_000,
    extraDelayMs: (now) => (now >= 3_000 ? 4 : 0),
    onAck: (now) => {
      if (cc.state === 'probe_rtt' && last !== 'probe_rtt') probes++
      last = cc.state
      if (now > 5_000) minBw = Math.min(minBw, cc.bottleneckBandwidthBytesPerMs)
    },
  })
  t.comment(`100 Mbit/s, 20 ms: ${probes} ProbeRTT episodes, lowest btlBw ${minBw.toFixed(0)} bytes/ms, goodput ${pct(r.utilization)}`)
  t.ok(probes >= 1)
  t.ok(minBw > 0.95 * rate, 'bandwidth estimate survives ProbeRTT')
  t.ok(r.utilization > 0.95)
})

t.test('pacing before the first bandwidth sample, and app-limited samples', async (t) => {
  const cc = new Bbr({ maxDatagramBytes: MSS })
  t.equal(cc.pacingRateBytesPerMs(100), (BBR_HIGH_GAIN * 12_000) / 100, 'initial window over srtt at startup gain')
  t.equal(cc.pacingRateBytesPerMs(0), BBR_HIGH_GAIN * 12_000, 'no RTT yet: 1 ms')
  const sample = (rate: number, isAppLimited: boolean, priorDelivered: number): RateSample => ({
    deliveryRateBytesPerMs: rate,
    intervalMs: RTT,
    deliveredBytes: rate * RTT,
    priorDelivered,
    isAppLimited,
    rttMs: RTT,
  })
  cc.onAck(100, ack(100, MSS, 0, sample(500, false, 0)))
  t.equal(cc.bottleneckBandwidthBytesPerMs, 500)
  t.equal(cc.pacingRateBytesPerMs(100), BBR_HIGH_GAIN * 500 * 0.99)
  // A low app-limited sample does not lower the estimate; a higher one raises it.
  cc.onAck(200, ack(200, MSS, 0, sample(100, true, MSS)))
  t.equal(cc.bottleneckBandwidthBytesPerMs, 500)
  cc.onAck(300, ack(300, MSS, 0, sample(800, true, 2 * MSS)))
  t.equal(cc.bottleneckBandwidthBytesPerMs, 800)
  t.equal(cc.roundCount, 3)
})

t.test('factory', async (t) => {
  for (const name of ['newreno', 'cubic', 'bbr'] as const) {
    const cc = createCongestionController(name, { maxDatagramBytes: MSS })
    t.equal(cc.name, name)
    t.equal(cc.congestionWindowBytes, 12_000)
  }
  t.throws(() => createCongestionController('vegas' as never, { maxDatagramBytes: MSS }))
})
