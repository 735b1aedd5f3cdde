import t from 'tap'
import { AckAggregation } from '../../src/core/cc/ack-aggregation.js'

const BW = 1250 // bytes/ms

t.test('smooth acks at the modelled rate need no headroom', async (t) => {
  const a = new AckAggregation()
  for (let i = 0; i < 1000; i++) a.onAck(i * 0.96, 1200, BW, 200_000, i % 100 === 0)
  t.ok(a.headroomBytes(BW) <= 1201, `headroom ${a.headroomBytes(BW)}`)
})

t.test('bursty acks (10 packets every 9.6 ms) ask for about one burst of headroom', async (t) => {
  const a = new AckAggregation()
  for (let burst = 0; burst < 100; burst++) {
    for (let j = 0; j < 10; j++) a.onAck(burst * 9.6, 1200, BW, 200_000, j === 0 && burst % 10 === 0)
  }
  const h = a.headroomBytes(BW)
  t.ok(h >= 10_000 && h <= 12_001, `headroom ${h}`)
  // Capped by the window and by 100 ms at btlBw.
  t.equal(a.headroomBytes(50), 5_000)
  const small = new AckAggregation()
  for (let j = 0; j < 100; j++) small.onAck(0, 1200, BW, 6_000, false)
  t.equal(small.headroomBytes(BW), 6_000)
})

t.test('old bursts are forgotten after 5-10 rounds', async (t) => {
  const a = new AckAggregation()
  for (let j = 0; j < 20; j++) a.onAck(0, 1200, BW, 200_000, false)
  t.ok(a.headroomBytes(BW) > 20_000)
  // The burst is followed by the matching gap, then smooth acks at the modelled rate.
  let now = 20
  for (let round = 0; round < 11; round++) {
    for (let i = 0; i < 100; i++) {
      now += 0.96
      a.onAck(now, 1200, BW, 200_000, i === 0)
    }
  }
  t.ok(a.headroomBytes(BW) <= 1201, `headroom ${a.headroomBytes(BW)}`)
})
