/**
 * UDP echo bench: round trips per second and RTT through the real I/O layer
 * (UdpEndpoint + echo server; CRC-32C, or Noise NK + ChaCha20-Poly1305) against a plain
 * node:dgram echo measured in the same run. The servers run here; each client runs in
 * a child process of its own (bench/udp-echo-client.ts), the same layout for all three,
 * so each side has its own core. Loopback, 64-byte messages, 1 and 32 messages in flight.
 *
 * Wall-clock rates on a shared host swing by tens of percent from one second to the
 * next, so every case is measured in several short rounds (after one unrecorded pass
 * that warms the servers' JIT; each client gets a second of warm-up), the cases
 * interleaved and their order rotated within each round. The table gives medians; the
 * ratio to plain dgram is the median of the per-round ratios (each against the raw echo
 * of the same round), with its range. `otherCpuPct` is the host's CPU time spent by
 * anything but this bench's two processes during the measurements (Linux only). With
 * one message in flight the rate is a ping-pong of wake-ups: on an idle host each
 * wake-up of a halted vCPU costs tens of microseconds for either echo, while other load
 * keeps the vCPUs awake, the raw echo speeds up several-fold, and the ratio falls to
 * roughly the ratio of CPU time per round trip. Read the ratio with that column.
 *
 * Run with `npm run bench -- udp-echo` (add `--quick` for a smoke run), or from source
 * with `npx tsx bench/udp-echo.ts`.
 */
import { spawn } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { generateStaticKeyPair } from '../src/core/crypto/noise-nk.js'
import { CryptoRng } from '../src/io/crypto-rng.js'
import { nodeCryptoBackend } from '../src/io/node-crypto-backend.js'
import { startEchoServer } from '../src/io/server.js'
import type { BenchReport } from './report.js'
import type { EchoClientArgs, EchoClientResult } from './udp-echo-client.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
// Run from source (tsx) or compiled (dist/, `npm run bench`): the client follows suit.
const FROM_SOURCE = import.meta.url.endsWith('.ts')
const CLIENT = fileURLToPath(new URL(FROM_SOURCE ? './udp-echo-client.ts' : './udp-echo-client.js', import.meta.url))
const CLIENT_ARGV = FROM_SOURCE ? ['--import', 'tsx', CLIENT] : [CLIENT]
const SIZE_BYTES = 64
const WINDOWS = [1, 32]
const IMPLS = ['raw', 'pigeon', 'pigeon-encrypted'] as const

type Impl = (typeof IMPLS)[number]

interface Sample {
  round: number
  impl: Impl
  window: number
  client: EchoClientResult
  serverCpuMs: number
  /** CPU time of the client process over the measure window (NaN where /proc is missing). */
  clientCpuMs: number
  /** Host CPU time over the measure window, all cores (NaN where /proc is missing). */
  hostBusyMs: number
  hostCapacityMs: number
}

/** Busy and total CPU time of the whole host so far, in ms (null without /proc). */
const hostCpu = (): { busyMs: number; totalMs: number } | null => {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number)
    const total = f.reduce((a, b) => a + b, 0)
    // /proc/stat counts USER_HZ ticks (100 per second on Linux).
    return { busyMs: (total - f[3] - f[4]) * 10, totalMs: total * 10 }
  } catch {
    return null
  }
}

/**
 * CPU time (user + system, all threads) a child process has used so far, in ms, from
 * /proc/<pid>/stat: the accounting getrusage gives this process (NaN without /proc).
 */
const processCpuMs = (pid: number | undefined): number => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may hold spaces): utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 10 // USER_HZ = 100
  } catch {
    return NaN
  }
}

/** Runs one client; returns its result and the CPU time spent (here, by it, by the host) during its measure window. */
const runClient = async (args: EchoClientArgs): Promise<Omit<Sample, 'round' | 'impl' | 'window'>> => {
  const child = spawn(process.execPath, [...CLIENT_ARGV, JSON.stringify(args)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
  let cpuStart: NodeJS.CpuUsage | undefined
  let clientStartMs = NaN
  let hostStart: ReturnType<typeof hostCpu> = null
  let serverCpuMs = NaN
  let clientCpuMs = NaN
  let hostBusyMs = NaN
  let hostCapacityMs = NaN
  let result: EchoClientResult | undefined
  createInterface({ input: child.stdout }).on('line', (line) => {
    const j = JSON.parse(line) as { phase?: string } & EchoClientResult
    if (j.phase === 'measure') {
      cpuStart = process.cpuUsage()
      clientStartMs = processCpuMs(child.pid)
      hostStart = hostCpu()
    } else if (j.phase === 'done' && cpuStart !== undefined) {
      const cpu = process.cpuUsage(cpuStart)
      serverCpuMs = (cpu.user + cpu.system) / 1000
      clientCpuMs = processCpuMs(child.pid) - clientStartMs
      const hostEnd = hostCpu()
      if (hostStart !== null && hostEnd !== null) {
        hostBusyMs = hostEnd.busyMs - hostStart.busyMs
        hostCapacityMs = hostEnd.totalMs - hostStart.totalMs
      }
    } else result = j
  })
  const [code] = (await once(child, 'exit')) as [number | null]
  if (code !== 0 || result === undefined) throw new Error(`bench client exited with ${code}`)
  return { client: result, serverCpuMs, clientCpuMs, hostBusyMs, hostCapacityMs }
}

/** The reference: the smallest echo node:dgram can do. */
const startRawEcho = async (): Promise<{ port: number; close: () => Promise<void> }> => {
  const socket = createSocket('udp4')
  socket.on('message', (m, r) => socket.send(m, r.port, r.address))
  socket.bind(0, '127.0.0.1')
  await once(socket, 'listening')
  return {
    port: socket.address().port,
    close: async () => {
      socket.close()
      await once(socket, 'close')
    },
  }
}

const round = (x: number, digits: number): number => Number(x.toFixed(digits))
const median = (xs: number[]): number => {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b)
  if (s.length === 0) return NaN
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2
}
const perSecond = (s: Sample): number => (s.client.roundTrips * 1000) / s.client.elapsedMs

export async function run(opts: { quick?: boolean } = {}): Promise<BenchReport> {
  const quick = opts.quick === true
  const rounds = quick ? 1 : 5
  // Each client is a fresh process: give its JIT a second before measuring.
  const warmupMs = quick ? 200 : 1000
  const measureMs = quick ? 600 : 1200
  const pigeon = await startEchoServer({ host: '127.0.0.1', port: 0 })
  const keyPair = generateStaticKeyPair({ rng: new CryptoRng(), backend: nodeCryptoBackend })
  const encrypted = await startEchoServer({ host: '127.0.0.1', port: 0, security: { staticKeyPair: keyPair } })
  const keyHex = Buffer.from(keyPair.publicKey).toString('hex')
  const raw = await startRawEcho()
  const ports: Record<Impl, number> = { raw: raw.port, pigeon: pigeon.port, 'pigeon-encrypted': encrypted.port }
  const samples: Sample[] = []
  try {
    // One unrecorded pass first, so the servers' JIT is warm in the first round too.
    if (!quick) {
      for (const impl of IMPLS) {
        await runClient({ impl, port: ports[impl], window: 1, sizeBytes: SIZE_BYTES, warmupMs, measureMs: 200, serverKeyHex: impl === 'pigeon-encrypted' ? keyHex : undefined })
      }
    }
    for (let r = 0; r < rounds; r++) {
      for (const window of WINDOWS) {
        // Rotate the order so no case always runs first (or right after another).
        const order = IMPLS.map((_, i) => IMPLS[(i + r) % IMPLS.length])
        for (const impl of order) {
          const args: EchoClientArgs = { impl, port: ports[impl], window, sizeBytes: SIZE_BYTES, warmupMs, measureMs }
          if (impl === 'pigeon-encrypted') args.serverKeyHex = keyHex
          samples.push({ round: r, impl, window, ...(await runClient(args)) })
        }
      }
    }
  } finally {
    await Promise.all([pigeon.close(), encrypted.close(), raw.close()])
  }

  const rawOf = (s: Sample): Sample => samples.find((x) => x.impl === 'raw' && x.window === s.window && x.round === s.round)!
  const table = WINDOWS.flatMap((window) =>
    IMPLS.map((impl) => {
      const mine = samples.filter((s) => s.impl === impl && s.window === window)
      const ratios = mine.map((s) => perSecond(s) / perSecond(rawOf(s)))
      const roundTrips = (s: Sample): number => Math.max(1, s.client.roundTrips)
      return {
        impl,
        inFlight: window,
        roundTripsPerSecond: Math.round(median(mine.map(perSecond))),
        vsRawDgram: round(median(ratios), 2),
        vsRawRange: `${round(Math.min(...ratios), 2)}-${round(Math.max(...ratios), 2)}`,
        rttP50Ms: round(median(mine.map((s) => s.client.rttP50Ms)), 3),
        rttP99Ms: round(median(mine.map((s) => s.client.rttP99Ms)), 3),
        serverCpuUsPerRoundTrip: round(median(mine.map((s) => (s.serverCpuMs * 1000) / roundTrips(s))), 1),
        clientCpuUsPerRoundTrip: round(median(mine.map((s) => (s.clientCpuMs * 1000) / roundTrips(s))), 1),
        otherCpuPct: round(Math.max(0, median(mine.map((s) => (100 * (s.hostBusyMs - s.serverCpuMs - s.clientCpuMs)) / s.hostCapacityMs))), 0),
        lost: mine.reduce((a, s) => a + s.client.lost, 0),
      }
    }),
  )
  const encryptedOne = table.find((r) => r.impl === 'pigeon-encrypted' && r.inFlight === 1)!
  return {
    name: 'udp-echo',
    table,
    targets: [
      {
        metric: `encrypted echo round trips/s vs plain dgram echo (one in flight; median of ${rounds} rounds, range ${encryptedOne.vsRawRange})`,
        value: encryptedOne.vsRawDgram,
        target: '>= 0.5',
        pass: encryptedOne.vsRawDgram >= 0.5,
      },
    ],
    json: { sizeBytes: SIZE_BYTES, quick, rounds, warmupMs, measureMs, cpus: availableParallelism(), samples },
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const report = await run({ quick: process.argv.includes('--quick') })
  console.table(report.table)
  for (const t of report.targets) console.log(`${t.pass ? 'PASS' : 'MISS'} ${t.metric}: ${t.value} (goal ${t.target})`)
}
