/**
 * A small self-contained packet-level path model for congestion-control tests:
 * sender (cc + delivery-rate estimator + pacer, always backlogged) -> drop-tail bottleneck of
 * R bytes/ms with a finite buffer -> random loss -> receiver, which acks every packet; acks
 * return over the same fixed one-way delay and are never lost. Virtual time only.
 *
 * Loss detection is a simplified RFC 9002: packet threshold 3, time threshold 9/8 RTT, and
 * a crude PTO that declares everything in flight lost after 3 smoothed RTTs of silence.
 */
import type { CongestionController } from '../../src/core/cc/controller.js'
import { DeliveryRateEstimator, type RatePacketState } from '../../src/core/cc/delivery-rate.js'
import { Pacer } from '../../src/core/cc/pacer.js'
import type { SeededRng } from '../../src/core/rng.js'

export interface PathSimOptions {
  cc: CongestionController
  rng: SeededRng
  bottleneckBytesPerMs: number
  bufferBytes: number
  /** Propagation delay each way; the base RTT is twice this. */
  oneWayDelayMs: number
  /** Probability that a packet is dropped after the bottleneck. */
  lossRate: number
  durationMs: number
  /** Goodput and RTT statistics are taken from this time on. */
  measureFromMs: number
  mss?: number
  pacerBurstPackets?: number
  /** Extra forward-path delay as a function of time; must never decrease (keeps FIFO order). */
  extraDelayMs?: (nowMs: number) => number
  /** The receiver acks every n-th packet (default 1) or after maxAckDelayMs (default 0). */
  ackEvery?: number
  maxAckDelayMs?: number
  /** Called after every ack the controller processed (for inspecting its state). */
  onAck?: (nowMs: number, latestRttMs: number, bytesInFlight: number) => void
}

export interface PathSimResult {
  /** Unique bytes arriving at the receiver per ms within the measurement window. */
  goodputBytesPerMs: number
  utilization: number
  meanRttMs: number
  maxRttMs: number
  packetsSent: number
  packetsLost: number
  finalMetrics: Record<string, number | string>
}

interface SimPacket extends RatePacketState {
  packetNumber: number
  acked: boolean
  lost: boolean
}

/** FIFO of (time, item) with amortised O(1) shift. */
class TimedQueue<T> {
  private times: number[] = []
  private packets: T[] = []
  private head = 0
  push(timeMs: number, p: T): void {
    this.times.push(timeMs)
    this.packets.push(p)
  }
  get nextTimeMs(): number {
    return this.head < this.times.length ? this.times[this.head] : Infinity
  }
  shift(): T {
    const p = this.packets[this.head++]
    if (this.head > 4096) {
      this.times = this.times.slice(this.head)
      this.packets = this.packets.slice(this.head)
      this.head = 0
    }
    return p
  }
}

export const runPathSim = (o: PathSimOptions): PathSimResult => {
  const mss = o.mss ?? 1200
  const { cc, rng } = o
  const estimator = new DeliveryRateEstimator()
  const pacer = new Pacer({ maxBurstBytes: (o.pacerBurstPackets ?? 10) * mss })
  const toReceiver = new TimedQueue<SimPacket>()
  const toSender = new TimedQueue<SimPacket[]>()
  const ackEvery = o.ackEvery ?? 1
  const maxAckDelayMs = o.maxAckDelayMs ?? 0
  let pendingAck: SimPacket[] = []
  let ackTimerMs = Infinity
  const flushAck = (): void => {
    toSender.push(now + o.oneWayDelayMs, pendingAck)
    pendingAck = []
    ackTimerMs = Infinity
  }
  let unacked: SimPacket[] = []
  let unackedHead = 0

  let now = 0
  let nextPacketNumber = 0
  let bytesInFlight = 0
  let linkFreeAtMs = 0
  let nextSendMs = 0
  let lossTimerMs = Infinity
  let lastProgressMs = 0
  let largestAcked = -1
  let smoothedRttMs = 0
  let rttVarMs = 0
  let latestRttMs = 0
  let minRttMs = Infinity
  let packetsSent = 0
  let packetsLost = 0
  let measuredBytes = 0
  let rttSum = 0
  let rttCount = 0
  let rttMax = 0

  const send = (): void => {
    while (bytesInFlight + mss <= cc.congestionWindowBytes) {
      const rate = cc.pacingRateBytesPerMs(smoothedRttMs)
      const at = pacer.earliestSendTimeMs(now, mss, rate)
      if (at > now) {
        nextSendMs = at
        return
      }
      const p: SimPacket = {
        packetNumber: nextPacketNumber++,
        sentTimeMs: now,
        sizeBytes: mss,
        delivered: 0,
        deliveredTimeMs: 0,
        firstSentTimeMs: 0,
        isAppLimited: false,
        acked: false,
        lost: false,
      }
      if (bytesInFlight === 0) lastProgressMs = now
      estimator.onPacketSent(now, bytesInFlight, p)
      bytesInFlight += mss
      cc.onPacketSent(now, p, bytesInFlight)
      pacer.onPacketSent(now, mss, rate)
      unacked.push(p)
      packetsSent++
      // Drop-tail bottleneck: the queue holds (linkFreeAt - now) * R bytes.
      const queuedBytes = Math.max(0, linkFreeAtMs - now) * o.bottleneckBytesPerMs
      if (queuedBytes + mss > o.bufferBytes) continue
      linkFreeAtMs = Math.max(now, linkFreeAtMs) + mss / o.bottleneckBytesPerMs
      if (rng.nextFloat() < o.lossRate) continue
      toReceiver.push(linkFreeAtMs + o.oneWayDelayMs + (o.extraDelayMs?.(linkFreeAtMs) ?? 0), p)
    }
    nextSendMs = Infinity
  }

  const declareLost = (timeThresholdOnly: boolean): void => {
    const lossDelayMs = (9 / 8) * Math.max(smoothedRttMs, latestRttMs)
    let lostBytes = 0
    let largestLostSentTimeMs = -Infinity
    lossTimerMs = Infinity
    for (let i = unackedHead; i < unacked.length; i++) {
      const p = unacked[i]
      if (p.acked || p.lost) continue
      if (!timeThresholdOnly && p.packetNumber >= largestAcked) break
      const byCount = largestAcked - p.packetNumber >= 3
      if (timeThresholdOnly || byCount || p.sentTimeMs + lossDelayMs <= now) {
        p.lost = true
        bytesInFlight -= p.sizeBytes
        lostBytes += p.sizeBytes
        largestLostSentTimeMs = p.sentTimeMs
        packetsLost++
      } else {
        lossTimerMs = p.sentTimeMs + lossDelayMs
        break
      }
    }
    while (unackedHead < unacked.length && (unacked[unackedHead].acked || unacked[unackedHead].lost)) unackedHead++
    if (unackedHead > 4096) {
      unacked = unacked.slice(unackedHead)
      unackedHead = 0
    }
    if (lostBytes > 0) {
      cc.onLoss(now, { lostBytes, largestLostSentTimeMs, persistentCongestion: false, bytesInFlight })
    }
  }

  const onAck = (frame: SimPacket[]): void => {
    let ackedBytes = 0
    let newest: SimPacket | undefined
    for (const p of frame) {
      if (p.lost) continue // declared lost by the PTO; its bytes already left bytesInFlight
      p.acked = true
      bytesInFlight -= p.sizeBytes
      ackedBytes += p.sizeBytes
      estimator.onPacketAcked(now, p)
      if (newest === undefined || p.packetNumber > newest.packetNumber) newest = p
    }
    if (newest === undefined) return
    const p = newest
    lastProgressMs = now
    if (p.packetNumber > largestAcked) largestAcked = p.packetNumber
    latestRttMs = now - p.sentTimeMs
    if (latestRttMs < minRttMs) minRttMs = latestRttMs
    if (smoothedRttMs === 0) {
      smoothedRttMs = latestRttMs
      rttVarMs = latestRttMs / 2
    } else {
      rttVarMs = 0.75 * rttVarMs + 0.25 * Math.abs(smoothedRttMs - latestRttMs)
      smoothedRttMs = 0.875 * smoothedRttMs + 0.125 * latestRttMs
    }
    if (now >= o.measureFromMs) {
      rttSum += latestRttMs
      rttCount++
      if (latestRttMs > rttMax) rttMax = latestRttMs
    }
    cc.onAck(now, {
      ackedBytes,
      largestAckedSentTimeMs: p.sentTimeMs,
      latestRttMs,
      smoothedRttMs,
      minRttMs,
      bytesInFlight,
      rateSample: estimator.takeSample(now),
    })
    o.onAck?.(now, latestRttMs, bytesInFlight)
    declareLost(false)
  }

  while (now < o.durationMs) {
    const ptoMs = bytesInFlight > 0 ? lastProgressMs + (smoothedRttMs > 0 ? 3 * smoothedRttMs + 4 * rttVarMs : 1000) : Infinity
    now = Math.min(toReceiver.nextTimeMs, toSender.nextTimeMs, nextSendMs, lossTimerMs, ptoMs, ackTimerMs)
    if (now >= o.durationMs) break
    if (toReceiver.nextTimeMs === now) {
      const p = toReceiver.shift()
      if (now >= o.measureFromMs) measuredBytes += p.sizeBytes
      pendingAck.push(p)
      if (pendingAck.length >= ackEvery || maxAckDelayMs === 0) flushAck()
      else if (ackTimerMs === Infinity) ackTimerMs = now + maxAckDelayMs
    } else if (ackTimerMs === now) {
      flushAck()
    } else if (toSender.nextTimeMs === now) {
      onAck(toSender.shift())
      send()
    } else if (lossTimerMs === now) {
      declareLost(false)
      send()
    } else if (ptoMs === now) {
      declareLost(true)
      lastProgressMs = now
      send()
    } else {
      send()
    }
  }

  const goodputBytesPerMs = measuredBytes / (o.durationMs - o.measureFromMs)
  return {
    goodputBytesPerMs,
    utilization: goodputBytesPerMs / o.bottleneckBytesPerMs,
    meanRttMs: rttCount > 0 ? rttSum / rttCount : NaN,
    maxRttMs: rttMax,
    packetsSent,
    packetsLost,
    finalMetrics: cc.metrics(),
  }
}
