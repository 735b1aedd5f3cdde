import t from 'tap'
import { NewReno, defaultInitialWindowBytes } from '../../src/core/cc/new-reno.js'
import { AckClock } from './ack-clock.js'

const MSS = 1200
const RTT = 100

t.test('initial window follows RFC 9002', async (t) => {
  t.equal(defaultInitialWindowBytes(1200), 12000)
  t.equal(defaultInitialWindowBytes(1472), 14720)
  t.equal(defaultInitialWindowBytes(500), 5000)
  t.equal(new NewReno({ maxDatagramBytes: MSS }).congestionWindowBytes, 12000)
})

t.test('slow start doubles the window every round trip', async (t) => {
  const cc = new NewReno({ maxDatagramBytes: MSS })
  const clock = new AckClock(cc, MSS, RTT)
  for (let round = 1; round <= 6; round++) {
    clock.runUntil(round * RTT)
    t.equal(cc.congestionWindowBytes, 10 * MSS * 2 ** round, `round ${round}`)
    t.equal(cc.metrics().state, 'slow_start')
  }
})

t.test('loss halves the window once per recovery period', async (t) => {
  const cc = new NewReno({ maxDatagramBytes: MSS })
  const clock = new AckClock(cc, MSS, RTT)
  clock.runUntil(3 * RTT) // 80 packets
  const before = cc.congestionWindowBytes
  t.equal(before, 80 * MSS)
  clock.nowMs = 3 * RTT + 10
  clock.loseOldest() // sent at 2*RTT, before the recovery period starts
  t.equal(cc.congestionWindowBytes, before / 2)
  t.equal(cc.slowStartThresholdBytes, before / 2)
  t.equal(cc.metrics().state, 'recovery')
  t.equal(cc.metrics().ssthreshBytes, before / 2)

  // More losses from the same flight: same recovery period, no further reduction.
  clock.nowMs = 3 * RTT + 20
  clock.loseOldest()
  clock.loseOldest()
  t.equal(cc.congestionWindowBytes, before / 2)

  // Acks of packets sent before recovery started do not grow the window.
  clock.runUntil(3 * RTT + 99)
  t.equal(cc.congestionWindowBytes, before / 2)

  // A loss of a packet sent after the recovery period began starts a new one.
  clock.runUntil(4 * RTT + 50)
  cc.onLoss(4 * RTT + 50, { lostBytes: MSS, largestLostSentTimeMs: 3 * RTT + 30, persistentCongestion: false, bytesInFlight: 0 })
  t.equal(cc.congestionWindowBytes, before / 4)
})

t.test('congestion avoidance adds about one datagram per round trip', async (t) => {
  const cc = new NewReno({ maxDatagramBytes: MSS })
  const clock = new AckClock(cc, MSS, RTT)
  clock.runUntil(3 * RTT)
  clock.nowMs = 3 * RTT + 1
  clock.loseOldest()
  clock.runUntil(6 * RTT) // leave recovery
  t.equal(cc.metrics().state, 'congestion_avoidance')
  const start = cc.congestionWindowBytes
  clock.runUntil(26 * RTT)
  const perRound = (cc.congestionWindowBytes - start) / 20
  t.comment(`congestion avoidance growth: ${(perRound / MSS).toFixed(3)} datagrams per RTT`)
  t.ok(Math.abs(perRound - MSS) < 0.05 * MSS, `growth ${perRound} ~ ${MSS} per RTT`)
})

t.test('persistent congestion collapses to the minimum window, then slow start resumes', async (t) => {
  const cc = new NewReno({ maxDatagramBytes: MSS })
  const clock = new AckClock(cc, MSS, RTT)
  clock.runUntil(4 * RTT)
  clock.nowMs = 4 * RTT + 1
  clock.loseOldest(true)
  t.equal(cc.congestionWindowBytes, 2 * MSS)
  t.equal(cc.slowStartThresholdBytes, 80 * MSS)
  t.equal(cc.metrics().state, 'slow_start')
  // Acks for packets sent before the collapse grow the window again (no recovery period).
  cc.onAck(4 * RTT + 2, { ackedBytes: MSS, largestAckedSentTimeMs: 3 * RTT, latestRttMs: RTT, smoothedRttMs: RTT, minRttMs: RTT, bytesInFlight: 2 * MSS })
  t.equal(cc.congestionWindowBytes, 3 * MSS)

  const custom = new NewReno({ maxDatagramBytes: MSS, minimumWindowBytes: 4 * MSS })
  custom.onLoss(0, { lostBytes: MSS, largestLostSentTimeMs: 0, persistentCongestion: true, bytesInFlight: 0 })
  t.equal(custom.congestionWindowBytes, 4 * MSS)
})

t.test('an application-limited sender does not grow the window', async (t) => {
  const cc = new NewReno({ maxDatagramBytes: MSS })
  for (let i = 0; i < 50; i++) {
    cc.onAck(i, { ackedBytes: MSS, largestAckedSentTimeMs: i - RTT, latestRttMs: RTT, smoothedRttMs: RTT, minRttMs: RTT, bytesInFlight: 0 })
  }
  t.equal(cc.congestionWindowBytes, 12000)
})

t.test('pacing rate is a multiple of cwnd / srtt', async (t) => {
  const cc = new NewReno({ maxDatagramBytes: MSS })
  t.equal(cc.pacingRateBytesPerMs(0), Infinity)
  t.equal(cc.pacingRateBytesPerMs(100), (2 * 12000) / 100)
  cc.onLoss(1, { lostBytes: MSS, largestLostSentTimeMs: 0, persistentCongestion: false, bytesInFlight: 0 })
  t.equal(cc.pacingRateBytesPerMs(100), (1.25 * 6000) / 100)
})
