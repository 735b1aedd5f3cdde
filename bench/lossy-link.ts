/**
 * Lossy-link bench (issue 5):
 * 1. packets/s forwarded on one core over real loopback UDP: the proxy (the real CLI)
 *    runs in its own process; a sender process blasts 200-byte datagrams at it; a sink
 *    here counts what comes out. Measured three ways in the same run: a 15-line raw
 *    dgram relay (the ceiling), the proxy with no impairments (plain forwarding), the
 *    proxy with impairments (1 % loss, 10 ± 2 ms delay, 0.1 % duplicate and corrupt).
 *    Target: >= 50,000 forwarded/s with impairments.
 * 2. delay timing accuracy: 50 ms configured; datagrams carry their send time, the
 *    sink measures the real one-way time. Target: p99 |actual - 50 ms| <= 2 ms.
 *
 * Run alone with `npx tsx bench/lossy-link.ts`.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createSocket, type Socket } from 'node:dgram'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { BenchReport } from './report.js'

const BIN = fileURLToPath(new URL('../bin/pigeon-lossy-link.js', import.meta.url))
const LOCAL = '127.0.0.1'
const PAYLOAD_BYTES = 200
const THROUGHPUT_MS = 3000

const RAW_RELAY = `
import dgram from 'node:dgram'
const [upstreamPort] = process.argv.slice(1).map(Number)
const listen = dgram.createSocket('udp4'); const up = dgram.createSocket('udp4')
let client
listen.on('message', (m, r) => { client = r; up.send(m) })
up.on('message', (m) => client && listen.send(m, client.port, client.address))
listen.bind(0, '127.0.0.1', () => up.connect(upstreamPort, '127.0.0.1', () => {
  for (const s of [listen, up]) { s.setRecvBufferSize(4 << 20); s.setSendBufferSize(4 << 20) }
  console.log(JSON.stringify({ msg: 'listening', udp: '127.0.0.1:' + listen.address().port }))
}))
`

const SENDER = `
import dgram from 'node:dgram'
const [port, durationMs, size] = process.argv.slice(1).map(Number)
const s = dgram.createSocket('udp4')
s.connect(port, '127.0.0.1', () => {
  s.setSendBufferSize(4 << 20)
  const buf = Buffer.alloc(size, 7); let sent = 0; const t0 = performance.now()
  const tick = () => {
    for (let i = 0; i < 32; i++) { s.send(buf); sent++ }
    if (performance.now() - t0 < durationMs) setImmediate(tick)
    else { console.log(JSON.stringify({ sent, ms: performance.now() - t0 })); s.close() }
  }
  tick()
})
`

interface Proxy { child: ChildProcess; udpPort: number; httpPort?: number }

const startProxy = async (args: string[] | 'raw', upstreamPort: number): Promise<Proxy> => {
  const child = args === 'raw'
    ? spawn(process.execPath, ['--input-type=module', '-e', RAW_RELAY, String(upstreamPort)], { stdio: ['ignore', 'pipe', 'inherit'] })
    : spawn(process.execPath, [BIN, '--listen', `${LOCAL}:0`, '--upstream', `${LOCAL}:${upstreamPort}`, '--http', `${LOCAL}:0`, '--seed', '1', ...args], { stdio: ['ignore', 'pipe', 'ignore'] })
  for await (const line of createInterface({ input: child.stdout! })) {
    const j = JSON.parse(line) as { msg: string; udp: string; http?: string }
    if (j.msg === 'listening') {
      return { child, udpPort: Number(j.udp.split(':').pop()), httpPort: j.http ? Number(j.http.split(':').pop()) : undefined }
    }
  }
  throw new Error('proxy exited before listening')
}

const stopProxy = async (p: Proxy): Promise<void> => {
  const exit = once(p.child, 'exit')
  p.child.kill('SIGTERM')
  await exit
}

/** CPU seconds (user + system) used so far by a process, from /proc. */
const cpuSeconds = (pid: number): number | null => {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return null
  }
}

const proxySent = async (p: Proxy): Promise<number | null> => {
  if (!p.httpPort) return null
  const s = (await (await fetch(`http://${LOCAL}:${p.httpPort}/stats`)).json()) as { up: { sent: number } }
  return s.up.sent
}

const openSink = async (): Promise<Socket> => {
  const sink = createSocket('udp4')
  sink.bind(0, LOCAL)
  await once(sink, 'listening')
  sink.setRecvBufferSize(4 << 20)
  return sink
}

const throughput = async (label: string, args: string[] | 'raw') => {
  const sink = await openSink()
  let received = 0
  let firstMs = 0
  let lastMs = 0
  sink.on('message', () => {
    const now = performance.now()
    if (received === 0) firstMs = now
    lastMs = now
    received++
  })
  const proxy = await startProxy(args, sink.address().port)
  const sentBefore = await proxySent(proxy)
  const cpu0 = cpuSeconds(proxy.child.pid!)
  const wall0 = performance.now()
  const sender = spawn(process.execPath, ['--input-type=module', '-e', SENDER, String(proxy.udpPort), String(THROUGHPUT_MS), String(PAYLOAD_BYTES)], { stdio: ['ignore', 'pipe', 'inherit'] })
  let senderOut = ''
  sender.stdout!.on('data', (c) => (senderOut += c))
  await once(sender, 'exit')
  // Let delayed datagrams drain (impairment delay is 10 ms): wait for the sink to go quiet.
  await new Promise<void>((resolve) => {
    let seen = -1
    const check = () => (received === seen ? resolve() : ((seen = received), setTimeout(check, 100)))
    check()
  })
  const wallS = (performance.now() - wall0) / 1000
  const cpu1 = cpuSeconds(proxy.child.pid!)
  const sentAfter = await proxySent(proxy)
  await stopProxy(proxy)
  sink.close()
  const { sent, ms } = JSON.parse(senderOut) as { sent: number; ms: number }
  const rxSeconds = (lastMs - firstMs) / 1000
  const forwardedPerS = Math.round(received / rxSeconds)
  return {
    row: {
      case: label,
      offeredPerS: Math.round(sent / (ms / 1000)),
      forwardedPerS,
      proxySentPerS: sentAfter !== null && sentBefore !== null ? Math.round((sentAfter - sentBefore) / rxSeconds) : '-',
      delivered: `${((received / sent) * 100).toFixed(1)} %`,
      proxyCpu: cpu0 !== null && cpu1 !== null ? `${Math.round(((cpu1 - cpu0) / wallS) * 100)} %` : '-',
    },
    forwardedPerS,
  }
}

const timingAccuracy = async (delayMs: number, ratePerS: number, durationMs: number) => {
  const sink = await openSink()
  const errors: number[] = []
  sink.on('message', (msg: Buffer) => errors.push(performance.now() - msg.readDoubleLE(0) - delayMs))
  const proxy = await startProxy(['--delay', `${delayMs}ms`], sink.address().port)
  const sender = createSocket('udp4')
  await new Promise<void>((resolve) => sender.connect(proxy.udpPort, LOCAL, resolve))
  const n = Math.round((ratePerS * durationMs) / 1000)
  const gapMs = 1000 / ratePerS
  const t0 = performance.now()
  let i = 0
  await new Promise<void>((resolve) => {
    const tick = () => {
      // Send whatever is due (the gap is below timer granularity), then yield.
      while (i < n && performance.now() - t0 >= i * gapMs) {
        const buf = Buffer.alloc(64)
        buf.writeDoubleLE(performance.now(), 0)
        sender.send(buf)
        i++
      }
      if (i < n) setImmediate(tick)
      else resolve()
    }
    tick()
  })
  await new Promise<void>((resolve) => {
    let seen = -1
    const check = () => (errors.length === seen ? resolve() : ((seen = errors.length), setTimeout(check, delayMs + 50)))
    check()
  })
  await stopProxy(proxy)
  sender.close()
  sink.close()
  const abs = errors.map(Math.abs).sort((a, b) => a - b)
  const q = (p: number) => abs[Math.min(abs.length - 1, Math.floor(p * abs.length))]
  const signed = [...errors].sort((a, b) => a - b)
  return {
    sent: n,
    received: errors.length,
    p50AbsErrorMs: round(q(0.5)),
    p99AbsErrorMs: round(q(0.99)),
    maxAbsErrorMs: round(abs[abs.length - 1]),
    minSignedErrorMs: round(signed[0]),
    meanSignedErrorMs: round(errors.reduce((a, b) => a + b, 0) / errors.length),
  }
}

const round = (x: number) => Math.round(x * 1000) / 1000

export async function run(): Promise<BenchReport> {
  const impaired = ['--loss', '1%', '--delay', '10ms', '--jitter', '2ms', '--duplicate', '0.1%', '--corrupt', '0.1%']
  const raw = await throughput('raw dgram relay (reference)', 'raw')
  const plain = await throughput('lossy-link, no impairments (reference)', [])
  const withImp = await throughput('lossy-link, loss 1 % + delay 10±2 ms + dup/corrupt 0.1 %', impaired)
  const timing = await timingAccuracy(50, 2000, 3000)
  const table: Array<Record<string, string | number>> = [raw.row, plain.row, withImp.row].map((r) => ({ ...r }))
  table.push({
    case: `delay 50 ms accuracy (${timing.received}/${timing.sent} datagrams at 2000/s)`,
    offeredPerS: 2000,
    forwardedPerS: '-',
    proxySentPerS: '-',
    delivered: `p50 ${timing.p50AbsErrorMs} / p99 ${timing.p99AbsErrorMs} / max ${timing.maxAbsErrorMs} ms`,
    proxyCpu: '-',
  })
  return {
    name: 'lossy-link',
    table,
    targets: [
      { metric: 'forwarded datagrams/s with impairments (one core)', value: withImp.forwardedPerS, target: '>= 50000', pass: withImp.forwardedPerS >= 50_000 },
      { metric: 'p99 |actual - configured| delay at 50 ms (ms)', value: timing.p99AbsErrorMs, target: '<= 2', pass: timing.p99AbsErrorMs <= 2 },
    ],
    json: { payloadBytes: PAYLOAD_BYTES, throughputMs: THROUGHPUT_MS, raw: raw.row, plain: plain.row, impaired: withImp.row, impairments: impaired.join(' '), timing },
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const report = await run()
  console.table(report.table)
  console.table(report.targets)
  console.log(JSON.stringify(report.json, null, 2))
}
