/**
 * Runs inside the client namespace: one chat session (pigeon over UDP, or plain TCP),
 * connected before any loss is applied. On "go" (a line on stdin) it sends `count`
 * messages, one every `intervalMs` (open loop, like a person typing), and records each
 * message's echo round trip. Prints one JSON line with the latencies when every echo
 * is back or `drainMs` after the last send.
 */
import { connect } from 'node:net'
import { PigeonClient } from '../../../src/io/client.js'

const [protocol, host, port, count, intervalMs, sizeBytes, drainMs] = [
  process.argv[2], process.argv[3], Number(process.argv[4]), Number(process.argv[5]),
  Number(process.argv[6]), Number(process.argv[7]), Number(process.argv[8]),
]

const sentAt = new Array<number>(count)
const latencyMs = new Array<number | null>(count).fill(null)
let echoed = 0
let finish: () => void = () => {}
const done = new Promise<void>((resolve) => (finish = resolve))
const onEcho = (index: number): void => {
  if (index >= count || latencyMs[index] !== null) return
  latencyMs[index] = performance.now() - sentAt[index]
  if (++echoed === count) finish()
}

let send: (payload: Uint8Array) => void
let close: () => Promise<void>
if (protocol === 'pigeon') {
  const client = await PigeonClient.connect({ host, port, sessionConfig: { deadLinkTimeoutMs: 300_000, idleTimeoutMs: 600_000 } })
  client.on('message', (_s, _q, data) => onEcho(new DataView(data.buffer, data.byteOffset).getUint32(0)))
  send = (payload) => client.send(0, payload)
  close = () => client.close()
} else {
  const socket = connect(port, host)
  socket.setNoDelay(true)
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
  let buffered = Buffer.alloc(0)
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk])
    while (buffered.length >= 4 && buffered.length >= 4 + buffered.readUInt32BE(0)) {
      const len = buffered.readUInt32BE(0)
      onEcho(buffered.readUInt32BE(4))
      buffered = buffered.subarray(4 + len)
    }
  })
  send = (payload) => {
    const frame = Buffer.alloc(4 + payload.length)
    frame.writeUInt32BE(payload.length, 0)
    frame.set(payload, 4)
    socket.write(frame)
  }
  close = async () => {
    socket.destroy()
  }
}
console.log(JSON.stringify({ connected: true }))

await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()))
const t0 = performance.now()
for (let i = 0; i < count; i++) {
  const wait = t0 + i * intervalMs - performance.now()
  if (wait > 0) await new Promise((r) => setTimeout(r, wait))
  const payload = new Uint8Array(sizeBytes)
  new DataView(payload.buffer).setUint32(0, i)
  sentAt[i] = performance.now()
  send(payload)
}
const deadline = setTimeout(finish, drainMs)
await done
clearTimeout(deadline)
console.log(JSON.stringify({ protocol, latencyMs }))
await close()
process.exit(0)
