/**
 * Named link profiles. "up" is client -> server, "down" is server -> client.
 *
 * Sources (README.md has the table):
 * - comcast (tylertreat/comcast) applies its latency and loss to packets leaving one
 *   interface, so its latency is what the round trip gains; we split it evenly between
 *   the two directions. Its bandwidth and loss apply to each direction.
 * - Apple's Network Link Conditioner (NLC) gives one-way figures per direction; we use
 *   them as they are.
 * - subway and elevator are pigeon's own, from the seeds: seconds-long blackouts
 *   (12 s stalls) on top of a bursty cellular link.
 */
import type { ImpairmentConfig } from '../../src/sim/models/index.js'

export interface Preset {
  name: string
  description: string
  source: string
  up: ImpairmentConfig
  down: ImpairmentConfig
}

const kbit = 1e3
const mbit = 1e6
const bernoulli = (probability: number) => ({ model: 'bernoulli' as const, probability })

const symmetric = (config: ImpairmentConfig): { up: ImpairmentConfig; down: ImpairmentConfig } => ({
  up: structuredClone(config),
  down: structuredClone(config),
})

const list: Preset[] = [
  {
    name: 'wifi',
    description: 'good Wi-Fi: 40 ms RTT, 30 Mbit/s, 0.2 % loss',
    source: 'comcast "WIFI (good)": 40 ms, 30000 kbit/s, 0.2 %',
    ...symmetric({ delay: { baseMs: 20 }, rateBitsPerSecond: 30 * mbit, queueBytes: 256 * 1024, loss: bernoulli(0.002) }),
  },
  {
    name: 'lte',
    description: 'LTE: 50 Mbit/s down 50 ms, 10 Mbit/s up 65 ms, no loss',
    source: 'NLC "LTE": down 50 Mbps / 50 ms, up 10 Mbps / 65 ms, 0 %',
    up: { delay: { baseMs: 65 }, rateBitsPerSecond: 10 * mbit, queueBytes: 256 * 1024 },
    down: { delay: { baseMs: 50 }, rateBitsPerSecond: 50 * mbit, queueBytes: 512 * 1024 },
  },
  {
    name: '3g',
    description: '3G: 780 kbit/s down, 330 kbit/s up, 100 ms each way, 1.5 % loss',
    source: 'NLC "3G": down 780 kbps / 100 ms, up 330 kbps / 100 ms; loss from comcast "3G/HSDPA (good)": 1.5 %',
    up: { delay: { baseMs: 100 }, rateBitsPerSecond: 330 * kbit, queueBytes: 32 * 1024, loss: bernoulli(0.015) },
    down: { delay: { baseMs: 100 }, rateBitsPerSecond: 780 * kbit, queueBytes: 64 * 1024, loss: bernoulli(0.015) },
  },
  {
    name: 'edge',
    description: 'EDGE: 240 kbit/s down 400 ms, 200 kbit/s up 440 ms, 1.5 % loss',
    source: 'NLC "Edge": down 240 kbps / 400 ms, up 200 kbps / 440 ms; loss from comcast "EDGE (good)": 1.5 %',
    up: { delay: { baseMs: 440 }, rateBitsPerSecond: 200 * kbit, queueBytes: 16 * 1024, loss: bernoulli(0.015) },
    down: { delay: { baseMs: 400 }, rateBitsPerSecond: 240 * kbit, queueBytes: 16 * 1024, loss: bernoulli(0.015) },
  },
  {
    name: 'gprs',
    description: 'GPRS: 500 ms RTT, 50 kbit/s, 2 % loss',
    source: 'comcast "GPRS (good)": 500 ms, 50 kbit/s, 2 %',
    ...symmetric({ delay: { baseMs: 250 }, rateBitsPerSecond: 50 * kbit, queueBytes: 8 * 1024, loss: bernoulli(0.02) }),
  },
  {
    name: 'satellite',
    description: 'geostationary satellite: 1500 ms RTT, 0.2 % loss, no rate limit',
    source: 'comcast-style satellite figure quoted in GUIDE §5: 1500 ms, 0.2 % (no published rate)',
    ...symmetric({ delay: { baseMs: 750 }, loss: bernoulli(0.002) }),
  },
  {
    name: 'very-bad-network',
    description: 'NLC "Very Bad Network": 1 Mbit/s, 10 % loss, 500 ms each way',
    source: 'NLC "Very Bad Network": 1 Mbps, 10 % loss, 500 ms, both directions',
    ...symmetric({ delay: { baseMs: 500 }, rateBitsPerSecond: 1 * mbit, queueBytes: 64 * 1024, loss: bernoulli(0.1) }),
  },
  {
    name: 'subway',
    description: 'train in tunnels: 3G figures, bursty loss, a 12 s blackout every 60 s',
    source: 'pigeon (seeds: 12 s stalls in tunnels) over the NLC 3G figures; Gilbert-Elliott p=2 %, r=25 %',
    up: {
      delay: { baseMs: 100, jitterMs: 30, distribution: 'normal' },
      rateBitsPerSecond: 330 * kbit,
      queueBytes: 32 * 1024,
      loss: { model: 'gilbert-elliott', p: 0.02, r: 0.25, lossInBad: 1, lossInGood: 0.005 },
      blackoutEvery: { periodMs: 60_000, durationMs: 12_000, offsetMs: 40_000 },
    },
    down: {
      delay: { baseMs: 100, jitterMs: 30, distribution: 'normal' },
      rateBitsPerSecond: 780 * kbit,
      queueBytes: 64 * 1024,
      loss: { model: 'gilbert-elliott', p: 0.02, r: 0.25, lossInBad: 1, lossInGood: 0.005 },
      blackoutEvery: { periodMs: 60_000, durationMs: 12_000, offsetMs: 40_000 },
    },
  },
  {
    name: 'elevator',
    description: 'lift ride: LTE figures, fading bursts, an 8 s blackout every 40 s',
    source: 'pigeon (seeds: seconds-long blackouts in lifts) over the NLC LTE figures; Gilbert-Elliott p=5 %, r=30 %',
    up: {
      delay: { baseMs: 65, jitterMs: 20, distribution: 'pareto' },
      rateBitsPerSecond: 10 * mbit,
      queueBytes: 256 * 1024,
      loss: { model: 'gilbert-elliott', p: 0.05, r: 0.3, lossInBad: 0.9, lossInGood: 0.01 },
      blackoutEvery: { periodMs: 40_000, durationMs: 8_000, offsetMs: 20_000 },
    },
    down: {
      delay: { baseMs: 50, jitterMs: 20, distribution: 'pareto' },
      rateBitsPerSecond: 50 * mbit,
      queueBytes: 512 * 1024,
      loss: { model: 'gilbert-elliott', p: 0.05, r: 0.3, lossInBad: 0.9, lossInGood: 0.01 },
      blackoutEvery: { periodMs: 40_000, durationMs: 8_000, offsetMs: 20_000 },
    },
  },
]

export const PRESETS: ReadonlyMap<string, Preset> = new Map(list.map((p) => [p.name, p]))
export const presetNames = (): string[] => [...PRESETS.keys()]

/** A deep copy, so callers may change it. */
export const getPreset = (name: string): Preset | undefined => {
  const p = PRESETS.get(name.toLowerCase())
  return p ? structuredClone(p) : undefined
}
