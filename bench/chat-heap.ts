/**
 * Summarise a V8 heap snapshot (v8.writeHeapSnapshot; the chat server child writes one on
 * the 'heapSnapshot' request, e.g. with PIGEON_BENCH_CAPACITY_SNAPSHOT=1): self size and
 * count per constructor / node type, largest first, optionally divided by a session count.
 * With `--owners`, every node is instead grouped by the chain of its retainers (the first
 * strong retainer, up to four hops: `Session.tracker <- SentPacketTracker.packets <- ...`),
 * which tells whose buffers, element arrays and closures they are.
 *
 * With `--retained`, what each Session keeps alive (dominator tree), field by field.
 *
 *   node dist/bench/chat-heap.js file.heapsnapshot [sessions] [topN] [--owners | --retained]
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]]; edge_fields: string[]; edge_types: [string[], ...unknown[]] }; node_count: number }
  nodes: number[]
  edges: number[]
  strings: string[]
}

const nodeLabel = (type: string, name: string): string => {
  if (type === 'object' || type === 'closure' || type === 'native') return `${type}: ${name}`
  if (type === 'hidden' || type === 'code' || type === 'array') return `${type}: ${name.slice(0, 60)}`
  return type
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
    const name = nodeLabel(type, snap.strings[snap.nodes[i + iName]])
    const g = groups.get(name) ?? { bytes: 0, count: 0 }
    g.bytes += size
    g.count++
    groups.set(name, g)
  }
  return formatGroups(groups, total, sessions, topN)
}

const formatGroups = (groups: Map<string, { bytes: number; count: number }>, total: number, sessions: number, topN: number): string => {
  const lines = [`total self size ${(total / 2 ** 20).toFixed(1)} MiB${sessions > 0 ? `, ${Math.round(total / sessions)} bytes per session` : ''}`]
  for (const [name, g] of [...groups].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, topN)) {
    const per = sessions > 0 ? `  ${(g.bytes / sessions).toFixed(0).padStart(6)} B/session  ${(g.count / sessions).toFixed(1).padStart(6)} /session` : ''
    lines.push(`${((g.bytes * 100) / total).toFixed(1).padStart(5)} %  ${(g.bytes / 2 ** 20).toFixed(1).padStart(7)} MiB  ${String(g.count).padStart(9)}${per}  ${name}`)
  }
  return lines.join('\n')
}

/** Where each field sits in the snapshot's flat node and edge arrays. */
const layoutOf = (snap: Snapshot) => {
  const nf = snap.snapshot.meta.node_fields
  const ef = snap.snapshot.meta.edge_fields
  return {
    types: snap.snapshot.meta.node_types[0],
    edgeTypes: snap.snapshot.meta.edge_types[0],
    stride: nf.length,
    eStride: ef.length,
    iType: nf.indexOf('type'),
    iName: nf.indexOf('name'),
    iSize: nf.indexOf('self_size'),
    iEdges: nf.indexOf('edge_count'),
    eType: ef.indexOf('type'),
    eName: ef.indexOf('name_or_index'),
    eTo: ef.indexOf('to_node'),
    count: snap.nodes.length / nf.length,
  }
}

/** Groups every node by its retainer chain (first strong retainer per hop, `hops` hops). */
export const summariseByOwner = (snap: Snapshot, sessions = 0, topN = 40, hops = 4): string => {
  const { types, edgeTypes, stride, eStride, iType, iName, iSize, iEdges, eType, eName, eTo, count } = layoutOf(snap)
  // First strong retainer of every node, and the edge's name.
  const owner = new Int32Array(count).fill(-1)
  const ownerEdge = new Array<string>(count)
  let e = 0
  for (let n = 0; n < count; n++) {
    const edges = snap.nodes[n * stride + iEdges]
    for (let k = 0; k < edges; k++, e += eStride) {
      const t = edgeTypes[snap.edges[e + eType]]
      if (t === 'weak' || t === 'shortcut') continue
      const to = snap.edges[e + eTo] / stride
      if (owner[to] !== -1 || to === n) continue
      const ownerType = types[snap.nodes[n * stride + iType]]
      if (ownerType === 'synthetic') continue
      owner[to] = n
      const raw = snap.edges[e + eName]
      ownerEdge[to] = t === 'element' || t === 'hidden' ? `[${raw}]`.replace(/\[\d+\]/, '[]') : snap.strings[raw]
    }
  }
  const label = (n: number): string => {
    const type = types[snap.nodes[n * stride + iType]]
    const name = snap.strings[snap.nodes[n * stride + iName]]
    return type === 'object' || type === 'closure' || type === 'native' ? name.slice(0, 40) : `(${type})`
  }
  const groups = new Map<string, { bytes: number; count: number }>()
  let total = 0
  for (let n = 0; n < count; n++) {
    const size = snap.nodes[n * stride + iSize]
    total += size
    if (size === 0) continue
    let path = label(n)
    let cur = n
    for (let h = 0; h < hops && owner[cur] !== -1; h++) {
      path += ` <- ${label(owner[cur])}.${ownerEdge[cur]}`
      cur = owner[cur]
    }
    const g = groups.get(path) ?? { bytes: 0, count: 0 }
    g.bytes += size
    g.count++
    groups.set(path, g)
  }
  return formatGroups(groups, total, sessions, topN)
}

/**
 * Retained sizes (dominator tree, Cooper-Harvey-Kennedy): every node dominated by an
 * object of class `anchor` (a Session) is charged to `anchor.<field>` (the field through
 * which the anchor first holds the top of its subtree); the rest is grouped by class.
 * Answers "what does one session keep alive, field by field".
 */
export const summariseRetained = (snap: Snapshot, sessions = 0, topN = 40, anchor = 'Session'): string => {
  const { types, edgeTypes, stride, eStride, iType, iName, iSize, iEdges, eType, eName, eTo, count } = layoutOf(snap)
  const weak = edgeTypes.indexOf('weak')
  const firstEdge = new Int32Array(count + 1)
  for (let n = 0, e = 0; n < count; n++) {
    firstEdge[n] = e
    e += snap.nodes[n * stride + iEdges] * eStride
  }
  firstEdge[count] = snap.edges.length
  // Depth-first order from the root (node 0) over strong edges.
  const order = new Int32Array(count).fill(-1)
  const byOrder = new Int32Array(count)
  const stack = new Int32Array(count * 2)
  let reached = 0
  let sp = 0
  stack[sp++] = 0
  order[0] = reached
  byOrder[reached++] = 0
  const cursor = new Int32Array(count)
  for (let n = 0; n < count; n++) cursor[n] = firstEdge[n]
  // Post-order numbering for the iterative dominator algorithm.
  const post = new Int32Array(count).fill(-1)
  const byPost = new Int32Array(count)
  let posted = 0
  while (sp > 0) {
    const n = stack[sp - 1]
    let pushed = false
    while (cursor[n] < firstEdge[n + 1]) {
      const e = cursor[n]
      cursor[n] += eStride
      if (snap.edges[e + eType] === weak) continue
      const to = snap.edges[e + eTo] / stride
      if (order[to] !== -1) continue
      order[to] = reached
      byOrder[reached++] = to
      stack[sp++] = to
      pushed = true
      break
    }
    if (!pushed) {
      sp--
      post[n] = posted
      byPost[posted++] = n
    }
  }
  // Predecessors (strong edges between reached nodes), CSR.
  const predCount = new Int32Array(count + 1)
  for (let n = 0; n < count; n++) {
    if (order[n] === -1) continue
    for (let e = firstEdge[n]; e < firstEdge[n + 1]; e += eStride) {
      if (snap.edges[e + eType] === weak) continue
      predCount[snap.edges[e + eTo] / stride + 1]++
    }
  }
  for (let n = 0; n < count; n++) predCount[n + 1] += predCount[n]
  const preds = new Int32Array(predCount[count])
  const fill = predCount.slice(0, count)
  for (let n = 0; n < count; n++) {
    if (order[n] === -1) continue
    for (let e = firstEdge[n]; e < firstEdge[n + 1]; e += eStride) {
      if (snap.edges[e + eType] === weak) continue
      const to = snap.edges[e + eTo] / stride
      preds[fill[to]++] = n
    }
  }
  const idom = new Int32Array(count).fill(-1)
  idom[0] = 0
  const intersect = (a: number, b: number): number => {
    while (a !== b) {
      while (post[a] < post[b]) a = idom[a]
      while (post[b] < post[a]) b = idom[b]
    }
    return a
  }
  for (let changed = true; changed; ) {
    changed = false
    for (let i = posted - 1; i >= 0; i--) {
      const n = byPost[i]
      if (n === 0) continue
      let d = -1
      for (let k = predCount[n]; k < predCount[n + 1]; k++) {
        const p = preds[k]
        if (idom[p] === -1) continue
        d = d === -1 ? p : intersect(p, d)
      }
      if (d !== -1 && idom[n] !== d) {
        idom[n] = d
        changed = true
      }
    }
  }
  const className = (n: number): string => {
    const type = types[snap.nodes[n * stride + iType]]
    const name = snap.strings[snap.nodes[n * stride + iName]]
    return type === 'object' || type === 'closure' || type === 'native' ? name.slice(0, 50) : `(${type})`
  }
  const edgeName = (from: number, to: number): string => {
    for (let e = firstEdge[from]; e < firstEdge[from + 1]; e += eStride) {
      if (snap.edges[e + eTo] / stride !== to) continue
      const t = edgeTypes[snap.edges[e + eType]]
      return t === 'element' || t === 'hidden' ? '[]' : snap.strings[snap.edges[e + eName]]
    }
    return '(indirect)'
  }
  // In depth-first order a node's dominator comes first: labels flow down the tree.
  const label = new Array<string | undefined>(count)
  const groups = new Map<string, { bytes: number; count: number }>()
  let total = 0
  let anchors = 0
  for (let i = 0; i < reached; i++) {
    const n = byOrder[i]
    const size = snap.nodes[n * stride + iSize]
    total += size
    const d = idom[n]
    let l: string
    if (className(n) === anchor) {
      anchors++
      l = `${anchor} (itself)`
    } else if (n !== 0 && className(d) === anchor) l = `${anchor}.${edgeName(d, n)}`
    else l = (n !== 0 ? label[d] : undefined) ?? ''
    label[n] = l === `${anchor} (itself)` ? undefined : l || undefined
    const key = l || `other: ${className(n)}`
    const g = groups.get(key) ?? { bytes: 0, count: 0 }
    g.bytes += size
    g.count++
    groups.set(key, g)
  }
  const anchored = [...groups].filter(([k]) => k.startsWith(anchor)).reduce((s, [, g]) => s + g.bytes, 0)
  return `${anchors} ${anchor} objects retain ${(anchored / Math.max(1, anchors)).toFixed(0)} bytes each (${(anchored / 2 ** 20).toFixed(1)} MiB)\n${formatGroups(groups, total, sessions, topN)}`
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2).filter((a) => !a.startsWith('--'))
  const owners = process.argv.includes('--owners')
  const file = args[0]
  if (file === undefined) {
    console.error('usage: chat-heap <file.heapsnapshot> [sessions] [topN] [--owners]')
    process.exit(2)
  }
  const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot
  const sessions = Number(args[1] ?? 0)
  const topN = Number(args[2] ?? 40)
  const retained = process.argv.includes('--retained')
  console.log(retained ? summariseRetained(snap, sessions, topN) : owners ? summariseByOwner(snap, sessions, topN) : summariseHeap(snap, sessions, topN))
}
