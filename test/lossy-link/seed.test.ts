/** A seed makes the same decisions for the same packet sequence; the directions are independent. */
import t from 'tap'
import { profileFrom } from '../../tools/lossy-link/config.js'
import { LossyLink } from '../../tools/lossy-link/link.js'

const PROFILE = {
  preset: 'subway',
  both: { duplicateProbability: '2%', corruptProbability: '1%', delay: { jitterMs: 40, reorder: true } },
}

const decisions = (seed: number, opts: { interleaveDown?: boolean } = {}) => {
  const link = new LossyLink({ seed, profile: profileFrom(PROFILE) })
  const out: string[] = []
  for (let i = 0; i < 12_000; i++) {
    const now = i * 7.5
    const bytes = new Uint8Array(80 + (i % 400)).fill(i & 0xff)
    if (opts.interleaveDown && i % 3 === 0) link.process('down', now, bytes)
    const r = link.process('up', now, bytes)
    out.push(r.dropped !== undefined ? `x:${r.dropped}` : r.deliveries.map((d) => `${d.atMs.toFixed(6)}${d.duplicate ? 'D' : ''}${d.corrupted ? `C${Buffer.from(d.bytes).toString('hex').slice(0, 8)}` : ''}`).join(','))
  }
  return out
}

t.test('same seed, same decisions (loss, delay, duplicate, corrupt, blackout)', async (t) => {
  const a = decisions(42)
  const b = decisions(42)
  t.same(a, b, 'identical decision sequences')
  t.ok(a.some((d) => d.startsWith('x:loss')) && a.some((d) => d.startsWith('x:blackout')) && a.some((d) => d.includes('D')) && a.some((d) => d.includes('C')), 'every kind of decision occurs')
})

t.test('another seed, other decisions', async (t) => {
  const a = decisions(42)
  const c = decisions(43)
  const differ = a.filter((d, i) => d !== c[i]).length
  t.ok(differ > a.length / 2, `${differ} of ${a.length} decisions differ`)
})

t.test('traffic in the other direction does not shift this direction', async (t) => {
  t.same(decisions(7, { interleaveDown: true }), decisions(7), 'up decisions unchanged by down traffic')
})
