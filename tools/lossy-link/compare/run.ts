/**
 * pigeon chat vs a plain TCP messaging baseline on exactly the same packet loss
 * (nftables random drop on a veth between two network namespaces), at 1/5/10/20/30 %
 * loss each way: message round-trip latency p50/p99/max and messages not back.
 *
 *   sudo npx tsx tools/lossy-link/compare/run.ts [--quick]
 *
 * Exports run() in the BenchReport shape so bench/run.ts can include it. Without root,
 * ip or nft it reports why it skipped.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { jsonLines } from '../json-lines.js'
import { once } from 'node:events'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { BenchReport } from '../../../bench/report.js'
import { NS_CLIENT, NS_SERVER, SERVER_IP, netnsAvailable, setLossPercent, setupNetns, teardownNetns } from './netns.js'

const LOSS_PERCENTS = [1, 5, 10, 20, 30]
const PIGEON_PORT = 7700
const TCP_PORT = 7701
// From the sources the helpers run through tsx; compiled (dist/), as plain .js.
const FROM_SOURCE = import.meta.url.endsWith('.ts')
const script = (name: string): string[] =>
  FROM_SOURCE ? ['--import', 'tsx', fileURLToPath(new URL(`${name}.ts`, import.meta.url))] : [fileURLToPath(new URL(`${name}.js`, import.meta.url))]

const spawnIn = (ns: string, name: string, args: Array<string | number>): ChildProcess =>
  spawn('ip', ['netns', 'exec', ns, process.execPath, ...script(name), ...args.map(String)], {
    stdio: ['pipe', 'pipe', 'inherit'],
    cwd: fileURLToPath(new URL('../../../', import.meta.url)),
  })


const summarize = (latencyMs: Array<number | null>) => {
  const got = latencyMs.filter((x): x is number => x !== null).sort((a, b) => a - b)
  const q = (p: number) => (got.length ? Math.round(got[Math.min(got.length - 1, Math.ceil(p * got.length) - 1)] * 10) / 10 : NaN)
  return { p50Ms: q(0.5), p99Ms: q(0.99), maxMs: got.length ? Math.round(got[got.length - 1] * 10) / 10 : NaN, notBack: latencyMs.length - got.length }
}

export async function run(opts: { quick?: boolean } = {}): Promise<BenchReport> {
  const why = netnsAvailable()
  if (why) return { name: 'chat-vs-tcp', table: [{ skipped: why }], targets: [], json: { skipped: why } }
  const count = opts.quick ? 60 : 300
  const intervalMs = 50
  const sizeBytes = 100
  const drainMs = 60_000
  setupNetns()
  const servers = spawnIn(NS_SERVER, 'servers', [SERVER_IP, PIGEON_PORT, TCP_PORT])
  const results: Array<Record<string, string | number>> = []
  const raw: unknown[] = []
  try {
    await jsonLines(servers)()
    for (const loss of LOSS_PERCENTS) {
      setLossPercent(0)
      const clients = ['pigeon', 'tcp'].map((protocol) => {
        const child = spawnIn(NS_CLIENT, 'chat-client', [protocol, SERVER_IP, protocol === 'pigeon' ? PIGEON_PORT : TCP_PORT, count, intervalMs, sizeBytes, drainMs])
        return { protocol, child, next: jsonLines(child), exit: once(child, 'exit') }
      })
      for (const c of clients) await c.next() // connected, on a clean link
      setLossPercent(loss)
      for (const c of clients) c.child.stdin!.write('go\n')
      const out = await Promise.all(clients.map((c) => c.next()))
      setLossPercent(0)
      for (const c of clients) await c.exit
      for (const o of out as Array<{ protocol: string; latencyMs: Array<number | null> }>) {
        const s = summarize(o.latencyMs)
        results.push({ loss: `${loss} %`, protocol: o.protocol, messages: count, ...s })
        raw.push({ lossPercent: loss, protocol: o.protocol, ...s, latencyMs: o.latencyMs })
      }
    }
  } finally {
    servers.stdin!.end()
    await once(servers, 'exit').catch(() => undefined)
    teardownNetns()
  }
  return {
    name: 'chat-vs-tcp',
    table: results,
    targets: [],
    json: { method: 'nftables numgen random drop on both veth ends, no added delay (no netem)', count, intervalMs, sizeBytes, results: raw },
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const report = await run({ quick: process.argv.includes('--quick') })
  console.table(report.table)
}
