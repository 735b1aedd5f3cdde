/**
 * Summarise a V8 .cpuprofile (as written by `node --cpu-prof`, e.g. the chat server child
 * with PIGEON_BENCH_CHAT_PROFILE=1): self time by function and by source file, and the
 * inclusive time of a few functions of interest.
 *
 *   node dist/bench/chat-profile.js bench/out/profiles/CPU....cpuprofile [topN]
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

const shortUrl = (url: string): string => {
  if (url === '') return '(native)'
  const i = url.indexOf('/dist/')
  if (i >= 0) return url.slice(i + 6)
  const j = url.indexOf('node_modules/')
  if (j >= 0) return url.slice(j)
  return url.replace(/^file:\/\//, '')
}

export const summarise = (profile: Profile, topN = 30): string => {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const self = new Map<number, number>()
  for (let i = 0; i < profile.samples.length; i++) self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0))
  const total = [...self.values()].reduce((a, b) => a + b, 0)
  const byFn = new Map<string, number>()
  const byFile = new Map<string, number>()
  const inclusive = new Map<string, number>()
  for (const [id, us] of self) {
    const n = byId.get(id)!
    const f = n.callFrame
    const key = `${f.functionName || '(anonymous)'} ${shortUrl(f.url)}:${f.lineNumber + 1}`
    byFn.set(key, (byFn.get(key) ?? 0) + us)
    const file = f.url === '' ? `(${f.functionName || 'native'})` : shortUrl(f.url)
    byFile.set(file, (byFile.get(file) ?? 0) + us)
    // inclusive by function name (each name once per stack)
    const seen = new Set<string>()
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const name = byId.get(cur)!.callFrame.functionName || '(anonymous)'
      if (seen.has(name)) continue
      seen.add(name)
      inclusive.set(name, (inclusive.get(name) ?? 0) + us)
    }
  }
  const pct = (us: number): string => `${((us * 100) / total).toFixed(1).padStart(5)} %`
  const lines: string[] = [`total sampled ${(total / 1e6).toFixed(2)} s`]
  lines.push('', 'self time by function:')
  for (const [k, us] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, topN)) lines.push(`${pct(us)}  ${k}`)
  lines.push('', 'self time by file:')
  for (const [k, us] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, topN)) lines.push(`${pct(us)}  ${k}`)
  lines.push('', 'inclusive time by function name:')
  for (const [k, us] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, topN * 2)) lines.push(`${pct(us)}  ${k}`)
  return lines.join('\n')
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = process.argv[2]
  if (file === undefined) {
    console.error('usage: chat-profile <file.cpuprofile> [topN]')
    process.exit(2)
  }
  console.log(summarise(JSON.parse(readFileSync(file, 'utf8')) as Profile, Number(process.argv[3] ?? 30)))
}
