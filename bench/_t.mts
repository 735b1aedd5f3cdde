import { spawn } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { once } from 'node:events'
const sink = createSocket('udp4'); sink.bind(0, '127.0.0.1'); await once(sink, 'listening')
const errors: number[] = []
sink.on('message', (m: Buffer) => errors.push(performance.now() - m.readDoubleLE(0) - 50))
const child = spawn(process.execPath, ['--trace-gc', 'bin/pigeon-lossy-link.js', '--listen', '127.0.0.1:0', '--upstream', `127.0.0.1:${sink.address().port}`, '--delay', '50ms', '--http', '127.0.0.1:0', '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'ignore'] })
let udp = 0, http = 0, gc: string[] = []
child.stdout!.setEncoding('utf8')
await new Promise<void>((resolve) => child.stdout!.on('data', (d: string) => { for (const line of d.split('\n')) { if (line.includes('"listening"')) { const j = JSON.parse(line); udp = +j.udp.split(':')[1]; http = +j.http.split(':')[1]; resolve() } else if (line.includes('Scavenge') || line.includes('Mark')) gc.push(line) } }))
gc = []
const s = createSocket('udp4'); await new Promise<void>((r) => s.connect(udp, '127.0.0.1', r))
let i = 0; const t0 = performance.now()
await new Promise<void>((resolve) => { const iv = setInterval(() => { const due = Math.min(6000, Math.floor((performance.now() - t0) * 2)); for (; i < due; i++) { const b = Buffer.alloc(64); b.writeDoubleLE(performance.now(), 0); s.send(b) } if (i >= 6000) { clearInterval(iv); resolve() } }, 1) })
await new Promise((r) => setTimeout(r, 300))
const st = await (await fetch(`http://127.0.0.1:${http}/stats/up`)).json() as any
console.log('proxy timing', st.timingErrorHistogram.buckets.map((b: any) => `${b.le}:${b.count}`).join(' '))
const abs = errors.map(Math.abs).sort((a, b) => a - b)
console.log('sink n', errors.length, 'p50', abs[3000].toFixed(3), 'p99', abs[Math.floor(abs.length * 0.99)].toFixed(3), 'max', abs[abs.length - 1].toFixed(3))
console.log('gc events', gc.length); for (const g of gc.slice(0, 8)) console.log(g.slice(0, 140))
child.kill(); s.close(); sink.close()
