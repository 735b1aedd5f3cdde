/**
 * BBR v1-style model-based congestion control (draft-cardwell-iccrg-bbr-congestion-control).
 * The sender models the path as a bottleneck bandwidth (windowed max of delivery-rate
 * samples over ~10 round trips) and a propagation delay (min RTT over 10 s), paces at
 * pacingGain * btlBw and caps in-flight data at cwndGain * BDP plus headroom.
 *
 * Losses do not shrink the model: random loss (lossy radio links) leaves the bandwidth
 * samples nearly unchanged, so goodput stays high. Only persistent congestion (a real
 * outage) drops the window to the minimum, from which it regrows by the delivered bytes.
 *
 * States: Startup (gain 2/ln2 until bw grows < 25 % for 3 rounds) -> Drain -> ProbeBW
 * (pacing gain cycle 1.25, 0.75, 1 x 6) with ProbeRTT (cwnd 4 packets for 200 ms + a round)
 * whenever the min RTT was not re-observed for 10 s.
 */
import type {
  AckEventForCc,
  CongestionController,
  CongestionControllerOptions,
  LossEventForCc,
  RateSample,
  SentPacketForCc,
} from './controller.js'
import type { Rng } from '../rng.js'
import { AckAggregation } from './ack-aggregation.js'
import { defaultInitialWindowBytes } from './new-reno.js'
import { WindowedMaxFilter } from './windowed-filter.js'

export const BBR_HIGH_GAIN = 2 / Math.LN2
export const BBR_PACING_GAIN_CYCLE: readonly number[] = [1.25, 0.75, 1, 1, 1, 1, 1, 1]
const CWND_GAIN = 2
const BW_FILTER_ROUNDS = 10
const MIN_RTT_FILTER_MS = 10_000
const PROBE_RTT_DURATION_MS = 200
const MIN_PIPE_PACKETS = 4
const FULL_BW_GROWTH = 1.25
const FULL_BW_ROUNDS = 3
/** RTT samples this close to the minimum count as seeing it again (clock granularity). */
const MIN_RTT_TOLERANCE_MS = 0.001
const SEND_QUANTUM_MAX_BYTES = 64 * 1024
const SLOW_RATE_BYTES_PER_MS = 1.2e6 / 8 / 1000
const FAST_RATE_BYTES_PER_MS = 24e6 / 8 / 1000
/** Pace 1 % below the model so that a standing queue drains and the min RTT is seen again. */
const PACING_MARGIN = 0.99

export type BbrState = 'startup' | 'drain' | 'probe_bw' | 'probe_rtt'

export class Bbr implements CongestionController {
  readonly name: string = 'bbr'
  private readonly mss: number
  private readonly initialWindowBytes: number
  private readonly minPipeBytes: number
  private readonly rng: Rng | undefined
  private fallbackPhaseCounter = 0

  private mode: BbrState = 'startup'
  private pacingGain = BBR_HIGH_GAIN
  private cwndGain = BBR_HIGH_GAIN
  private cwnd: number
  private pacingRate = 0

  private readonly bwFilter = new WindowedMaxFilter(BW_FILTER_ROUNDS)
  private btlBw = 0
  private minRtt = Infinity
  private minRttStampMs = -Infinity

  /** Our own delivered counter (same sum as the estimator's: all newly acked bytes). */
  private delivered = 0
  private nextRoundDelivered = 0
  private rounds = 0
  private roundStart = false

  private filledPipe = false
  private fullBw = 0
  private fullBwCount = 0

  private cycleIndex = 0
  private cycleStampMs = 0
  private lossSinceLastAck = false

  private probeRttDoneStampMs = NaN
  private probeRttRoundDone = false
  private priorCwnd = 0
  private idleRestart = false
  /** 0: not app-limited; else the delivered value at which the app-limited bubble ends. */
  private appLimitedUntil = 0
  /** Samples of data sent from the last ProbeRTT until its bubble was delivered (delivered
   * counter range at send time) only reflect the tiny window, so, like app-limited samples,
   * they may raise the bandwidth estimate but never replace it (draft: C.app_limited). */
  private probeRttStartDelivered = 0
  private probeRttBubbleEnd = -1

  private readonly ackAggregation = new AckAggregation()

  constructor(opts: CongestionControllerOptions) {
    this.mss = opts.maxDatagramBytes
    this.initialWindowBytes = opts.initialWindowBytes ?? defaultInitialWindowBytes(this.mss)
    this.minPipeBytes = Math.max(MIN_PIPE_PACKETS * this.mss, opts.minimumWindowBytes ?? 0)
    this.cwnd = this.initialWindowBytes
    this.rng = opts.rng
  }

  get congestionWindowBytes(): number {
    return Math.floor(this.cwnd)
  }
  get state(): BbrState {
    return this.mode
  }
  get bottleneckBandwidthBytesPerMs(): number {
    return this.btlBw
  }
  get minRttMs(): number {
    return this.minRtt
  }
  get roundCount(): number {
    return this.rounds
  }
  get currentPacingGain(): number {
    return this.pacingGain
  }

  pacingRateBytesPerMs(smoothedRttMs: number): number {
    if (this.pacingRate > 0) return this.pacingRate
    // No bandwidth sample yet: spread the initial window over one RTT at startup gain.
    return (BBR_HIGH_GAIN * this.initialWindowBytes) / (smoothedRttMs > 0 ? smoothedRttMs : 1)
  }

  onPacketSent(nowMs: number, packet: SentPacketForCc, bytesInFlight: number): void {
    // bytesInFlight includes this packet: at most its size means the pipe was empty.
    if (bytesInFlight <= packet.sizeBytes && this.appLimitedUntil !== 0) {
      this.idleRestart = true
      this.ackAggregation.restart(nowMs)
      // Restarting from idle in ProbeBW: resume at the estimated rate, no probing burst.
      if (this.mode === 'probe_bw' && this.btlBw > 0) this.pacingRate = this.btlBw * PACING_MARGIN
    }
  }

  onAppLimited(_nowMs: number, bytesInFlight: number): void {
    const until = this.delivered + bytesInFlight
    this.appLimitedUntil = until > 0 ? until : 1
  }

  onLoss(_nowMs: number, loss: LossEventForCc): void {
    this.lossSinceLastAck = true
    if (loss.persistentCongestion) {
      // Everything sent over several PTOs vanished: restart from the minimum window. The
      // window regrows by the bytes delivered per ack (doubling per round) up to the model.
      this.cwnd = this.minPipeBytes
    }
  }

  onAck(nowMs: number, ack: AckEventForCc): void {
    const priorInFlight = ack.bytesInFlight + ack.ackedBytes
    this.delivered += ack.ackedBytes
    if (this.appLimitedUntil !== 0 && this.delivered > this.appLimitedUntil) this.appLimitedUntil = 0
    if (this.pacingRate === 0 && ack.smoothedRttMs > 0) {
      this.pacingRate = (BBR_HIGH_GAIN * this.initialWindowBytes) / ack.smoothedRttMs
    }
    const rs = ack.rateSample

    const sampleAppLimited =
      rs !== undefined &&
      (rs.isAppLimited || (rs.priorDelivered >= this.probeRttStartDelivered && rs.priorDelivered <= this.probeRttBubbleEnd))

    this.updateRound(rs)
    this.updateBandwidth(rs, sampleAppLimited)
    if (rs !== undefined) this.ackAggregation.onAck(nowMs, ack.ackedBytes, this.btlBw, this.cwnd, this.roundStart)
    if (this.mode === 'probe_bw') this.checkCyclePhase(nowMs, priorInFlight)
    this.checkFullPipe(rs, sampleAppLimited)
    this.checkDrain(nowMs, ack.bytesInFlight)
    const minRttExpired = this.updateMinRtt(nowMs, ack.latestRttMs)
    this.checkProbeRtt(nowMs, ack.bytesInFlight, minRttExpired)

    this.setPacingRate()
    this.setCwnd(ack.ackedBytes)
    this.lossSinceLastAck = false
  }

  private updateRound(rs: RateSample | undefined): void {
    this.roundStart = false
    if (rs !== undefined && rs.priorDelivered >= this.nextRoundDelivered) {
      this.nextRoundDelivered = this.delivered
      this.rounds++
      this.roundStart = true
    }
  }

  private updateBandwidth(rs: RateSample | undefined, appLimited: boolean): void {
    if (rs === undefined) return
    // App-limited samples underestimate the path; use them only when they raise the max.
    if (rs.deliveryRateBytesPerMs >= this.btlBw || !appLimited) {
      this.btlBw = this.bwFilter.update(this.rounds, rs.deliveryRateBytesPerMs)
    }
  }

  private checkCyclePhase(nowMs: number, priorInFlight: number): void {
    const fullLength = nowMs - this.cycleStampMs > this.minRtt
    let advance: boolean
    if (this.pacingGain === 1) advance = fullLength
    else if (this.pacingGain > 1) {
      // Probe until the extra data is in flight (or loss says the queue overflowed).
      advance = fullLength && (this.lossSinceLastAck || priorInFlight >= this.inflightBytes(this.pacingGain))
    } else {
      // Drain until the queue we built is gone.
      advance = fullLength || priorInFlight <= this.inflightBytes(1)
    }
    if (advance) this.advanceCyclePhase(nowMs)
  }

  private advanceCyclePhase(nowMs: number): void {
    this.cycleStampMs = nowMs
    this.cycleIndex = (this.cycleIndex + 1) % BBR_PACING_GAIN_CYCLE.length
    this.pacingGain = BBR_PACING_GAIN_CYCLE[this.cycleIndex]
  }

  private checkFullPipe(rs: RateSample | undefined, appLimited: boolean): void {
    if (this.filledPipe || !this.roundStart || rs === undefined || appLimited) return
    if (this.btlBw >= this.fullBw * FULL_BW_GROWTH) {
      this.fullBw = this.btlBw
      this.fullBwCount = 0
      return
    }
    if (++this.fullBwCount >= FULL_BW_ROUNDS) this.filledPipe = true
  }

  private checkDrain(nowMs: number, bytesInFlight: number): void {
    if (this.mode === 'startup' && this.filledPipe) {
      this.mode = 'drain'
      this.pacingGain = 1 / BBR_HIGH_GAIN
      this.cwndGain = BBR_HIGH_GAIN
    }
    if (this.mode === 'drain' && bytesInFlight <= this.inflightBytes(1)) this.enterProbeBw(nowMs)
  }

  private enterProbeBw(nowMs: number): void {
    this.mode = 'probe_bw'
    this.pacingGain = 1
    this.cwndGain = CWND_GAIN
    // Start at a random phase other than the 0.75 one so flows do not cycle in lockstep.
    const r = this.rng !== undefined ? this.rng.nextU32() : this.fallbackPhaseCounter++
    this.cycleIndex = BBR_PACING_GAIN_CYCLE.length - 1 - (r % 7)
    this.advanceCyclePhase(nowMs)
  }

  /** Returns whether the min RTT had expired before this sample. */
  private updateMinRtt(nowMs: number, rttMs: number): boolean {
    const expired = this.minRtt < Infinity && nowMs > this.minRttStampMs + MIN_RTT_FILTER_MS
    if (rttMs > 0 && (rttMs <= this.minRtt + MIN_RTT_TOLERANCE_MS || expired)) {
      if (rttMs < this.minRtt || expired) this.minRtt = rttMs
      this.minRttStampMs = nowMs
    }
    return expired
  }

  private checkProbeRtt(nowMs: number, bytesInFlight: number, minRttExpired: boolean): void {
    if (this.mode !== 'probe_rtt' && minRttExpired && !this.idleRestart && this.minRtt < Infinity) {
      this.mode = 'probe_rtt'
      this.pacingGain = 1
      this.cwndGain = 1
      this.priorCwnd = this.cwnd
      this.probeRttDoneStampMs = NaN
      this.probeRttStartDelivered = this.delivered
    }
    if (this.mode === 'probe_rtt') this.handleProbeRtt(nowMs, bytesInFlight)
    this.idleRestart = false
  }

  private handleProbeRtt(nowMs: number, bytesInFlight: number): void {
    // Data sent until everything now in flight is delivered is limited by ProbeRTT.
    this.probeRttBubbleEnd = this.delivered + bytesInFlight
    if (Number.isNaN(this.probeRttDoneStampMs)) {
      if (bytesInFlight <= this.minPipeBytes) {
        this.probeRttDoneStampMs = nowMs + PROBE_RTT_DURATION_MS
        this.probeRttRoundDone = false
        this.nextRoundDelivered = this.delivered
      }
      return
    }
    if (this.roundStart) this.probeRttRoundDone = true
    if (this.probeRttRoundDone && nowMs > this.probeRttDoneStampMs) {
      this.minRttStampMs = nowMs
      if (this.cwnd < this.priorCwnd) this.cwnd = this.priorCwnd
      if (this.filledPipe) this.enterProbeBw(nowMs)
      else {
        this.mode = 'startup'
        this.pacingGain = BBR_HIGH_GAIN
        this.cwndGain = BBR_HIGH_GAIN
      }
    }
  }

  private setPacingRate(): void {
    if (this.btlBw <= 0) return
    const rate = this.pacingGain * this.btlBw * PACING_MARGIN
    // In Startup never slow down on an early, low sample.
    if (this.filledPipe || rate > this.pacingRate) this.pacingRate = rate
  }

  /** Bytes in flight the model allows at the given gain: gain * BDP plus send quanta. */
  private inflightBytes(gain: number): number {
    if (this.minRtt === Infinity || this.btlBw <= 0) return this.initialWindowBytes
    return gain * this.btlBw * this.minRtt + 3 * this.sendQuantumBytes()
  }

  /** Draft send quantum: 1 packet below 1.2 Mbit/s, 2 below 24 Mbit/s, else 1 ms of data. */
  private sendQuantumBytes(): number {
    const rate = this.pacingRate
    if (rate < SLOW_RATE_BYTES_PER_MS) return this.mss
    if (rate < FAST_RATE_BYTES_PER_MS) return 2 * this.mss
    return rate < SEND_QUANTUM_MAX_BYTES ? rate : SEND_QUANTUM_MAX_BYTES
  }

  private setCwnd(ackedBytes: number): void {
    let target = this.inflightBytes(this.cwndGain)
    if (this.filledPipe) {
      target += this.ackAggregation.headroomBytes(this.btlBw)
      this.cwnd = Math.min(this.cwnd + ackedBytes, target)
    } else if (this.cwnd < target || this.delivered < this.initialWindowBytes) {
      this.cwnd += ackedBytes
    }
    if (this.cwnd < this.minPipeBytes) this.cwnd = this.minPipeBytes
    if (this.mode === 'probe_rtt' && this.cwnd > this.minPipeBytes) this.cwnd = this.minPipeBytes
  }

  metrics(): Record<string, number | string> {
    return {
      congestionWindowBytes: this.congestionWindowBytes,
      state: this.mode,
      pacingRateBytesPerMs: this.pacingRate,
      pacingGain: this.pacingGain,
      btlBwBytesPerMs: this.btlBw,
      minRttMs: this.minRtt === Infinity ? -1 : this.minRtt,
      roundCount: this.rounds,
    }
  }
}
