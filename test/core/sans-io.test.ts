/**
 * The protocol core is sans-IO (DEVELOPERS.md habit 1): nothing under src/core imports
 * from node:, reads a clock, draws its own randomness or owns a timer.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'

const FORBIDDEN: Array<[RegExp, string]> = [
  [/from\s+['"]node:/, 'imports a node: module'],
  [/\brequire\(/, 'uses require'],
  [/\bDate\.now\(|\bnew Date\(/, 'reads the wall clock'],
  [/\bperformance\.now\(/, 'reads a clock'],
  [/\bMath\.random\(/, 'draws its own randomness'],
  [/\bset(Timeout|Interval|Immediate)\(/, 'owns a timer'],
  [/\bprocess\./, 'touches the process'],
  [/\bBuffer\./, 'depends on node Buffer'],
]

const files = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : []
  })

t.test('src/core is sans-IO', async (t) => {
  const sources = files(join(import.meta.dirname, '..', '..', 'src', 'core'))
  t.ok(sources.length > 20, `${sources.length} files checked`)
  for (const file of sources) {
    // Comments may mention what the code must not do.
    const code = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '')
    for (const [pattern, what] of FORBIDDEN) t.notOk(pattern.test(code), `${file} ${what}`)
  }
})
