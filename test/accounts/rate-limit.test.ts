import t from 'tap'
import { TokenBucketLimiter, addressKey } from '../../src/server/accounts/rate-limit.js'

t.test('token bucket: burst, refill, check does not consume, bounded keys', async (t) => {
  const l = new TokenBucketLimiter({ capacity: 2, refillIntervalMs: 1000, maxKeys: 3 })
  t.same(l.check('a', 0), { ok: true })
  t.same(l.take('a', 0), { ok: true })
  t.same(l.take('a', 0), { ok: true })
  t.same(l.take('a', 0), { ok: false, retryAfterMs: 1000 })
  t.same(l.take('a', 500), { ok: false, retryAfterMs: 500 })
  t.same(l.take('a', 1000), { ok: true })
  t.same(l.take('a', 1000), { ok: false, retryAfterMs: 1000 })
  t.same(l.take('a', 1_000_000), { ok: true }, 'refill caps at capacity')
  t.same(l.take('a', 1_000_000), { ok: true })
  t.same(l.take('a', 1_000_000), { ok: false, retryAfterMs: 1000 })
  for (let i = 0; i < 100; i++) l.take(`k${i}`, 0)
  t.equal(l.trackedKeys, 3)
})

t.test('charge goes into bounded debt', async (t) => {
  const l = new TokenBucketLimiter({ capacity: 2, refillIntervalMs: 1000, maxKeys: 10 })
  for (let i = 0; i < 10; i++) l.charge('u', 0)
  t.same(l.check('u', 0), { ok: false, retryAfterMs: 3000 })
})

t.test('giveBack returns a taken attempt, never beyond capacity', async (t) => {
  const l = new TokenBucketLimiter({ capacity: 2, refillIntervalMs: 1000, maxKeys: 10 })
  t.same(l.take('u', 0), { ok: true })
  t.same(l.take('u', 0), { ok: true })
  t.same(l.take('u', 0), { ok: false, retryAfterMs: 1000 })
  l.giveBack('u', 0)
  t.same(l.take('u', 0), { ok: true }, 'the returned attempt can be taken again')
  t.same(l.take('u', 0), { ok: false, retryAfterMs: 1000 })
  l.giveBack('v', 0)
  l.giveBack('v', 0)
  t.same(l.take('v', 0), { ok: true })
  t.same(l.take('v', 0), { ok: true })
  t.same(l.take('v', 0), { ok: false, retryAfterMs: 1000 }, 'a fresh key stays at capacity')
})

t.test('address keys', async (t) => {
  t.equal(addressKey('192.0.2.1'), '192.0.2.1')
  t.equal(addressKey('::ffff:192.0.2.1'), '192.0.2.1')
  t.equal(addressKey('2001:DB8:0001:2::1'), '2001:db8:1:2::/64')
  t.equal(addressKey('[2001:db8:1:2:3:4:5:6]'), '2001:db8:1:2::/64')
  t.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64')
  t.equal(addressKey('::1'), '0:0:0:0::/64')
  t.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64')
})
