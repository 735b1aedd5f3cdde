/**
 * SentPacketTracker: ACK ranges, bytes-in-flight accounting, packet- and time-threshold
 * loss (RFC 9002 §6.1), the loss timer, persistent congestion (§7.6), and compaction
 * over long runs checked against a naive model.
 */
import t from 'tap'
import { PacketState, SentPacket, SentPacketTracker } from '../../src/core/recovery/sent-packets.js'
import { SeededRng } from '../../src/core/rng.js'

type P = SentPacket<string>

const packet = (pn: number, sentTimeMs: number, o: Partial<{ sizeBytes: number; ackEliciting: boolean; inFlight: boolean }> = {}): P => {
  const ackEliciting = o.ackEliciting ?? true
  return new SentPacket<string>({
    packetNumber: pn,
    sentTimeMs,
    sizeBytes: o.sizeBytes ?? 1000,
    ackEliciting,
    inFlight: o.inFlight ?? ackEliciting,
    records: [`p${pn}`],
    largestAckedInAck: -1,
  })
}

const sendRun = (tr: SentPacketTracker<string>, from: number, to: number, timeOf: (pn: number) => number = (pn) => pn * 10): void => {
  for (let pn = from; pn <= to; pn++) tr.onPacketSent(packet(pn, timeOf(pn)))
}

const pns = (ps: P[]): number[] => ps.map((p) => p.packetNumber).sort((a, b) => a - b)

t.test('sending accounts bytes in flight; non-consecutive numbers are refused', async (t) => {
  const tr = new SentPacketTracker<string>({ packetThreshold: 3 })
  tr.onPacketSent(packet(0, 0))
  tr.onPacketSent(packet(1, 1, { ackEliciting: false })) // ACK-only: not in flight
  tr.onPacketSent(packet(2, 2, { sizeBytes: 500 }))
  t.equal(tr.bytesInFlight, 1500)
  t.equal(tr.ackElicitingInFlight, 2)
  t.equal(tr.lastAckElicitingSentMs, 2)
  t.equal(tr.outstandingCount, 3)
  t.throws(() => tr.onPacketSent(packet(4, 3)), /consecutive/)
  t.equal(tr.get(1)?.packetNumber, 1)
  t.equal(tr.get(3), undefined)
})

t.test('ACK ranges: newly acked, RTT sample only from the frame largest', async (t) => {
  const tr = new SentPacketTracker<string>({ packetThreshold: 3 })
  sendRun(tr, 0, 9)
  const a = tr.onAck([
    { smallest: 7, largest: 8 },
    { smallest: 2, largest: 4 },
  ])
  t.same(pns(a.newlyAcked), [2, 3, 4, 7, 8])
  t.equal(a.rttSamplePacket?.packetNumber, 8)
  t.ok(a.newlyAcked.every((p) => p.state === PacketState.acked))
  t.equal(tr.largestAcked, 8)
  t.equal(tr.bytesInFlight, 5000)
  t.equal(tr.ackElicitingInFlight, 5)
  const again = tr.onAck([
    { smallest: 8, largest: 9 },
    { smallest: 0, largest: 4 },
  ])
  t.same(pns(again.newlyAcked), [0, 1, 9], 'acked twice counts once')
  t.equal(again.rttSamplePacket?.packetNumber, 9)
  const dup = tr.onAck([{ smallest: 7, largest: 8 }])
  t.same(dup.newlyAcked, [])
  t.equal(dup.rttSamplePacket, undefined, 'no RTT sample when the largest was acked before')
  t.equal(tr.largestAcked, 9, 'largestAcked never goes back')
  t.equal(tr.bytesInFlight, 2000)
  t.same(pns(tr.oldestAckEliciting(10)), [5, 6])
})

t.test('an ACK whose largest was not newly acked gives no RTT sample', async (t) => {
  const tr = new SentPacketTracker<string>({ packetThreshold: 3 })
  sendRun(tr, 0, 4)
  tr.onAck([{ smallest: 4, largest: 4 }])
  const a = tr.onAck([
    { smallest: 4, largest: 4 },
    { smallest: 1, largest: 2 },
  ])
  t.same(pns(a.newlyAcked), [1, 2])
  t.equal(a.rttSamplePacket, undefined)
})

t.test('packet threshold: lost when 3 later packets were acked', async (t) => {
  const tr = new SentPacketTracker<string>({ packetThreshold: 3 })
  sendRun(tr, 0, 9, () => 0)
  tr.onAck([{ smallest: 4, largest: 4 }])
  let r = tr.detectLosses(1, 1000, 1e9)
  t.same(pns(r.lost), [0, 1], '0 and 1 are >= 3 below 4; 2 and 3 are not')
  t.equal(tr.lossTimeMs, 1000, 'loss timer armed for the rest below largest acked')
  t.equal(tr.bytesInFlight, 10_000 - 3000)
  t.ok(r.lost.every((p) => p.state === PacketState.lost))
  tr.onAck([{ smallest: 6, largest: 6 }])
  r = tr.detectLosses(2, 1000, 1e9)
  t.same(pns(r.lost), [2, 3])
  t.same(pns(tr.oldestAckEliciting(10)), [5, 7, 8, 9])
  t.equal(tr.lossTimeMs, 1000, 'packet 5 still awaits its time threshold')
})

t.test('time threshold: lost once sentTime + lossDelay <= now; lossTimeMs is the earliest such time', async (t) => {
  const tr = new SentPacketTracker<string>({ packetThreshold: 3 })
  sendRun(tr, 0, 3, (pn) => pn * 10) // sent at 0, 10, 20, 30
  tr.onAck([{ smallest: 2, largest: 2 }])
  let r = tr.detectLosses(40, 100, 1e9)
  t.same(r.lost, [])
  t.equal(tr.lossTimeMs, 100, 'packet 0: 0 + 100')
  r = tr.detectLosses(100, 100, 1e9)
  t.same(pns(r.lost), [0], 'exactly at the loss time')
  t.equal(tr.lossTimeMs, 110)
  r = tr.detectLosses(110, 100, 1e9)
  t.same(pns(r.lost), [1])
  t.equal(tr.lossTimeMs, Infinity, 'packet 3 is above largest acked: no timer for it')
  t.same(pns(tr.oldestAckEliciting(10)), [3])
})

t.test('fractional times round identically on both sides of the loss timer', async (t) => {
  const tr = new SentPacketTracker<string>({ packetThreshold: 3 })
  tr.onPacketSent(packet(0, 0.1))
  tr.onPacketSent(packet(1, 0.2))
  tr.onAck([{ smallest: 1, largest: 1 }])
  const delay = (9 / 8) * 33.3
  tr.detectLosses(0.3, delay, 1e9)
  const at = tr.lossTimeMs
  t.same(pns(tr.detectLosses(at, delay, 1e9).lost), [0], 'firing exactly at lossTimeMs declares the loss')
})

t.test('ACK-only packets are dropped by loss detection but never reported lost', async (t) => {
  const tr = new SentPacketTracker<string>({ packetThreshold: 3 })
  tr.onPacketSent(packet(0, 0, { ackEliciting: false }))
  sendRun(tr, 1, 4, () => 0)
  tr.onAck([{ smallest: 4, largest: 4 }])
  const r = tr.detectLosses(0, 1000, 1e9)
  t.same(pns(r.lost), [1])
  t.equal(tr.get(0), undefined, 'forgotten')
  t.equal(tr.bytesInFlight, 2000)
})

t.test('persistent congestion: a run of losses spanning more than the duration', async (t) => {
  const tr = new SentPacketTracker<string>({ packetThreshold: 3 })
  sendRun(tr, 0, 10, (pn) => pn * 100) // 0..1000 ms
  tr.onAck([{ smallest: 10, largest: 10 }])
  const r = tr.detectLosses(1000, 5000, 500)
  t.same(pns(r.lost), [0, 1, 2, 3, 4, 5, 6, 7])
  t.equal(r.persistentCongestion, true, '0..700 ms > 500 ms, nothing acked in between')

  const tr2 = new SentPacketTracker<string>({ packetThreshold: 3 })
  sendRun(tr2, 0, 10, (pn) => pn * 100)
  tr2.onAck([
    { smallest: 10, largest: 10 },
    { smallest: 4, largest: 4 },
  ])
  const r2 = tr2.detectLosses(1000, 5000, 500)
  t.same(pns(r2.lost), [0, 1, 2, 3, 5, 6, 7])
  t.equal(r2.persistentCongestion, false, 'an ACK of packet 4 breaks both runs (0..300, 500..700)')

  const tr3 = new SentPacketTracker<string>({ packetThreshold: 3 })
  sendRun(tr3, 0, 10, (pn) => pn * 100)
  tr3.onAck([{ smallest: 10, largest: 10 }])
  t.equal(tr3.detectLosses(1000, 5000, 700).persistentCongestion, false, 'exactly the duration is not more than it')
})

t.test('persistent congestion counts losses declared by an earlier detection (RFC 9002 §7.6.2)', async (t) => {
  // 0..7 sent 100 ms apart, never acknowledged; 8..10 acked one by one. The first ACK
  // declares 0..4 lost by packet threshold; later ACKs declare 5..7. Packets 0 and 7 are
  // both lost, nothing between them was acknowledged, and 700 ms > 500 ms.
  const tr = new SentPacketTracker<string>({ packetThreshold: 3 })
  sendRun(tr, 0, 10, (pn) => pn * 100)
  tr.onAck([{ smallest: 8, largest: 8 }])
  const first = tr.detectLosses(1000, 5000, 500)
  t.same(pns(first.lost), [0, 1, 2, 3, 4, 5])
  t.equal(first.persistentCongestion, false, '0..500 ms is exactly the duration, not more')
  tr.onAck([{ smallest: 10, largest: 10 }])
  const second = tr.detectLosses(1001, 5000, 500)
  t.same(pns(second.lost), [6, 7])
  t.equal(first.persistentCongestion || second.persistentCongestion, true, 'losses 0..700 with nothing acked in between')
})

t.test('drain returns every outstanding packet and resets the accounting', async (t) => {
  const tr = new SentPacketTracker<string>({ packetThreshold: 3 })
  sendRun(tr, 0, 5)
  tr.onAck([{ smallest: 2, largest: 3 }])
  t.same(pns(tr.drain()), [0, 1, 4, 5])
  t.equal(tr.bytesInFlight, 0)
  t.equal(tr.ackElicitingInFlight, 0)
  t.equal(tr.outstandingCount, 0)
  t.equal(tr.lossTimeMs, Infinity)
})

t.test('10,000 packets with random loss and reordered ACKs: matches a model, stays compact (seeded)', async (t) => {
  for (const seed of [11, 12, 13]) {
    const rng = new SeededRng(seed)
    const tr = new SentPacketTracker<string>({ packetThreshold: 3 })
    interface M { sentMs: number; size: number; eliciting: boolean; state: 'out' | 'acked' | 'lost' }
    const model = new Map<number, M>()
    const delivered = new Set<number>() // reached the receiver
    const lossDelay = 60
    let largestAcked = -1
    let maxOutstanding = 0
    const fail = (msg: string): never => {
      throw new Error(`seed ${seed}: ${msg}`)
    }
    let now = 0
    for (let pn = 0; pn < 10_000; pn++) {
      now += 1
      const eliciting = rng.nextFloat() > 0.1
      const size = 100 + (rng.nextU32() % 1100)
      tr.onPacketSent(packet(pn, now, { sizeBytes: size, ackEliciting: eliciting }))
      model.set(pn, { sentMs: now, size, eliciting, state: 'out' })
      if (rng.nextFloat() > 0.1) delivered.add(pn)
      // Every few packets the receiver acks a window ending a little behind the newest.
      if (pn % 4 === 3) {
        const top = pn - (rng.nextU32() % 3)
        const ranges: Array<{ smallest: number; largest: number }> = []
        let cur: { smallest: number; largest: number } | undefined
        for (let x = top; x >= Math.max(0, top - 40); x--) {
          if (delivered.has(x)) {
            if (cur !== undefined && cur.smallest === x + 1) cur.smallest = x
            else {
              cur = { smallest: x, largest: x }
              ranges.push(cur)
            }
          } else cur = undefined
        }
        if (ranges.length > 0) {
          const out = tr.onAck(ranges)
          const expectNew: number[] = []
          for (const r of ranges) for (let x = r.smallest; x <= r.largest; x++) if (model.get(x)?.state === 'out') expectNew.push(x)
          for (const x of expectNew) model.get(x)!.state = 'acked'
          if (JSON.stringify(pns(out.newlyAcked)) !== JSON.stringify(expectNew.sort((a, b) => a - b))) fail(`pn ${pn}: newly acked differs`)
          if (ranges[0].largest > largestAcked) largestAcked = ranges[0].largest
        }
      }
      if (pn % 2 === 0 || tr.lossTimeMs <= now) {
        const lost = tr.detectLosses(now, lossDelay, 1e9).lost
        const expectLost: number[] = []
        let lossTime = Infinity
        for (const [x, m] of model) {
          if (m.state !== 'out' || x > largestAcked) continue
          if (x <= largestAcked - 3 || m.sentMs + lossDelay <= now) {
            m.state = 'lost'
            if (m.eliciting) expectLost.push(x)
          } else lossTime = Math.min(lossTime, m.sentMs + lossDelay)
        }
        if (JSON.stringify(pns(lost)) !== JSON.stringify(expectLost.sort((a, b) => a - b))) fail(`pn ${pn}: lost differs`)
        if (tr.lossTimeMs !== lossTime) fail(`pn ${pn}: lossTimeMs ${tr.lossTimeMs} != ${lossTime}`)
      }
      let bytes = 0
      let elicitingCount = 0
      for (const [x, m] of model) {
        if (m.state !== 'out') {
          model.delete(x)
          continue
        }
        if (m.eliciting) {
          bytes += m.size
          elicitingCount++
        }
      }
      if (tr.bytesInFlight !== bytes) fail(`pn ${pn}: bytesInFlight ${tr.bytesInFlight} != ${bytes}`)
      if (tr.ackElicitingInFlight !== elicitingCount) fail(`pn ${pn}: ackElicitingInFlight ${tr.ackElicitingInFlight} != ${elicitingCount}`)
      maxOutstanding = Math.max(maxOutstanding, tr.outstandingCount)
    }
    t.ok(maxOutstanding < 300, `seed ${seed}: outstanding slots bounded (max ${maxOutstanding})`)
    t.equal(tr.largestAcked, largestAcked)
  }
})

t.test('compaction keeps packet-number lookups right after many packets leave the front', async (t) => {
  const tr = new SentPacketTracker<string>({ packetThreshold: 3 })
  sendRun(tr, 0, 999, () => 0)
  tr.onAck([{ smallest: 0, largest: 599 }])
  t.equal(tr.outstandingCount, 400)
  t.equal(tr.get(599), undefined)
  t.equal(tr.get(600)?.packetNumber, 600)
  t.equal(tr.get(999)?.packetNumber, 999)
  sendRun(tr, 1000, 1999, () => 0)
  t.equal(tr.bytesInFlight, 1400 * 1000)
  const a = tr.onAck([
    { smallest: 1500, largest: 1999 },
    { smallest: 600, largest: 1200 },
  ])
  t.equal(a.newlyAcked.length, 500 + 601)
  t.equal(tr.get(1201)?.packetNumber, 1201)
  const lost = tr.detectLosses(0, 1e9, 1e9).lost
  t.same(pns(lost), Array.from({ length: 299 }, (_, i) => 1201 + i), 'everything in the hole is lost by packet threshold')
  t.equal(tr.outstandingCount, 0)
  t.equal(tr.bytesInFlight, 0)
  tr.onPacketSent(packet(2000, 1))
  t.equal(tr.get(2000)?.packetNumber, 2000, 'numbering continues after the tracker emptied')
  t.throws(() => tr.onPacketSent(packet(2002, 1)), /consecutive/)
})
