/**
 * The reference of bench/chat-throughput.ts: plain node:dgram echo with the same process
 * layout as the chat bench (echo server in one child process, the clients in another,
 * many round trips in flight). Requests:
 *   serve   (server role) bind an echo socket on 127.0.0.1; returns its port
 *   cpu     (server role) process.cpuUsage()
 *   run     (client role) `sockets` sockets, each keeping `window` 64-byte datagrams in
 *           flight; round trips completed in the measure window. A datagram unanswered
 *           for 500 ms counts as lost and is replaced, so loss does not shrink the window.
 */
import { type Socket, createSocket } from 'node:dgram'
import { once } from 'node:events'
import { serve, sleep } from './chat-common.js'

export interface EchoRunArgs {
  port: number
  sockets: number
  window: number
  sizeBytes: number
  warmupMs: number
  measureMs: number
}

export interface EchoRunResult {
  roundTrips: number
  elapsedMs: number
  lost: number
  clientCpuMs: number
}

let echo: Socket | undefined

const serveEcho = async (): Promise<{ port: number }> => {
  const socket = createSocket('udp4')
  socket.on('message', (m, r) => socket.send(m, r.port, r.address))
  socket.bind(0, '127.0.0.1')
  await once(socket, 'listening')
  socket.setRecvBufferSize(8 << 20)
  socket.setSendBufferSize(8 << 20)
  echo = socket
  return { port: socket.address().port }
}

const run = async (a: EchoRunArgs): Promise<EchoRunResult> => {
  const LOST_AFTER_MS = 500
  let measuring = false
  let roundTrips = 0
  let lost = 0
  let sending = true
  const socks: Array<{ socket: Socket; sentAt: Map<number, number>; sendOne: () => void }> = []
  for (let i = 0; i < a.sockets; i++) {
    const socket = createSocket('udp4')
    socket.connect(a.port, '127.0.0.1')
    await once(socket, 'connect')
    socket.setRecvBufferSize(1 << 20)
    const sentAt = new Map<number, number>()
    let next = 0
    const sendOne = (): void => {
      const payload = Buffer.alloc(a.sizeBytes)
      const n = next++ >>> 0
      payload.writeUInt32BE(n, 0)
      sentAt.set(n, performance.now())
      socket.send(payload)
    }
    socket.on('message', (m) => {
      if (!sentAt.delete(m.readUInt32BE(0))) return
      if (measuring) roundTrips++
      if (sending) sendOne()
    })
    socks.push({ socket, sentAt, sendOne })
  }
  const sweep = setInterval(() => {
    const now = performance.now()
    for (const s of socks) {
      for (const [n, t] of s.sentAt) {
        if (now - t < LOST_AFTER_MS) break // insertion order = sending order
        s.sentAt.delete(n)
        lost++
        if (sending) s.sendOne()
      }
    }
  }, 100)
  for (const s of socks) for (let i = 0; i < a.window; i++) s.sendOne()
  await sleep(a.warmupMs)
  const cpuStart = process.cpuUsage()
  const t0 = performance.now()
  measuring = true
  await sleep(a.measureMs)
  measuring = false
  const elapsedMs = performance.now() - t0
  const cpu = process.cpuUsage(cpuStart)
  sending = false
  clearInterval(sweep)
  await sleep(200)
  for (const s of socks) s.socket.close()
  return { roundTrips, elapsedMs, lost, clientCpuMs: (cpu.user + cpu.system) / 1000 }
}

serve(
  {
    serve: serveEcho,
    cpu: () => {
      const c = process.cpuUsage()
      return { cpuUserUs: c.user, cpuSystemUs: c.system }
    },
    run,
  },
  async () => {
    echo?.close()
  },
)
