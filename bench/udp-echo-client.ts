/**
 * Client half of bench/udp-echo.ts, run in its own process so the server under test has
 * a core to itself. Keeps `window` messages in flight against an echo server (pigeon or
 * raw dgram) for warm-up + measure time, and prints one JSON line of results.
 * argv[2]: JSON of EchoClientArgs. Prints {phase:'measure'}, {phase:'done'}, then the result.
 */
import { createSocket } from 'node:dgram'
import { once } from 'node:events'
import { PigeonClient } from '../src/io/client.js'

export interface EchoClientArgs {
  impl: 'pigeon' | 'pigeon-encrypted' | 'raw'
  port: number
  /** pigeon-encrypted: the server's public key, hex. */
  serverKeyHex?: string
  window: number
  sizeBytes: number
  warmupMs: number
  measureMs: number
}

export interface EchoClientResult {
  roundTrips: number
  elapsedMs: number
  rttP50Ms: number
  rttP99Ms: number
  lost: number
  clientCpuMs: number
}

/** How a transport sends one payload and reports echoes. */
interface Transport {
  send(payload: Uint8Array): void
  onEcho(handler: (data: Uint8Array) => void): void
  close(): Promise<void>
}

const pigeonTransport = async (port: number, serverKeyHex?: string): Promise<Transport> => {
  const serverPublicKey = serverKeyHex === undefined ? undefined : new Uint8Array(Buffer.from(serverKeyHex, 'hex'))
  const client = await PigeonClient.connect({ host: '127.0.0.1', port, serverPublicKey })
  return {
    send: (p) => void client.send(0, p),
    onEcho: (h) => void client.on('message', (_s, _q, data) => h(data)),
    close: () => client.close(),
  }
}

const rawTransport = async (port: number): Promise<Transport> => {
  const socket = createSocket('udp4')
  socket.connect(port, '127.0.0.1')
  await once(socket, 'connect')
  return {
    send: (p) => socket.send(p),
    onEcho: (h) => void socket.on('message', (m) => h(m)),
    close: async () => {
      socket.close()
      await once(socket, 'close')
    },
  }
}

const percentile = (sorted: Float64Array, p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]

const run = async (a: EchoClientArgs): Promise<EchoClientResult> => {
  const transport = a.impl === 'raw' ? await rawTransport(a.port) : await pigeonTransport(a.port, a.serverKeyHex)
  const sentAtMs: number[] = []
  const rttsMs: number[] = []
  let next = 0
  let echoed = 0
  let measuring = false
  let measureStartMs = 0
  let measureRoundTrips = 0
  let sending = true
  const cpuStart = process.cpuUsage()
  const sendOne = (): void => {
    const payload = new Uint8Array(a.sizeBytes)
    new DataView(payload.buffer).setUint32(0, next)
    sentAtMs[next++] = performance.now()
    transport.send(payload)
  }
  const finished = new Promise<void>((resolve) => {
    transport.onEcho((data) => {
      const index = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0)
      const nowMs = performance.now()
      echoed++
      if (measuring && sentAtMs[index] >= measureStartMs) {
        rttsMs.push(nowMs - sentAtMs[index])
        measureRoundTrips++
      }
      if (sending) sendOne()
      else if (echoed === next) resolve()
    })
  })
  for (let i = 0; i < a.window; i++) sendOne()
  await new Promise((r) => setTimeout(r, a.warmupMs))
  measuring = true
  measureStartMs = performance.now()
  // Markers so the parent can read the server's CPU time over exactly this window.
  process.stdout.write(JSON.stringify({ phase: 'measure' }) + '\n')
  await new Promise((r) => setTimeout(r, a.measureMs))
  process.stdout.write(JSON.stringify({ phase: 'done' }) + '\n')
  const elapsedMs = performance.now() - measureStartMs
  measuring = false
  sending = false
  // Outstanding echoes drain; raw UDP may lose some, so do not wait forever.
  await Promise.race([finished, new Promise((r) => setTimeout(r, 1000))])
  const cpu = process.cpuUsage(cpuStart)
  await transport.close()
  const sorted = Float64Array.from(rttsMs).sort()
  return {
    roundTrips: measureRoundTrips,
    elapsedMs,
    rttP50Ms: percentile(sorted, 0.5),
    rttP99Ms: percentile(sorted, 0.99),
    lost: next - echoed,
    clientCpuMs: (cpu.user + cpu.system) / 1000,
  }
}

const result = await run(JSON.parse(process.argv[2]) as EchoClientArgs)
process.stdout.write(JSON.stringify(result) + '\n')
