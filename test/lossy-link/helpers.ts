/** Shared helpers for the lossy-link tests (not a test file itself). */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram'
import { once } from 'node:events'
import { profileFrom, type Direction } from '../../tools/lossy-link/config.js'
import { LossyLink } from '../../tools/lossy-link/link.js'
import type { Delivery } from '../../src/sim/models/index.js'
import type { Test } from 'tap'

export type Asserter = Pick<Test, 'ok'>

/** |observed - expected| <= k sigma, with the numbers and the seed in the message. */
export const within = (
  t: Asserter,
  o: { observed: number; expected: number; sigma: number; k?: number; what: string; seed: number },
): void => {
  const k = o.k ?? 4.5
  const dev = Math.abs(o.observed - o.expected)
  t.ok(dev <= k * o.sigma, `${o.what}: observed ${o.observed.toFixed(5)}, expected ${o.expected.toFixed(5)} ± ${k}σ (${(k * o.sigma).toFixed(5)}) [seed ${o.seed}]`)
}

export const binomialSigma = (p: number, n: number): number => Math.sqrt((p * (1 - p)) / n)

export const meanSd = (xs: number[]): { mean: number; sd: number } => {
  let s = 0
  for (const x of xs) s += x
  const mean = s / xs.length
  let q = 0
  for (const x of xs) q += (x - mean) ** 2
  return { mean, sd: Math.sqrt(q / (xs.length - 1)) }
}

export const quantile = (xs: number[], q: number): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
}

export interface Offered { i: number; atMs: number; bytes: Uint8Array; dropped?: string; deliveries: Delivery[] }

/**
 * Run n datagrams through a profile on virtual time: one every gapMs, `size(i)` bytes,
 * payload = the index (so deliveries can be matched to what was offered).
 */
export const drive = (
  raw: unknown,
  o: { n: number; gapMs: number; seed: number; direction?: Direction; size?: (i: number) => number; startMs?: number },
): { link: LossyLink; offered: Offered[] } => {
  const link = new LossyLink({ seed: o.seed, profile: profileFrom(raw) })
  const offered: Offered[] = []
  const size = o.size ?? (() => 100)
  for (let i = 0; i < o.n; i++) {
    const atMs = (o.startMs ?? 0) + i * o.gapMs
    const bytes = new Uint8Array(size(i))
    new DataView(bytes.buffer).setUint32(0, i)
    const r = link.process(o.direction ?? 'up', atMs, bytes)
    offered.push(r.dropped !== undefined ? { i, atMs, bytes, dropped: r.dropped, deliveries: [] } : { i, atMs, bytes, deliveries: r.deliveries })
  }
  return { link, offered }
}

/** A UDP socket on 127.0.0.1 whose datagrams can be awaited one by one. */
export class UdpPeer {
  readonly socket: Socket
  private readonly queue: Array<{ msg: Buffer; rinfo: RemoteInfo }> = []
  private readonly waiters: Array<(m: { msg: Buffer; rinfo: RemoteInfo }) => void> = []
  /** Reply to every datagram with the same bytes. */
  echo = false

  private constructor(socket: Socket) {
    this.socket = socket
    socket.on('message', (msg, rinfo) => {
      if (this.echo) socket.send(msg, rinfo.port, rinfo.address)
      const w = this.waiters.shift()
      if (w) w({ msg, rinfo })
      else this.queue.push({ msg, rinfo })
    })
  }

  static async open(): Promise<UdpPeer> {
    const s = createSocket('udp4')
    s.bind(0, '127.0.0.1')
    await once(s, 'listening')
    return new UdpPeer(s)
  }

  get port(): number {
    return this.socket.address().port
  }

  next(): Promise<{ msg: Buffer; rinfo: RemoteInfo }> {
    const m = this.queue.shift()
    if (m) return Promise.resolve(m)
    return new Promise((resolve) => this.waiters.push(resolve))
  }

  get buffered(): number {
    return this.queue.length
  }

  send(bytes: string | Uint8Array, port: number, address = '127.0.0.1'): void {
    this.socket.send(bytes, port, address)
  }

  close(): void {
    this.socket.close()
  }
}
