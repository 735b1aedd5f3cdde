import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { PigeonClient } from '../src/io/client.ts'
const child = spawn(process.execPath, ['--import', 'tsx', 'src/server/main.ts', '--host', '127.0.0.1', '--port', '0', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'inherit'] })
child.stdout.on('data', (d) => process.stdout.write(d))
const port = await new Promise<number>((r) => createInterface({ input: child.stdout }).on('line', (l) => { const j = JSON.parse(l); if (j.msg === 'listening') r(j.port) }))
const c = await PigeonClient.connect({ host: '127.0.0.1', port })
const rtts: number[] = []
let t = 0
const end = performance.now() + 3000
await new Promise<void>((resolve) => {
  c.on('message', () => { rtts.push(performance.now() - t); if (performance.now() > end) resolve(); else { t = performance.now(); c.send(0, new Uint8Array(64)) } })
  t = performance.now(); c.send(0, new Uint8Array(64))
})
rtts.splice(0, 2000)
rtts.sort((a, b) => a - b)
console.log('n', rtts.length, [0.1, 0.25, 0.5, 0.75, 0.8, 0.9, 0.95, 0.99].map((p) => `p${p * 100}=${rtts[Math.floor(rtts.length * p)].toFixed(3)}`).join(' '))
console.log(c.stats.session, c.stats.io)
await c.close(); child.kill('SIGTERM')
