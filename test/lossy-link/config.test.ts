/** Units, layering (preset -> both -> direction -> CLI), presets, and clear errors for bad input. */
import t, { type Test } from 'tap'
import { mergeImpairment, parseProfileLayer, profileFrom, resolveProfile } from '../../tools/lossy-link/config.js'
import { parseCli } from '../../tools/lossy-link/cli.js'
import { LossyLinkConfigError } from '../../tools/lossy-link/errors.js'
import { PRESETS, getPreset } from '../../tools/lossy-link/presets.js'
import { parseBytes, parseDurationMs, parseHostPort, parsePeriodic, parseProbability, parseRateBitsPerSecond } from '../../tools/lossy-link/units.js'

const fails = (t: Test, fn: () => unknown, field: string, message: RegExp) => {
  try {
    fn()
    t.fail(`expected an error on ${field}`)
  } catch (err) {
    t.ok(err instanceof LossyLinkConfigError, `LossyLinkConfigError (${(err as Error).message})`)
    t.equal((err as LossyLinkConfigError).field, field, 'names the field')
    t.match((err as Error).message, message)
  }
}

t.test('units', async (t) => {
  t.equal(parseProbability('x', '5%'), 0.05)
  t.equal(parseProbability('x', '0.05'), 0.05)
  t.equal(parseProbability('x', 0.2), 0.2)
  t.equal(parseDurationMs('x', '250ms'), 250)
  t.equal(parseDurationMs('x', '2s'), 2000)
  t.equal(parseDurationMs('x', '1.5m'), 90_000)
  t.equal(parseDurationMs('x', '40'), 40)
  t.equal(parseRateBitsPerSecond('x', '750kbit'), 750_000)
  t.equal(parseRateBitsPerSecond('x', '1.5Mbit/s'), 1_500_000)
  t.equal(parseRateBitsPerSecond('x', '30mbps'), 30_000_000)
  t.equal(parseBytes('x', '64kb'), 65_536)
  t.equal(parseBytes('x', 1500), 1500)
  t.same(parsePeriodic('x', '60s/12s@30s'), { periodMs: 60_000, durationMs: 12_000, offsetMs: 30_000 })
  t.same(parseHostPort('x', '0.0.0.0:9000'), { host: '0.0.0.0', port: 9000 })
  t.same(parseHostPort('x', '[::1]:9000'), { host: '::1', port: 9000 })
  t.same(parseHostPort('x', ':9000'), { host: '0.0.0.0', port: 9000 })
  fails(t, () => parseProbability('--loss', '5'), '--loss', /not a probability; write a percentage like 5%/)
  fails(t, () => parseProbability('--loss', '120%'), '--loss', /not a probability/)
  fails(t, () => parseDurationMs('--delay', '5 parsecs'), '--delay', /not a duration/)
  fails(t, () => parseRateBitsPerSecond('--rate', 'fast'), '--rate', /not a rate/)
  fails(t, () => parseBytes('--mtu', '1.5'), '--mtu', /whole number/)
  fails(t, () => parsePeriodic('--block-every', '10s/20s'), '--block-every', /must fit inside/)
  fails(t, () => parseHostPort('--listen', 'localhost'), '--listen', /HOST:PORT/)
})

t.test('every preset resolves, validates against the shared models, and has both directions', async (t) => {
  const names = ['wifi', 'lte', '3g', 'edge', 'gprs', 'satellite', 'very-bad-network', 'subway', 'elevator']
  t.same([...PRESETS.keys()].sort(), [...names].sort())
  for (const name of names) {
    const p = profileFrom({ preset: name })
    t.ok(p.up.delay && p.down.delay, `${name}: delay in both directions`)
    t.ok(getPreset(name)!.source.length > 10, `${name}: source given`)
  }
  const g3 = profileFrom({ preset: '3g' })
  t.equal(g3.down.rateBitsPerSecond, 780_000, '3g down 780 kbit/s (NLC)')
  t.equal(g3.up.rateBitsPerSecond, 330_000, '3g up 330 kbit/s (NLC)')
  t.equal(profileFrom({ preset: 'edge' }).up.delay!.baseMs, 440, 'edge up 440 ms (NLC)')
  t.equal(profileFrom({ preset: 'gprs' }).up.rateBitsPerSecond, 50_000, 'gprs 50 kbit/s (comcast)')
  t.same(profileFrom({ preset: 'very-bad-network' }).down.loss, { model: 'bernoulli', probability: 0.1 }, 'very bad network 10 %')
  t.equal(profileFrom({ preset: 'subway' }).up.blackoutEvery!.durationMs, 12_000, 'subway: 12 s blackouts')
})

t.test('layering: preset, both, direction, then the next layer; null deletes; delay merges', async (t) => {
  const file = parseProfileLayer({ preset: '3g', both: { loss: '5%' }, down: { delay: { jitterMs: 20 } } })
  const cli = parseProfileLayer({ up: { mtuBytes: 1200, rateBitsPerSecond: null } })
  const p = resolveProfile([file, cli])
  t.same(p.up.loss, { model: 'bernoulli', probability: 0.05 }, 'both overrides the preset')
  t.same(p.down.delay, { baseMs: 100, jitterMs: 20 }, 'delay fields merge')
  t.equal(p.up.mtuBytes, 1200)
  t.equal(p.up.rateBitsPerSecond, undefined, 'null removed the preset rate')
  t.equal(p.down.rateBitsPerSecond, 780_000, 'down keeps it')
  t.same(mergeImpairment({ delay: { baseMs: 5 } }, { delay: { reorder: true } }), { delay: { baseMs: 5, reorder: true } })
})

t.test('bad profiles get errors that name the field', async (t) => {
  fails(t, () => profileFrom({ preset: '5g' }), 'preset', /unknown preset "5g"; expected one of wifi/)
  fails(t, () => profileFrom({ up: { dealy: '10ms' } }), 'up.dealy', /unknown key/)
  fails(t, () => profileFrom({ both: { loss: { model: 'gilbert', p: 0.1 } } }), 'both.loss.model', /unknown loss model/)
  fails(t, () => profileFrom({ both: { loss: { model: 'gilbert-elliott', p: 0.1 } } }), 'both.loss.r', /required/)
  fails(t, () => profileFrom({ down: { loss: { model: 'markov4', p13: 0.7, p31: 0.1, p14: 0.5 } } }), 'down.loss.p14', /must be <= 1/)
  fails(t, () => profileFrom({ up: { delay: { jitterMs: 5 } } }), 'up.delay.baseMs', /required/)
  fails(t, () => profileFrom({ up: { delay: { baseMs: 5, distribution: 'gamma' } } }), 'up.delay.distribution', /unknown distribution/)
  fails(t, () => profileFrom({ nat: { rebindEveryMs: 0 } }), 'nat.rebindEveryMs', /positive/)
  fails(t, () => profileFrom({ script: { steps: [{ preset: 'wifi' }] } }), 'script.steps[0].durationMs', /required/)
  fails(t, () => profileFrom({ script: { steps: [{ durationMs: '5s', up: { loss: '200%' } }] } }), 'script.steps[0].up.loss', /probability/)
  fails(t, () => profileFrom({ tcp: { up: { delayMs: 'slow' } } }), 'tcp.up.delayMs', /not a duration/)
})

t.test('CLI flags', async (t) => {
  const c = parseCli(['--listen', '127.0.0.1:9000', '--upstream', '127.0.0.1:7000', '--preset', '3g', '--loss', '5%', '--seed', '42', '--down-gemodel', '1%,30%', '--jitter', '10ms', '--nat-rebind', '30s'])
  t.equal(c.seed, 42)
  t.ok(c.seedGiven)
  const p = resolveProfile(c.layers)
  t.same(p.up.loss, { model: 'bernoulli', probability: 0.05 })
  t.same(p.down.loss, { model: 'gilbert-elliott', p: 0.01, r: 0.3 })
  t.same(p.up.delay, { baseMs: 100, jitterMs: 10 })
  t.equal(p.nat.rebindEveryMs, 30_000)
  t.same(c.udp, { listen: { host: '127.0.0.1', port: 9000 }, upstream: { host: '127.0.0.1', port: 7000 } })
  t.ok(Number.isInteger(parseCli(['--listen', ':1', '--upstream', ':2']).seed), 'a random seed when none is given')
  fails(t, () => parseCli(['--listen', ':9000']), '--upstream', /required together with --listen/)
  fails(t, () => parseCli(['--preset', '3g']), '--listen', /nothing to do/)
  fails(t, () => parseCli(['--listen', ':1', '--upstream', ':2', '--seed=-3']), '--seed', /not an integer/)
  fails(t, () => parseCli(['--listen', ':1', '--upstream', ':2', '--lose', '5%']), '', /Unknown option '--lose'/)
  fails(t, () => parseCli(['--listen', ':1', '--upstream', ':2', '--profile', '/nonexistent.json']), '--profile', /cannot read/)
})

t.test('the example profiles in tools/lossy-link/examples resolve', async (t) => {
  const { readdirSync, readFileSync } = await import('node:fs')
  const dir = new URL('../../tools/lossy-link/examples/', import.meta.url)
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'))
  t.ok(files.length >= 2)
  for (const f of files) t.doesNotThrow(() => profileFrom(JSON.parse(readFileSync(new URL(f, dir), 'utf8'))), f)
})
