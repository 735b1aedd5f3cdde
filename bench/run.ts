/**
 * `npm run bench`: runs every benchmark module, prints one JSON document (machine
 * readable) followed by readable tables, and writes the JSON to bench/out/latest.json.
 *   npm run bench                 all benchmarks
 *   npm run bench -- core-sim     only the named ones
 *   npm run bench -- --quick      shorter runs (smoke test)
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { BenchReport } from './report.js'

type BenchModule = { run: (opts: { quick?: boolean }) => Promise<BenchReport> }

const MODULES: Record<string, () => Promise<BenchModule>> = {
  'core-sim': () => import('./core-sim.js'),
  'core-perf': () => import('./core-perf.js'),
  'udp-echo': () => import('./udp-echo.js'),
  crypto: () => import('./crypto.js'),
  'lossy-link': () => import('./lossy-link.js'),
  'chat-throughput': () => import('./chat-throughput.js'),
  'chat-capacity': () => import('./chat-capacity.js'),
  // Needs root (network namespaces + nftables random drop); reports "skipped" otherwise.
  'chat-vs-tcp': () => import('../tools/lossy-link/compare/run.js'),
}

const args = process.argv.slice(2)
const quick = args.includes('--quick')
const names = args.filter((a) => !a.startsWith('--'))
const selected = names.length > 0 ? names : Object.keys(MODULES)
for (const name of selected) {
  if (!(name in MODULES)) {
    console.error(`unknown benchmark '${name}'; known: ${Object.keys(MODULES).join(', ')}`)
    process.exit(2)
  }
}

const printTable = (rows: Array<Record<string, string | number>>): void => {
  if (rows.length === 0) return
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))]
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? '').length)))
  const line = (cells: string[]): string => cells.map((cell, i) => cell.padEnd(widths[i])).join('  ')
  console.log(line(columns))
  console.log(line(widths.map((w) => '-'.repeat(w))))
  for (const r of rows) console.log(line(columns.map((c) => String(r[c] ?? ''))))
}

const reports: BenchReport[] = []
for (const name of selected) {
  const started = performance.now()
  const mod = await MODULES[name]()
  const report = await mod.run({ quick })
  console.error(`${name}: ${((performance.now() - started) / 1000).toFixed(1)} s`)
  reports.push(report)
}

const document = { date: new Date().toISOString(), node: process.version, quick, reports }
const outDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'bench', 'out')
mkdirSync(outDir, { recursive: true })
writeFileSync(join(outDir, 'latest.json'), JSON.stringify(document, null, 2))
console.log(JSON.stringify(document))
for (const r of reports) {
  console.log(`\n## ${r.name}`)
  printTable(r.table)
  if (r.targets.length > 0) {
    console.log('')
    printTable(r.targets.map((t) => ({ target: t.pass ? 'PASS' : 'MISS', metric: t.metric, value: t.value, goal: t.target })))
  }
}
