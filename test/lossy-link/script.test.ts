/** Timed scripts on virtual time: 30 s of wifi, 5 s blackout, 30 s of 3g, looping. */
import t from 'tap'
import { startLossyLink } from '../../tools/lossy-link/app.js'
import { profileFrom } from '../../tools/lossy-link/config.js'
import { ManualClock } from '../../tools/lossy-link/scheduler.js'

t.test('steps change the link at the scripted times, and loop', async (t) => {
  const clock = new ManualClock()
  const profile = profileFrom({
    script: {
      loop: true,
      steps: [
        { durationMs: '30s', preset: 'wifi' },
        { durationMs: '5s', blackout: true },
        { durationMs: '30s', preset: '3g', both: { loss: null }, udpBlock: { blocked: true } },
      ],
    },
  })
  const app = await startLossyLink({ profile, seed: 1, clock })
  const steps: string[] = []
  app.script!.on('step', (s: { label: string; atMs: number }) => steps.push(`${s.label}@${s.atMs}`))
  const bytes = new Uint8Array(100)
  const probe = (dir: 'up' | 'down' = 'up') => app.link.process(dir, clock.now(), bytes)

  t.equal(app.link.config('up').rateBitsPerSecond, 30e6, 'starts on wifi')
  clock.advance(29_999)
  t.equal(probe().dropped, undefined, 'still wifi at 29.999 s')
  clock.advance(1)
  t.equal(probe().dropped, 'blackout', 'blackout at 30 s')
  t.equal(probe('down').dropped, 'blackout', 'both directions')
  clock.advance(5_000)
  t.equal(app.link.config('down').rateBitsPerSecond, 780_000, '3g at 35 s')
  t.equal(probe().dropped, 'blocked', 'the step blocks UDP')
  clock.advance(30_000)
  t.equal(app.link.config('up').rateBitsPerSecond, 30e6, 'wifi again at 65 s (loop)')
  t.equal(probe().dropped === 'blocked', false, 'unblocked with the next step')
  t.same(steps, ['blackout@30000', '3g@35000', 'wifi@65000'])
  t.equal((app.script!.state() as { cycles: number }).cycles, 1)
  t.equal(app.link.stats.up.dropped.blackout, 1)
  await app.close()
})

t.test('an on-demand block survives step changes; a finished script keeps its last step', async (t) => {
  const clock = new ManualClock()
  const profile = profileFrom({ script: [{ durationMs: 1000, preset: 'lte' }, { durationMs: 1000, preset: 'edge' }] })
  const app = await startLossyLink({ profile, seed: 1, clock })
  let ended = false
  app.script!.on('end', () => { ended = true })
  app.link.setBlocked(['up'], true)
  clock.advance(1000)
  t.ok(app.link.isBlocked('up', clock.now()), 'still blocked after a step change')
  clock.advance(5000)
  t.ok(ended, 'script ended')
  t.equal(app.link.config('up').delay!.baseMs, 440, 'edge stays in force')
  await app.close()
})
