/** AckTracker: when ACKs are due, what they report, and how the state stays bounded. */
import t from 'tap'
import { AckTracker, AckUrgency } from '../../src/core/recovery/ack-tracker.js'
import { SeededRng } from '../../src/core/rng.js'

const make = (o: Partial<{ maxAckDelayMs: number; ackElicitingThreshold: number; maxAckRanges: number }> = {}): AckTracker =>
  new AckTracker({ maxAckDelayMs: 25, ackElicitingThreshold: 2, maxAckRanges: 32, ...o })

t.test('a packet whose only ack-eliciting frame is PING is acknowledged at once', async (t) => {
  const a = make()
  a.onPacketReceived(100, 0, AckUrgency.immediate)
  t.equal(a.ackPending, true)
  t.equal(a.ackDeadlineMs, 100)
  t.equal(a.ackDue(100), true)
  a.onAckSent()
  a.onPacketReceived(200, 1, AckUrgency.none)
  t.equal(a.ackPending, false, 'ACK-only packets are never acknowledged on their own')
})

t.test('one in-order ack-eliciting packet: ACK delayed by maxAckDelayMs', async (t) => {
  const a = make()
  a.onPacketReceived(100, 0, AckUrgency.delayed)
  t.equal(a.ackPending, true)
  t.equal(a.ackDeadlineMs, 125)
  t.notOk(a.ackDue(124.9))
  t.ok(a.ackDue(125))
  t.equal(a.ackDelayMicros(125), 25_000)
  t.equal(a.ackDelayMicros(125.0004), 25_000, 'rounded to whole microseconds')
  a.onAckSent()
  t.equal(a.ackPending, false)
  t.equal(a.ackDeadlineMs, Infinity)
  t.notOk(a.ackDue(1000))
})

t.test('every second ack-eliciting packet is acknowledged at once', async (t) => {
  const a = make()
  a.onPacketReceived(0, 0, AckUrgency.delayed)
  t.equal(a.ackDeadlineMs, 25)
  a.onPacketReceived(10, 1, AckUrgency.delayed)
  t.equal(a.ackDeadlineMs, 10, 'second packet: due now')
  t.ok(a.ackDue(10))
  a.onAckSent()
  a.onPacketReceived(20, 2, AckUrgency.delayed)
  t.equal(a.ackDeadlineMs, 45, 'the count restarts after an ACK was sent')
  a.onPacketReceived(21, 3, AckUrgency.delayed)
  t.equal(a.ackDeadlineMs, 21)
})

t.test('a later packet does not push the delayed deadline back', async (t) => {
  const a = make({ ackElicitingThreshold: 10 })
  a.onPacketReceived(0, 0, AckUrgency.delayed)
  a.onPacketReceived(20, 1, AckUrgency.delayed)
  t.equal(a.ackDeadlineMs, 25, 'deadline set by the first unacknowledged packet')
})

t.test('a gap or reordering triggers an immediate ACK', async (t) => {
  const a = make({ ackElicitingThreshold: 10 })
  a.onPacketReceived(0, 0, AckUrgency.delayed)
  a.onAckSent()
  a.onPacketReceived(5, 2, AckUrgency.delayed) // 1 missing
  t.equal(a.ackDeadlineMs, 5, 'gap: immediate')
  a.onAckSent()
  a.onPacketReceived(6, 1, AckUrgency.delayed) // fills the gap late
  t.equal(a.ackDeadlineMs, 6, 'reordered: immediate')
  t.equal(a.largestReceived, 2)
  t.equal(a.largestReceivedTimeMs, 5, 'largest receive time is not moved by an older packet')
  t.same(a.received.descendingInclusive(10), [{ smallest: 0, largest: 2 }])
})

t.test('the first packet of a session is not "out of order" even if it is not 0', async (t) => {
  const a = make()
  a.onPacketReceived(0, 7, AckUrgency.delayed)
  t.equal(a.ackDeadlineMs, 25)
})

t.test('non-ack-eliciting packets are recorded but never make an ACK due', async (t) => {
  const a = make()
  a.onPacketReceived(0, 0, AckUrgency.none)
  a.onPacketReceived(1, 2, AckUrgency.none) // even with a gap
  t.equal(a.ackPending, false, 'no ACK of ACK-only packets (no ping-pong)')
  t.equal(a.ackDeadlineMs, Infinity)
  t.notOk(a.ackDue(1e9))
  t.ok(a.isDuplicate(2), 'still recorded for duplicate detection')
  t.notOk(a.isDuplicate(1))
  a.onPacketReceived(2, 3, AckUrgency.delayed)
  t.equal(a.ackPending, true)
  t.same(a.received.descendingInclusive(10), [{ smallest: 2, largest: 3 }, { smallest: 0, largest: 0 }], 'the next ACK reports them too')
})

t.test('ackDelayMicros refers to the largest packet', async (t) => {
  const a = make()
  a.onPacketReceived(10, 5, AckUrgency.delayed)
  a.onPacketReceived(30, 3, AckUrgency.delayed)
  t.equal(a.ackDelayMicros(40), 30_000)
  t.equal(a.ackDelayMicros(5), 0, 'never negative')
})

t.test('onAckAcknowledged prunes what the peer knows we acknowledged', async (t) => {
  const a = make()
  for (const pn of [0, 1, 2, 4, 5, 8, 9]) a.onPacketReceived(pn, pn, AckUrgency.delayed)
  t.equal(a.received.rangeCount, 3)
  a.onAckAcknowledged(4)
  t.same(a.received.ranges(), [[5, 6], [8, 10]])
  a.onAckAcknowledged(3) // an older confirmation arriving late changes nothing
  t.same(a.received.ranges(), [[5, 6], [8, 10]])
  a.onAckAcknowledged(9)
  t.equal(a.received.isEmpty, true)
  t.equal(a.largestReceived, 9, 'largest received survives pruning')
  a.onAckSent()
  a.onPacketReceived(100, 10, AckUrgency.delayed)
  t.equal(a.ackDeadlineMs, 125, 'next in-order packet after pruning is not a gap')
})

t.test('at most maxAckRanges ranges are kept, the newest ones', async (t) => {
  const a = make({ maxAckRanges: 4 })
  for (let pn = 0; pn < 40; pn += 2) a.onPacketReceived(pn, pn, AckUrgency.delayed)
  t.equal(a.received.rangeCount, 4)
  t.same(a.received.descendingInclusive(10).map((r) => r.largest), [38, 36, 34, 32])
})

t.test('random arrival orders: ranges bounded, largest tracked, ACK due rules hold (seeded)', async (t) => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const rng = new SeededRng(seed)
    const a = make({ maxAckRanges: 8 })
    const arrivals: number[] = []
    for (let pn = 0; pn < 2000; pn++) if (rng.nextFloat() > 0.2) arrivals.push(pn)
    // local reordering: swap neighbours now and then
    for (let i = 1; i < arrivals.length; i++) if (rng.nextFloat() < 0.1) [arrivals[i - 1], arrivals[i]] = [arrivals[i], arrivals[i - 1]]
    let largest = -1
    let now = 0
    let sinceAck = 0
    for (const pn of arrivals) {
      now += 1
      const gap = largest >= 0 && pn !== largest + 1
      a.onPacketReceived(now, pn, AckUrgency.delayed)
      sinceAck++
      if (pn > largest) largest = pn
      if (a.largestReceived !== largest) throw new Error(`seed ${seed}: largestReceived ${a.largestReceived} != ${largest}`)
      if (a.received.rangeCount > 8) throw new Error(`seed ${seed}: ${a.received.rangeCount} ranges`)
      if (!a.received.has(largest)) throw new Error(`seed ${seed}: largest not in ranges`)
      const due = a.ackDue(now)
      if ((gap || sinceAck >= 2) !== due) throw new Error(`seed ${seed}: pn ${pn} ackDue=${due} gap=${gap} sinceAck=${sinceAck}`)
      if (due) {
        a.onAckSent()
        sinceAck = 0
      }
    }
  }
  t.pass('5 seeds')
})
