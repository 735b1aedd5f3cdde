/**
 * Summarise a V8 heap snapshot (v8.writeHeapSnapshot; the chat server child writes one on
 * the 'heapSnapshot' request, e.g. with PIGEON_BENCH_CAPACITY_SNAPSHOT=1): self size and
 * count per constructor / node type, largest first, optionally divided by a session count.
 *
 *   node dist/bench/chat-heap.js file.heapsnapshot [sessions] [topN]
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] }; node_count: number }
  nodes: number[]
  strings: string[]
}

export const summariseHeap = (snap: Snapshot, sessions = 0, topN = 40): string => {
  const fields = snap.snapshot.meta.node_fields
  const types = snap.snapshot.meta.node_types[0]
  const stride = fields.length
  const iType = fields.indexOf('type')
  const iName = fields.indexOf('name')
  const iSize = fields.indexOf('self_size')
  const groups = new Map<string, { bytes: number; count: number }>()
  let total = 0
  for (let i = 0; i < snap.nodes.length; i += stride) {
    const type = types[snap.nodes[i + iType]]
    const size = snap.nodes[i + iSize]
    total += size
    let name = type
    if (type === 'object' || type === 'closure' || type === 'native') name = `${type}: ${snap.strings[snap.nodes[i + iName]]}`
    else if (type === 'hidden' || type === 'code' || type === 'array') name = `${type}: ${snap.strings[snap.nodes[i + iName]].slice(0, 60)}`
    const g = groups.get(name) ?? { bytes: 0, count: 0 }
    g.bytes += size
    g.count++
    groups.set(name, g)
  }
  const lines = [`total self size ${(total / 2 ** 20).toFixed(1)} MiB${sessions > 0 ? `, ${Math.round(total / sessions)} bytes per session` : ''}`]
  for (const [name, g] of [...groups].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, topN)) {
    const per = sessions > 0 ? `  ${(g.bytes / sessions).toFixed(0).padStart(6)} B/session  ${(g.count / sessions).toFixed(1).padStart(6)} /session` : ''
    lines.push(`${((g.bytes * 100) / total).toFixed(1).padStart(5)} %  ${(g.bytes / 2 ** 20).toFixed(1).padStart(7)} MiB  ${String(g.count).padStart(9)}${per}  ${name}`)
  }
  return lines.join('\n')
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = process.argv[2]
  if (file === undefined) {
    console.error('usage: chat-heap <file.heapsnapshot> [sessions] [topN]')
    process.exit(2)
  }
  console.log(summariseHeap(JSON.parse(readFileSync(file, 'utf8')) as Snapshot, Number(process.argv[3] ?? 0), Number(process.argv[4] ?? 40)))
}
