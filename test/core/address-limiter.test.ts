import t from 'tap'
import { AddressLimiter } from '../../src/core/address-limiter.js'
import { SeededRng } from '../../src/core/rng.js'

const SEED = Number(process.env.PIGEON_SEED ?? 4242)

t.test('burst, then the sustained rate over virtual time', async (t) => {
  const lim = new AddressLimiter({ ratePerSecond: 10, burst: 5, maxAddresses: 100 })
  let ok = 0
  for (let i = 0; i < 20; i++) if (lim.allow('a', 0)) ok++
  t.equal(ok, 5, 'burst of 5 at once')
  t.notOk(lim.allow('a', 99), 'less than one token after 99 ms at 10/s')
  t.ok(lim.allow('a', 100), 'one token after 100 ms')
  t.notOk(lim.allow('a', 100))
  // Over 60 virtual seconds of hammering every millisecond: ~10/s get through.
  let allowed = 0
  for (let ms = 101; ms <= 60_100; ms++) if (lim.allow('a', ms)) allowed++
  t.ok(allowed >= 599 && allowed <= 600, `${allowed} allowed in 60 s at 10/s`)
  // Idle for a long time: the bucket refills to burst, not beyond.
  let after = 0
  for (let i = 0; i < 20; i++) if (lim.allow('a', 1_000_000)) after++
  t.equal(after, 5, 'refill caps at burst')
  t.equal(lim.stats.allowed, 5 + 1 + allowed + 5)
})

t.test('fractional rates and fractional times', async (t) => {
  const lim = new AddressLimiter({ ratePerSecond: 0.5, burst: 1, maxAddresses: 10 })
  t.ok(lim.allow('x', 0.25))
  t.notOk(lim.allow('x', 1999.5))
  t.ok(lim.allow('x', 2000.25))
})

t.test('a clock that goes backwards never mints tokens', async (t) => {
  const lim = new AddressLimiter({ ratePerSecond: 1, burst: 1, maxAddresses: 10 })
  t.ok(lim.allow('x', 10_000))
  t.notOk(lim.allow('x', 0))
  t.notOk(lim.allow('x', 10_500))
  t.ok(lim.allow('x', 11_000))
})

t.test('addresses are independent', async (t) => {
  const lim = new AddressLimiter({ ratePerSecond: 1, burst: 2, maxAddresses: 100 })
  t.ok(lim.allow('a', 0))
  t.ok(lim.allow('a', 0))
  t.notOk(lim.allow('a', 0), 'a is out of tokens')
  t.ok(lim.allow('b', 0), 'b is not affected by a')
  t.ok(lim.allow('b', 0))
  t.notOk(lim.allow('b', 0))
  t.equal(lim.stats.deniedAddress, 2)
})

t.test('denied requests do not consume tokens', async (t) => {
  const lim = new AddressLimiter({ ratePerSecond: 1, burst: 1, maxAddresses: 10 })
  t.ok(lim.allow('a', 0))
  for (let ms = 0; ms < 1000; ms += 10) lim.allow('a', ms)
  t.ok(lim.allow('a', 1000), 'still one token per second despite the refused attempts')
})

t.test('memory is bounded: 1,000,000 distinct addresses never exceed maxAddresses', async (t) => {
  const maxAddresses = 10_000
  const lim = new AddressLimiter({ ratePerSecond: 1, burst: 3, maxAddresses })
  let peak = 0
  for (let i = 0; i < 1_000_000; i++) {
    lim.allow(`10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}:${i >>> 24}`, i * 0.001)
    if (lim.size > peak) peak = lim.size
  }
  t.equal(peak, maxAddresses, 'the map never held more than maxAddresses')
  t.equal(lim.stats.evictions, 1_000_000 - maxAddresses)
  t.equal(lim.stats.allowed, 1_000_000, 'a new address gets its burst')
})

t.test('least recently seen address is evicted first', async (t) => {
  const lim = new AddressLimiter({ ratePerSecond: 0.001, burst: 1, maxAddresses: 2 })
  t.ok(lim.allow('a', 0))
  t.ok(lim.allow('b', 0))
  t.notOk(lim.allow('a', 1), 'a seen again (now most recent)')
  t.ok(lim.allow('c', 2), 'c evicts b, the least recently seen')
  t.notOk(lim.allow('a', 3), 'a was kept: still limited')
  t.ok(lim.allow('b', 4), 'b was forgotten: fresh bucket')
  t.equal(lim.stats.evictions, 2)
})

t.test('global bucket caps the sum over addresses', async (t) => {
  const lim = new AddressLimiter({ ratePerSecond: 100, burst: 100, maxAddresses: 1000, global: { ratePerSecond: 10, burst: 20 } })
  let ok = 0
  for (let i = 0; i < 500; i++) if (lim.allow(`addr${i}`, 5_000)) ok++
  t.equal(ok, 20, 'global burst')
  let later = 0
  for (let i = 0; i < 500; i++) if (lim.allow(`addr${i}`, 6_000)) later++
  t.equal(later, 10, 'then the global rate')
  t.equal(lim.stats.deniedGlobal, 970)
})

t.test('forget resets an address', async (t) => {
  const lim = new AddressLimiter({ ratePerSecond: 0.001, burst: 1, maxAddresses: 10 })
  t.ok(lim.allow('a', 0))
  t.notOk(lim.allow('a', 0))
  lim.forget('a')
  t.ok(lim.allow('a', 0))
})

t.test('deterministic: the same request sequence gives the same decisions', async (t) => {
  t.comment(`seed ${SEED} (replay with PIGEON_SEED=${SEED})`)
  const run = (): string => {
    const rng = new SeededRng(SEED)
    const lim = new AddressLimiter({ ratePerSecond: 3, burst: 4, maxAddresses: 50, global: { ratePerSecond: 100, burst: 50 } })
    let nowMs = 0
    let bits = ''
    for (let i = 0; i < 20_000; i++) {
      nowMs += rng.nextFloat() * 5
      bits += lim.allow(`a${rng.nextU32() % 80}`, nowMs) ? '1' : '0'
    }
    return bits + JSON.stringify(lim.stats)
  }
  const a = run()
  t.equal(a, run())
  t.ok(a.includes('0') && a.includes('1'), 'both outcomes occur')
})

t.test('invalid options are refused', async (t) => {
  t.throws(() => new AddressLimiter({ ratePerSecond: 0, burst: 1, maxAddresses: 1 }))
  t.throws(() => new AddressLimiter({ ratePerSecond: 1, burst: 0.5, maxAddresses: 1 }))
  t.throws(() => new AddressLimiter({ ratePerSecond: 1, burst: 1, maxAddresses: 0 }))
  t.throws(() => new AddressLimiter({ ratePerSecond: 1, burst: 1, maxAddresses: 1, global: { ratePerSecond: Infinity, burst: 1 } }))
})
