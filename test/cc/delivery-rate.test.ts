import t from 'tap'
import { DeliveryRateEstimator, newRatePacketState, type RatePacketState } from '../../src/core/cc/delivery-rate.js'

const SIZE = 1200

/** A sender/receiver pair with per-packet acks; the caller schedules sends and acks. */
class Flow {
  readonly est = new DeliveryRateEstimator()
  bytesInFlight = 0
  send(nowMs: number): RatePacketState {
    const p = newRatePacketState(nowMs, SIZE)
    this.est.onPacketSent(nowMs, this.bytesInFlight, p)
    this.bytesInFlight += SIZE
    return p
  }
  ack(nowMs: number, packets: RatePacketState[]) {
    for (const p of packets) {
      this.est.onPacketAcked(nowMs, p)
      this.bytesInFlight -= p.sizeBytes
    }
    const s = this.est.takeSample(nowMs)
    return s === undefined ? undefined : { ...s }
  }
}

t.test('a steady flow measures its sending rate', async (t) => {
  // One packet per ms (1200 bytes/ms), acked 50 ms later.
  const flow = new Flow()
  const sent: RatePacketState[] = []
  const rates: number[] = []
  let flagsOk = true
  for (let ms = 0; ms < 2000; ms++) {
    sent.push(flow.send(ms))
    if (ms >= 50) {
      const s = flow.ack(ms + 0.5, [sent[ms - 50]])
      if (s !== undefined && ms > 200) {
        rates.push(s.deliveryRateBytesPerMs)
        flagsOk &&= !s.isAppLimited && s.rttMs === 50.5
      }
    }
  }
  t.ok(flagsOk, 'not app-limited, rtt = 50.5 ms')
  t.ok(rates.length > 1500)
  const min = Math.min(...rates)
  const max = Math.max(...rates)
  t.comment(`steady flow: samples ${min.toFixed(1)}..${max.toFixed(1)} bytes/ms, sending rate 1200`)
  t.ok(min > 1200 * 0.98 && max < 1200 * 1.02)
  t.equal(flow.est.deliveredBytes, (2000 - 50) * SIZE)
})

t.test('a bottleneck slower than the sender is measured from the ack spacing', async (t) => {
  // The sender sends every 0.5 ms; the bottleneck delivers one packet per ms (base RTT 20 ms).
  const flow = new Flow()
  const acks: [number, RatePacketState][] = []
  let nextAck = 0
  const rates: number[] = []
  for (let i = 0; i < 400; i++) {
    const sendMs = i * 0.5
    while (nextAck < acks.length && acks[nextAck][0] <= sendMs) {
      const [time, p] = acks[nextAck++]
      const s = flow.ack(time, [p])
      if (s !== undefined && time > 60) rates.push(s.deliveryRateBytesPerMs)
    }
    acks.push([20 + (i + 1) * 1.0, flow.send(sendMs)])
  }
  const mean = rates.reduce((a, b) => a + b, 0) / rates.length
  t.comment(`bottleneck 1200 bytes/ms, sender 2400 bytes/ms: ${rates.length} samples, mean ${mean.toFixed(1)}`)
  t.ok(rates.length > 100)
  t.ok(Math.abs(mean - 1200) < 1200 * 0.02, 'mean sample ~ bottleneck rate')
  t.ok(Math.max(...rates) < 1200 * 1.02, 'never reports the sender rate')
})

t.test('the sample does not depend on the order packets are reported in', async (t) => {
  const run = (reverse: boolean) => {
    const flow = new Flow()
    const a = [flow.send(0), flow.send(1), flow.send(2)]
    flow.ack(50, [a[0]])
    const b = [flow.send(50), flow.send(51), flow.send(52), flow.send(53)]
    flow.ack(100, reverse ? [...a.slice(1)].reverse() : a.slice(1))
    return flow.ack(110, reverse ? [...b].reverse() : b)
  }
  const forward = run(false)
  const backward = run(true)
  t.ok(forward !== undefined)
  t.same(backward, forward)
  // The newest packet (sent at 53, when only a[0] had been delivered) defines the sample.
  t.equal(forward?.priorDelivered, SIZE)
  t.equal(forward?.deliveredBytes, 6 * SIZE)
  t.equal(forward?.rttMs, 57)
  t.equal(forward?.intervalMs, 60, 'ack elapsed since a[0] was delivered at 50')
})

t.test('no acks, or a zero interval, gives no sample', async (t) => {
  const flow = new Flow()
  t.equal(flow.est.takeSample(0), undefined)
  const a = flow.send(0)
  t.ok(flow.ack(100, [a]) !== undefined, 'first sample: interval = RTT')
  t.equal(flow.est.takeSample(100), undefined, 'nothing newly acked')
  const b = flow.send(200)
  t.equal(flow.ack(200, [b]), undefined, 'zero interval')
})

t.test('app-limited marking covers exactly the bubble', async (t) => {
  const flow = new Flow()
  const sent: RatePacketState[] = []
  let ms = 0
  // Busy for 300 ms at one packet per ms, RTT 50 ms.
  const step = (sendNow: boolean) => {
    if (sendNow) sent.push(flow.send(ms))
    const due = sent.filter((p) => p.sentTimeMs + 50 === ms)
    const s = due.length > 0 ? flow.ack(ms, due) : undefined
    ms++
    return s
  }
  for (; ms < 300; ) t.notOk(step(true)?.isAppLimited)
  // The application runs dry: from now on it marks every time it has nothing to send.
  flow.est.onAppLimited(flow.bytesInFlight)
  t.ok(flow.est.isAppLimited)
  const bubbleStart = sent.length
  const appLimitedSamples: boolean[] = []
  for (; ms < 500; ) {
    const s = step(ms % 10 === 0)
    flow.est.onAppLimited(flow.bytesInFlight)
    if (s !== undefined) appLimitedSamples.push(s.isAppLimited)
  }
  t.ok(sent.slice(bubbleStart).every((p) => p.isAppLimited), 'packets sent in the bubble are marked')
  t.same(
    appLimitedSamples.slice(0, 5),
    [false, false, false, false, false],
    'samples of packets sent before the mark are not app-limited',
  )
  t.ok(appLimitedSamples.slice(-10).every((x) => x), 'samples of packets sent after it are')
  // Busy again: packets sent before the last bubble is delivered are still marked, later
  // ones are not, and samples go back to the real rate.
  const busyStart = sent.length
  let last
  for (; ms < 700; ) last = step(true) ?? last
  t.notOk(flow.est.isAppLimited)
  t.ok(sent[busyStart].isAppLimited)
  t.ok(sent.slice(busyStart + 60).every((p) => !p.isAppLimited))
  t.equal(last?.isAppLimited, false)
  t.ok(last !== undefined && Math.abs(last.deliveryRateBytesPerMs - 1200) < 30)
})

t.test('onAppLimited with nothing in flight still marks', async (t) => {
  const est = new DeliveryRateEstimator()
  est.onAppLimited(0)
  t.ok(est.isAppLimited)
  const p = newRatePacketState(0, SIZE)
  est.onPacketSent(0, 0, p)
  t.ok(p.isAppLimited)
  est.onPacketAcked(10, p)
  est.takeSample(10)
  t.notOk(est.isAppLimited)
})
