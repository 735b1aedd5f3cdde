import t from 'tap'
import { CryptoRng } from '../../src/io/crypto-rng.js'

t.test('values stay in range across pool refills', async (t) => {
  const rng = new CryptoRng(64)
  let bad = 0
  for (let i = 0; i < 1000; i++) {
    const u = rng.nextU32()
    const f = rng.nextFloat()
    if (!(Number.isInteger(u) && u >= 0 && u < 2 ** 32 && f >= 0 && f < 1)) bad++
  }
  t.equal(bad, 0)
})

t.test('fillBytes serves small, odd and large sizes and never repeats the pool', async (t) => {
  const rng = new CryptoRng(64)
  const seen = new Set<string>()
  for (const n of [0, 1, 3, 8, 8, 15, 16, 17, 64, 1000]) {
    const out = new Uint8Array(n)
    rng.fillBytes(out)
    t.equal(out.length, n)
    if (n >= 8) {
      const key = Buffer.from(out).toString('hex')
      t.notOk(seen.has(key), `fresh bytes for ${n}`)
      seen.add(key)
    }
  }
  // Mixed draws straddling the pool end.
  for (let i = 0; i < 100; i++) {
    rng.nextU32()
    rng.fillBytes(new Uint8Array(7))
  }
})

t.test('bytes look uniform (coarse bucket check, fails with probability << 1e-9)', async (t) => {
  const rng = new CryptoRng()
  const counts = new Array<number>(16).fill(0)
  const buf = new Uint8Array(64)
  for (let i = 0; i < 2000; i++) {
    rng.fillBytes(buf)
    for (const b of buf) counts[b >>> 4]++
  }
  const expected = (2000 * 64) / 16
  for (const c of counts) t.ok(Math.abs(c - expected) < expected * 0.1, `bucket ${c} near ${expected}`)
})

t.test('rejects a pool size that is not a multiple of 4', async (t) => {
  t.throws(() => new CryptoRng(66), RangeError)
})

t.test('bytes(n) returns a new array each time: 1,000 message ids across refills, none repeated', async (t) => {
  const rng = new CryptoRng(64)
  const ids = new Set<string>()
  let previous: Uint8Array | undefined
  for (let i = 0; i < 1000; i++) {
    const id = rng.bytes(16)
    if (id.length !== 16 || id === previous || id.buffer === previous?.buffer) t.fail('not a fresh 16-byte array')
    ids.add(Buffer.from(id).toString('hex'))
    previous = id
  }
  t.equal(ids.size, 1000)
})
