/**
 * UDP echo bench: round trips per second and RTT through the real I/O layer
 * (UdpEndpoint + echo server, CRC-32C protection) against a plain node:dgram echo
 * measured in the same run. The server runs here; the client runs in a child process
 * (bench/udp-echo-client.ts) so each side has its own core. Loopback, 64-byte
 * messages, 1 and 32 messages in flight. No targets yet: this is the baseline.
 *
 * Run with `npm run bench -- udp-echo` (add `--quick` for a smoke run), or from source
 * with `npx tsx bench/udp-echo.ts`.
 */
import { spawn } from 'node:child_process'
import { generateStaticKeyPair } from '../src/core/crypto/noise-nk.js'
import { CryptoRng } from '../src/io/crypto-rng.js'
import { nodeCryptoBackend } from '../src/io/node-crypto-backend.js'
import { createSocket } from 'node:dgram'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { startEchoServer } from '../src/io/server.js'
import type { EchoClientArgs, EchoClientResult } from './udp-echo-client.js'
import type { BenchReport } from './report.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
// Run from source (tsx) or compiled (dist/, `npm run bench`): the client follows suit.
const FROM_SOURCE = import.meta.url.endsWith('.ts')
const CLIENT = fileURLToPath(new URL(FROM_SOURCE ? './udp-echo-client.ts' : './udp-echo-client.js', import.meta.url))
const CLIENT_ARGV = FROM_SOURCE ? ['--import', 'tsx', CLIENT] : [CLIENT]
const SIZE_BYTES = 64
const WINDOWS = [1, 32]

interface Row {
  impl: 'pigeon' | 'pigeon-encrypted' | 'raw'
  window: number
  client: EchoClientResult
  serverCpuMs: number
}

/** Runs one client; returns its result and the CPU time this process spent during its measure window. */
const runClient = async (args: EchoClientArgs): Promise<{ client: EchoClientResult; serverCpuMs: number }> => {
  const child = spawn(process.execPath, [...CLIENT_ARGV, JSON.stringify(args)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
  let cpuStart: NodeJS.CpuUsage | undefined
  let serverCpuMs = NaN
  let result: EchoClientResult | undefined
  createInterface({ input: child.stdout }).on('line', (line) => {
    const j = JSON.parse(line) as { phase?: string } & EchoClientResult
    if (j.phase === 'measure') cpuStart = process.cpuUsage()
    else if (j.phase === 'done' && cpuStart !== undefined) {
      const cpu = process.cpuUsage(cpuStart)
      serverCpuMs = (cpu.user + cpu.system) / 1000
    } else result = j
  })
  const [code] = (await once(child, 'exit')) as [number | null]
  if (code !== 0 || result === undefined) throw new Error(`bench client exited with ${code}`)
  return { client: result, serverCpuMs }
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

const measure = async (impl: Row['impl'], port: number, window: number, quick: boolean, serverKeyHex?: string): Promise<Row> => {
  const { client, serverCpuMs } = await runClient({ impl, port, window, sizeBytes: SIZE_BYTES, warmupMs: quick ? 200 : 500, measureMs: quick ? 800 : 3000, serverKeyHex })
  return { impl, window, client, serverCpuMs }
}

const round = (x: number, digits: number): number => Number(x.toFixed(digits))

export async function run(opts: { quick?: boolean } = {}): Promise<BenchReport> {
  const quick = opts.quick === true
  const pigeon = await startEchoServer({ host: '127.0.0.1', port: 0 })
  const keyPair = generateStaticKeyPair({ rng: new CryptoRng(), backend: nodeCryptoBackend })
  const encrypted = await startEchoServer({ host: '127.0.0.1', port: 0, security: { staticKeyPair: keyPair } })
  const keyHex = Buffer.from(keyPair.publicKey).toString('hex')
  const raw = await startRawEcho()
  const rows: Row[] = []
  try {
    for (const window of WINDOWS) {
      rows.push(await measure('raw', raw.port, window, quick))
      rows.push(await measure('pigeon', pigeon.port, window, quick))
      rows.push(await measure('pigeon-encrypted', encrypted.port, window, quick, keyHex))
    }
  } finally {
    await Promise.all([pigeon.close(), encrypted.close(), raw.close()])
  }
  const table = rows.map((r) => {
    const perSecond = (r.client.roundTrips * 1000) / r.client.elapsedMs
    const reference = rows.find((x) => x.impl === 'raw' && x.window === r.window)!
    const referencePerSecond = (reference.client.roundTrips * 1000) / reference.client.elapsedMs
    return {
      impl: r.impl,
      inFlight: r.window,
      roundTripsPerSecond: Math.round(perSecond),
      vsRawDgram: round(perSecond / referencePerSecond, 2),
      rttP50Ms: round(r.client.rttP50Ms, 3),
      rttP99Ms: round(r.client.rttP99Ms, 3),
      serverCpuUsPerRoundTrip: round((r.serverCpuMs * 1000) / Math.max(1, r.client.roundTrips), 1),
      lost: r.client.lost,
    }
  })
  const encryptedOne = table.find((r) => r.impl === 'pigeon-encrypted' && r.inFlight === 1)!
  return {
    name: 'udp-echo',
    table,
    targets: [
      {
        metric: 'encrypted echo round trips/s vs plain dgram echo (one in flight)',
        value: encryptedOne.vsRawDgram,
        target: '>= 0.5',
        pass: encryptedOne.vsRawDgram >= 0.5,
      },
    ],
    json: { sizeBytes: SIZE_BYTES, quick, rows },
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const report = await run({ quick: process.argv.includes('--quick') })
  console.table(report.table)
}
