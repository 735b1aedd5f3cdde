/**
 * Protocol core on the simulated network: chat latency and bulk goodput over a matrix of
 * loss rates (Bernoulli and bursty Gilbert-Elliott) and RTTs, plus wire overhead.
 * Virtual time, seeded: the same command prints the same figures.
 */
import { Endpoint } from '../src/core/endpoint.js'
import { nullProtection } from '../src/core/protection.js'
import type { SessionConfig } from '../src/core/session/config.js'
import type { Session } from '../src/core/session/session.js'
import { EndpointNode } from '../src/sim/endpoint-node.js'
import type { ImpairmentConfig, LossConfig } from '../src/sim/models/index.js'
import { SimNetwork } from '../src/sim/network.js'
import { type BenchReport, percentile, round } from './report.js'

const LOSSES = [0, 0.01, 0.05, 0.1, 0.2, 0.3]
const RTTS = [20, 100, 300]
const MODELS = ['bernoulli', 'bursty'] as const
type Model = (typeof MODELS)[number]

/** Bursty: Gilbert-Elliott with mean burst length 3 packets and the given mean loss. */
export const lossConfig = (model: Model, loss: number): LossConfig | undefined => {
  if (loss === 0) return undefined
  if (model === 'bernoulli') return { model: 'bernoulli', probability: loss }
  const r = 1 / 3
  return { model: 'gilbert-elliott', p: (loss * r) / (1 - loss), r }
}

interface Harness {
  net: SimNetwork
  client: Endpoint<string>
  server: Endpoint<string>
  clientSession: Session
  serverSession: () => Session | undefined
  onServerMessage: (fn: (atMs: number, seq: number, data: Uint8Array) => void) => void
}

const harness = (seed: number, up: ImpairmentConfig, down: ImpairmentConfig, config?: Partial<SessionConfig>): Harness => {
  const net = new SimNetwork({ seed })
  const server = new Endpoint<string>({ rng: net.rngFor('server'), server: true, sessionConfig: config, protection: () => nullProtection })
  const client = new Endpoint<string>({ rng: net.rngFor('client'), server: false, sessionConfig: config, protection: () => nullProtection })
  let serverSession: Session | undefined
  let onMessage: (atMs: number, seq: number, data: Uint8Array) => void = () => {}
  net.addNode('server', new EndpointNode(server, (t, e) => {
    if (e.event.type === 'accepted') serverSession = e.session
    else if (e.event.type === 'message') onMessage(t, e.event.seq, e.event.data)
  }))
  net.addNode('client', new EndpointNode(client, () => {}))
  net.setLink('client', 'server', up)
  net.setLink('server', 'client', down)
  const clientSession = client.connect(net.nowMs, 'server')
  net.nodeWake('client')
  net.runUntil({ untilMs: 120_000, predicate: () => clientSession.isEstablished && serverSession?.isEstablished === true })
  return { net, client, server, clientSession, serverSession: () => serverSession, onServerMessage: (fn) => (onMessage = fn) }
}

export interface ChatResult {
  model: Model
  lossPct: number
  rttMs: number
  messages: number
  delivered: number
  p50Ms: number
  p99Ms: number
  maxMs: number
  p99OverRtt: number
  maxOverRtt: number
  p50OverFloor: number
  wireBytesPerPayloadByte: number
}

/** Small messages (60 bytes) every 20 ms, client to server; latency from send to delivery. */
export const runChat = (o: { model: Model; loss: number; rttMs: number; messages: number; seed: number }): ChatResult => {
  const oneWayMs = o.rttMs / 2
  const link: ImpairmentConfig = { delay: { baseMs: oneWayMs }, loss: lossConfig(o.model, o.loss) }
  const h = harness(o.seed, link, link)
  const sentAt: number[] = []
  const latencies: number[] = []
  h.onServerMessage((atMs, seq) => latencies.push(atMs - sentAt[seq]))
  const start = h.net.nowMs + 100
  const payload = new Uint8Array(60)
  for (let i = 0; i < o.messages; i++) {
    h.net.at(start + i * 20, (now) => {
      const seq = h.clientSession.send(now, 0, payload)
      sentAt[seq] = now
      h.client.wake(h.clientSession)
      h.net.nodeWake('client')
    })
  }
  const bytesBefore = h.clientSession.stats.bytesSent + (h.serverSession()?.stats.bytesSent ?? 0)
  h.net.runUntil({ untilMs: start + o.messages * 20 + 60_000, predicate: () => latencies.length === o.messages })
  const wire = h.clientSession.stats.bytesSent + (h.serverSession()?.stats.bytesSent ?? 0) - bytesBefore
  latencies.sort((a, b) => a - b)
  const p99 = percentile(latencies, 99)
  const max = latencies[latencies.length - 1]
  return {
    model: o.model,
    lossPct: o.loss * 100,
    rttMs: o.rttMs,
    messages: o.messages,
    delivered: latencies.length,
    p50Ms: round(percentile(latencies, 50)),
    p99Ms: round(p99),
    maxMs: round(max),
    p99OverRtt: round(p99 / o.rttMs),
    maxOverRtt: round(max / o.rttMs),
    p50OverFloor: round(percentile(latencies, 50) / oneWayMs),
    wireBytesPerPayloadByte: round(wire / (o.messages * payload.length)),
  }
}

export interface BulkResult {
  model: Model
  lossPct: number
  rttMs: number
  cc: string
  goodputMbps: number
  goodputFraction: number
  wireBytesPerPayloadByte: number
}

/**
 * Bulk transfer through a 10 Mbit/s bottleneck with a drop-tail queue of one BDP (min
 * 30 packets): goodput measured over the last 20 s of a 25 s transfer, as a fraction
 * of the bottleneck rate.
 */
export const runBulk = (o: { model: Model; loss: number; rttMs: number; seed: number; cc?: SessionConfig['congestionController']; seconds?: number }): BulkResult => {
  const rateBitsPerSecond = 10_000_000
  const oneWayMs = o.rttMs / 2
  const bdpBytes = (rateBitsPerSecond / 8) * (o.rttMs / 1000)
  const loss = lossConfig(o.model, o.loss)
  const up: ImpairmentConfig = { delay: { baseMs: oneWayMs }, loss, rateBitsPerSecond, queueBytes: Math.max(bdpBytes, 30 * 1200) }
  const down: ImpairmentConfig = { delay: { baseMs: oneWayMs }, loss }
  const config: Partial<SessionConfig> = { congestionController: o.cc ?? 'bbr' }
  const h = harness(o.seed, up, down, config)
  const seconds = o.seconds ?? 25
  const warmupMs = 5_000
  const start = h.net.nowMs
  let deliveredBytes = 0
  h.onServerMessage((atMs, _seq, data) => {
    if (atMs >= start + warmupMs) deliveredBytes += data.length
  })
  const chunk = new Uint8Array(64 * 1024)
  const feed = (now: number): void => {
    // Keep about 2 MB queued so the sender is never application-limited.
    while (h.clientSession.sendBufferBytes < 2_000_000) h.clientSession.send(now, 1, chunk)
    h.client.wake(h.clientSession)
    h.net.nodeWake('client')
    if (now < start + seconds * 1000) h.net.at(now + 50, feed)
  }
  h.net.at(start, feed)
  const bytesBefore = h.clientSession.stats.bytesSent + (h.serverSession()?.stats.bytesSent ?? 0)
  h.net.runUntil({ untilMs: start + seconds * 1000, maxEvents: 50_000_000 })
  const wire = h.clientSession.stats.bytesSent + (h.serverSession()?.stats.bytesSent ?? 0) - bytesBefore
  const measuredSeconds = seconds - warmupMs / 1000
  const goodputBitsPerSecond = (deliveredBytes * 8) / measuredSeconds
  const totalDelivered = h.serverSession()?.stats.messagesDelivered ?? 0
  return {
    model: o.model,
    lossPct: o.loss * 100,
    rttMs: o.rttMs,
    cc: o.cc ?? 'bbr',
    goodputMbps: round(goodputBitsPerSecond / 1e6),
    goodputFraction: round(goodputBitsPerSecond / rateBitsPerSecond, 3),
    wireBytesPerPayloadByte: round(wire / Math.max(1, totalDelivered * chunk.length), 3),
  }
}

/** Protocol bytes of one packet carrying one small chat message (no ACK piggybacked). */
export const chatOverheadBytes = (payloadBytes: number): number => {
  const h = harness(7, { delay: { baseMs: 10 } }, { delay: { baseMs: 10 } })
  h.net.runUntil({ untilMs: h.net.nowMs + 1000 })
  h.clientSession.send(h.net.nowMs, 0, new Uint8Array(payloadBytes))
  const datagram = h.clientSession.pollTransmit(h.net.nowMs)!
  return datagram.length - payloadBytes
}

export async function run(opts: { quick?: boolean } = {}): Promise<BenchReport> {
  const messages = opts.quick ? 300 : 1500
  const chat: ChatResult[] = []
  for (const model of MODELS) for (const rttMs of RTTS) for (const loss of LOSSES) chat.push(runChat({ model, loss, rttMs, messages, seed: 42 }))
  const bulk: BulkResult[] = []
  const seconds = opts.quick ? 10 : 25
  for (const model of MODELS) for (const rttMs of RTTS) for (const loss of LOSSES) bulk.push(runBulk({ model, loss, rttMs, seed: 42, seconds }))
  const ccCompare = (['bbr', 'cubic', 'newreno'] as const).flatMap((cc) => [0, 0.01].map((loss) => runBulk({ model: 'bernoulli', loss, rttMs: 100, seed: 42, cc, seconds })))
  const overhead = chatOverheadBytes(60)

  const chatTarget = chat.find((c) => c.model === 'bernoulli' && c.lossPct === 10 && c.rttMs === 100)!
  const bulk1 = bulk.find((b) => b.model === 'bernoulli' && b.lossPct === 1 && b.rttMs === 100)!
  const bulk0 = bulk.find((b) => b.model === 'bernoulli' && b.lossPct === 0 && b.rttMs === 100)!
  return {
    name: 'core-sim',
    table: [
      ...chat.map((c) => ({ kind: 'chat', ...c })),
      ...bulk.map((b) => ({ kind: 'bulk', ...b })),
      ...ccCompare.map((b) => ({ kind: 'bulk-cc', ...b })),
    ],
    targets: [
      { metric: 'chat p99 / RTT (10% loss each way, RTT 100 ms)', value: chatTarget.p99OverRtt, target: '<= 2.5', pass: chatTarget.p99OverRtt <= 2.5 },
      { metric: 'chat max / RTT (10% loss each way, RTT 100 ms)', value: chatTarget.maxOverRtt, target: '<= 4', pass: chatTarget.maxOverRtt <= 4 },
      { metric: 'bulk goodput / bottleneck (1% loss, 100 ms, 10 Mbit/s)', value: bulk1.goodputFraction, target: '>= 0.80', pass: bulk1.goodputFraction >= 0.8 },
      { metric: 'bulk goodput / bottleneck (0% loss, 100 ms, 10 Mbit/s)', value: bulk0.goodputFraction, target: '>= 0.95', pass: bulk0.goodputFraction >= 0.95 },
      { metric: 'protocol overhead of one small chat message, bytes', value: overhead, target: '<= 20', pass: overhead <= 20 },
    ],
    json: { chat, bulk, ccCompare, chatOverheadBytes: overhead },
  }
}
