/**
 * Lossy-link bench (issue 5):
 * 1. packets/s forwarded on one core over real loopback UDP: the proxy (the real CLI)
 *    runs in its own process pinned to core 0 (taskset); a paced sender process and a
 *    counting sink process share core 1. The offered rate steps up (25k, 50k, 75k...
 *    datagrams/s of 200 bytes) until the proxy stops keeping up (more than 1 % of what
 *    was sent never entered it, i.e. its socket buffer overflowed); the best rate it
 *    kept up with is the result. Measured three ways in the same run: a 15-line raw
 *    dgram relay (the ceiling), the proxy with no impairments (plain forwarding), the
 *    proxy with impairments (1 % loss, 10 ± 2 ms delay, 0.1 % duplicate and corrupt).
 *    Target: >= 50,000 forwarded/s with impairments. "forwarded/s" is what the proxy
 *    wrote to its sockets per second (its own counter; duplicates included).
 * 2. delay timing accuracy: 50 ms configured; datagrams carry their send time, the
 *    sink measures the real one-way time. Target: p99 |actual - 50 ms| <= 2 ms.
 *
 * Run alone with `npx tsx bench/lossy-link.ts`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { BenchReport } from './report.js'

const BIN = fileURLToPath(new URL('../bin/pigeon-lossy-link.js', import.meta.url))
const LOCAL = '127.0.0.1'
const PAYLOAD_BYTES = 200
const STEP_MS = 1500
const RATES_PER_S = [25_000, 50_000, 75_000, 100_000, 125_000, 150_000, 200_000]

/** Pin the proxy to core 0 and the load generators to core 1 when taskset and 2 cores exist. */
const PIN = spawnSync('taskset', ['-c', '0', 'true']).status === 0 && spawnSync('nproc').stdout?.toString().trim() !== '1'
const pinned = (core: number, argv: string[]): [string, string[]] => (PIN ? ['taskset', ['-c', String(core), ...argv]] : [argv[0], argv.slice(1)])

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

// Paced sender: keeps sent == rate * elapsed, checking every millisecond.
const SENDER = `
import dgram from 'node:dgram'
const [port, durationMs, size, rate] = process.argv.slice(1).map(Number)
const s = dgram.createSocket('udp4')
s.connect(port, '127.0.0.1', () => {
  s.setSendBufferSize(4 << 20)
  const buf = Buffer.alloc(size, 7); let sent = 0; const t0 = performance.now()
  const iv = setInterval(() => {
    const elapsed = performance.now() - t0
    const due = Math.min(rate * Math.min(elapsed, durationMs) / 1000, rate * durationMs / 1000)
    while (sent < due) { s.send(buf); sent++ }
    if (elapsed >= durationMs) { clearInterval(iv); console.log(JSON.stringify({ sent, ms: elapsed })); s.close() }
  }, 1)
})
`

// Counting sink in its own process; prints its count when its stdin closes.
const SINK = `
import dgram from 'node:dgram'
const s = dgram.createSocket('udp4')
let received = 0, firstMs = 0, lastMs = 0
s.on('message', () => { const now = performance.now(); if (received++ === 0) firstMs = now; lastMs = now })
s.bind(0, '127.0.0.1', () => { s.setRecvBufferSize(8 << 20); console.log(JSON.stringify({ port: s.address().port })) })
process.stdin.on('data', () => {})
process.stdin.on('end', () => { console.log(JSON.stringify({ received, ms: lastMs - firstMs })); s.close() })
`

interface Proxy { child: ChildProcess; udpPort: number; httpPort?: number }

const startProxy = async (args: string[] | 'raw', upstreamPort: number): Promise<Proxy> => {
  const argv = args === 'raw'
    ? [process.execPath, '--input-type=module', '-e', RAW_RELAY, String(upstreamPort)]
    : [process.execPath, BIN, '--listen', `${LOCAL}:0`, '--upstream', `${LOCAL}:${upstreamPort}`, '--http', `${LOCAL}:0`, '--seed', '1', ...args]
  const [cmd, rest] = pinned(0, argv)
  const child = spawn(cmd, rest, { stdio: ['ignore', 'pipe', 'ignore'] })
  for await (const line of createInterface({ input: child.stdout! })) {
    const j = JSON.parse(line) as { msg: string; udp: string; http?: string }
    if (j.msg === 'listening') {
      return { child, udpPort: Number(j.udp.split(':').pop()), httpPort: j.http ? Number(j.http.split(':').pop()) : undefined }
    }
  }
  throw new Error('proxy exited before listening')
}

const stop = async (child: ChildProcess): Promise<void> => {
  if (child.exitCode !== null) return
  const exit = once(child, 'exit')
  child.kill('SIGTERM')
  await exit
}

/** CPU seconds (user + system) used so far by a process, from /proc (through taskset's exec it is the same pid). */
const cpuSeconds = (pid: number): number | null => {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return null
  }
}

interface ProxyCounters { offered: number; sent: number }

const proxyCounters = async (p: Proxy): Promise<ProxyCounters | null> => {
  if (!p.httpPort) return null
  const s = (await (await fetch(`http://${LOCAL}:${p.httpPort}/stats`)).json()) as { up: ProxyCounters }
  return { offered: s.up.offered, sent: s.up.sent }
}

const jsonLines = (child: ChildProcess) => {
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]()
  return async () => JSON.parse((await lines.next()).value as string) as Record<string, number>
}

/** One step: `rate` datagrams/s for STEP_MS through a fresh sink. */
const step = async (proxy: Proxy, sinkPort: number, sinkNext: () => Promise<Record<string, number>>, rate: number) => {
  void sinkPort
  const before = await proxyCounters(proxy)
  const cpu0 = cpuSeconds(proxy.child.pid!)
  const t0 = performance.now()
  const [cmd, rest] = pinned(1, [process.execPath, '--input-type=module', '-e', SENDER, String(proxy.udpPort), String(STEP_MS), String(PAYLOAD_BYTES), String(rate)])
  const sender = spawn(cmd, rest, { stdio: ['ignore', 'pipe', 'inherit'] })
  const senderNext = jsonLines(sender)
  const { sent, ms } = await senderNext()
  await once(sender, 'exit')
  const cpu1 = cpuSeconds(proxy.child.pid!)
  const wallS = (performance.now() - t0) / 1000
  // Give delayed datagrams (10 ms) time to leave before reading the counters.
  await new Promise((r) => setTimeout(r, 100))
  const after = await proxyCounters(proxy)
  void sinkNext
  return {
    rate,
    sent,
    seconds: ms / 1000,
    entered: after && before ? after.offered - before.offered : null,
    forwarded: after && before ? after.sent - before.sent : null,
    cpu: cpu0 !== null && cpu1 !== null ? (cpu1 - cpu0) / wallS : null,
  }
}

const throughput = async (label: string, args: string[] | 'raw') => {
  const [scmd, srest] = pinned(1, [process.execPath, '--input-type=module', '-e', SINK])
  let best: { rate: number; forwardedPerS: number; cpu: number | null; delivered: number } | undefined
  const steps: Array<Record<string, number | string>> = []
  for (const rate of RATES_PER_S) {
    const sink = spawn(scmd, srest, { stdio: ['pipe', 'pipe', 'inherit'] })
    const sinkNext = jsonLines(sink)
    if (process.env.BENCH_DEBUG) sink.stdout!.on("data", (d) => console.error("sink says", String(d)))
    const { port: sinkPort } = await sinkNext()
    const proxy = await startProxy(args, sinkPort)
    if (process.env.BENCH_DEBUG) console.error(label, rate, "proxy up")
    const s = await step(proxy, sinkPort, sinkNext, rate)
    if (process.env.BENCH_DEBUG) console.error(label, rate, "step done", s)
    sink.stdin!.end()
    if (process.env.BENCH_DEBUG) console.error("stdin ended", sink.exitCode, sink.pid)
    const { received } = await sinkNext()
    await stop(proxy.child)
    await once(sink, 'exit').catch(() => undefined)
    // The raw relay has no counters: everything that left it reached the sink.
    const entered = s.entered ?? received
    const forwarded = s.forwarded ?? received
    const keptUp = entered >= 0.99 * s.sent
    steps.push({ rate, sent: s.sent, entered, forwarded, received, cpu: s.cpu === null ? '-' : `${Math.round(s.cpu * 100)} %`, keptUp: keptUp ? 'yes' : 'no' })
    if (!keptUp) break
    best = { rate, forwardedPerS: Math.round(forwarded / s.seconds), cpu: s.cpu, delivered: received / s.sent }
  }
  const row = {
    case: label,
    maxOfferedKeptUpPerS: best?.rate ?? 0,
    forwardedPerS: best?.forwardedPerS ?? 0,
    receivedBySink: best ? `${(best.delivered * 100).toFixed(1)} %` : '-',
    proxyCpu: best?.cpu != null ? `${Math.round(best.cpu * 100)} %` : '-',
  }
  return { row, forwardedPerS: best?.forwardedPerS ?? 0, steps }
}

const timingAccuracy = async (delayMs: number, ratePerS: number, durationMs: number) => {
  const sink = createSocket('udp4')
  sink.bind(0, LOCAL)
  await once(sink, 'listening')
  const errors: number[] = []
  sink.on('message', (msg: Buffer) => errors.push(performance.now() - msg.readDoubleLE(0) - delayMs))
  const proxy = await startProxy(['--delay', `${delayMs}ms`], sink.address().port)
  const sender = createSocket('udp4')
  await new Promise<void>((resolve) => sender.connect(proxy.udpPort, LOCAL, resolve))
  const n = Math.round((ratePerS * durationMs) / 1000)
  const t0 = performance.now()
  let i = 0
  await new Promise<void>((resolve) => {
    // Paced by a 1 ms interval (a busy loop here would starve the sink of this process).
    const iv = setInterval(() => {
      const due = Math.min(n, Math.floor(((performance.now() - t0) * ratePerS) / 1000))
      for (; i < due; i++) {
        const buf = Buffer.alloc(64)
        buf.writeDoubleLE(performance.now(), 0)
        sender.send(buf)
      }
      if (i >= n) {
        clearInterval(iv)
        resolve()
      }
    }, 1)
  })
  await new Promise((r) => setTimeout(r, delayMs + 200))
  const proxyView = proxy.httpPort ? ((await (await fetch(`http://${LOCAL}:${proxy.httpPort}/stats/up`)).json()) as { timingErrorHistogram: unknown }).timingErrorHistogram : null
  await stop(proxy.child)
  sender.close()
  sink.close()
  const abs = errors.map(Math.abs).sort((a, b) => a - b)
  const q = (p: number) => abs[Math.min(abs.length - 1, Math.floor(p * abs.length))]
  return {
    sent: n,
    received: errors.length,
    p50AbsErrorMs: round(q(0.5)),
    p99AbsErrorMs: round(q(0.99)),
    maxAbsErrorMs: round(abs[abs.length - 1]),
    meanSignedErrorMs: round(errors.reduce((a, b) => a + b, 0) / errors.length),
    proxyTimingErrorHistogram: proxyView,
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
    case: `delay 50 ms, |actual - 50| (${timing.received}/${timing.sent} datagrams at 2000/s)`,
    maxOfferedKeptUpPerS: '-',
    forwardedPerS: '-',
    receivedBySink: `p50 ${timing.p50AbsErrorMs} / p99 ${timing.p99AbsErrorMs} / max ${timing.maxAbsErrorMs} ms`,
    proxyCpu: '-',
  })
  return {
    name: 'lossy-link',
    table,
    targets: [
      { metric: 'forwarded datagrams/s with impairments (one core)', value: withImp.forwardedPerS, target: '>= 50000', pass: withImp.forwardedPerS >= 50_000 },
      { metric: 'p99 |actual - configured| delay at 50 ms (ms)', value: timing.p99AbsErrorMs, target: '<= 2', pass: timing.p99AbsErrorMs <= 2 },
    ],
    json: {
      payloadBytes: PAYLOAD_BYTES,
      stepMs: STEP_MS,
      pinnedToCores: PIN,
      impairments: impaired.join(' '),
      raw,
      plain,
      impaired: withImp,
      timing,
    },
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const report = await run()
  console.table(report.table)
  console.table(report.targets)
  console.log(JSON.stringify(report.json, null, 2))
}
