import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { createSocket } from 'node:dgram'
const SINK = `
import dgram from 'node:dgram'
const s = dgram.createSocket('udp4')
let received = 0, firstMs = 0, lastMs = 0
s.on('message', () => { const now = performance.now(); if (received++ === 0) firstMs = now; lastMs = now })
s.bind(0, '127.0.0.1', () => { s.setRecvBufferSize(8 << 20); console.log(JSON.stringify({ port: s.address().port })) })
process.stdin.on('data', () => {})
process.stdin.on('end', () => { console.log(JSON.stringify({ received, ms: lastMs - firstMs })); s.close() })
`
const c = spawn('taskset', ['-c', '1', process.execPath, '--input-type=module', '-e', SINK], { stdio: ['pipe', 'pipe', 'inherit'] })
c.stdout.on('data', (d) => console.error('raw stdout:', String(d)))
const it = createInterface({ input: c.stdout })[Symbol.asyncIterator]()
const first = await it.next()
console.log(first)
const port = JSON.parse(first.value).port
const u = createSocket('udp4')
for (let i = 0; i < 1000; i++) u.send('x', port, '127.0.0.1')
await new Promise((r) => setTimeout(r, 500))
c.stdin.end()
console.log(await it.next())
u.close()
