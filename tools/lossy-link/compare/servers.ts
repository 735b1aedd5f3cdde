/**
 * Runs inside the server namespace: a pigeon echo server (UDP) and a plain TCP
 * messaging echo (4-byte length prefix, Nagle off) side by side. Prints one JSON line
 * when both listen; exits when stdin closes.
 */
import { createServer } from 'node:net'
import { startEchoServer } from '../../../src/io/server.js'

const [host, pigeonPort, tcpPort] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])]

const pigeon = await startEchoServer({ host, port: pigeonPort, sessionConfig: { deadLinkTimeoutMs: 300_000, idleTimeoutMs: 600_000 } })
const tcp = createServer((socket) => {
  socket.setNoDelay(true)
  socket.on('error', () => {})
  // Echo framed messages back as they are: the bytes are already framed.
  socket.pipe(socket)
})
await new Promise<void>((resolve) => tcp.listen(tcpPort, host, resolve))
console.log(JSON.stringify({ ready: true, pigeon: pigeon.port, tcp: tcpPort }))
process.stdin.resume()
process.stdin.on('end', async () => {
  tcp.close()
  await pigeon.close()
  process.exit(0)
})
