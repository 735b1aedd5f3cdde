import fc from 'fast-check'
import t from 'tap'
import { mintRetryToken, validateRetryToken } from '../../src/core/crypto/retry-token.js'
import { UsageError } from '../../src/core/errors.js'
import { SeededRng } from '../../src/core/rng.js'
import { fcParams, hex, unhex } from './helpers.js'

const rng = new SeededRng(0x7e7e)
const key = new Uint8Array(32)
rng.fillBytes(key)
const otherKey = new Uint8Array(32)
rng.fillBytes(otherKey)
const odcid = unhex('8394c8f03e515708')
const address = '192.0.2.1:4433'
const nowMs = 1_000_000

t.test('a fresh token validates and returns the original DCID', async (t) => {
  const token = mintRetryToken({ key, nowMs, address, originalDcid: odcid })
  t.equal(token.length, 1 + 8 + 1 + 8 + 16)
  const v = validateRetryToken({ key, nowMs: nowMs + 9_999, address, token })
  t.ok(v.ok)
  if (v.ok) {
    t.equal(hex(v.originalDcid), hex(odcid))
    t.equal(v.expiresAtMs, nowMs + 10_000)
  }
  t.same(validateRetryToken({ key, nowMs: nowMs + 10_000, address, token }).ok, true, 'valid up to and including the expiry')
  const ipv6 = mintRetryToken({ key, nowMs, address: '[2001:db8::1]:4433', originalDcid: new Uint8Array(20).fill(1) })
  t.ok(validateRetryToken({ key, nowMs, address: '[2001:db8::1]:4433', token: ipv6 }).ok)
  const empty = mintRetryToken({ key, nowMs, address, originalDcid: new Uint8Array(0) })
  t.ok(validateRetryToken({ key, nowMs, address, token: empty }).ok)
})

t.test('expired, wrong address, wrong key, wrong kind', async (t) => {
  const token = mintRetryToken({ key, nowMs, address, originalDcid: odcid, lifetimeMs: 500 })
  t.same(validateRetryToken({ key, nowMs: nowMs + 501, address, token }), { ok: false, reason: 'expired' })
  t.same(validateRetryToken({ key, nowMs, address: '192.0.2.1:4434', token }), { ok: false, reason: 'forged' })
  t.same(validateRetryToken({ key, nowMs, address: '192.0.2.2:4433', token }), { ok: false, reason: 'forged' })
  t.same(validateRetryToken({ key: otherKey, nowMs, address, token }), { ok: false, reason: 'forged' })
  t.same(validateRetryToken({ key, nowMs, address, token, kind: 'new-token' }), { ok: false, reason: 'malformed' })
  const nt = mintRetryToken({ key, nowMs, address: '192.0.2.1', originalDcid: new Uint8Array(0), kind: 'new-token', lifetimeMs: 86_400_000 })
  t.ok(validateRetryToken({ key, nowMs: nowMs + 3_600_000, address: '192.0.2.1', token: nt, kind: 'new-token' }).ok)
  t.same(validateRetryToken({ key, nowMs, address: '192.0.2.1', token: nt }), { ok: false, reason: 'malformed' })
})

t.test('key rotation: the previous key is still accepted', async (t) => {
  const token = mintRetryToken({ key: otherKey, nowMs, address, originalDcid: odcid })
  t.ok(validateRetryToken({ key, previousKey: otherKey, nowMs, address, token }).ok)
  t.notOk(validateRetryToken({ key, nowMs, address, token }).ok)
})

t.test('forged: any changed byte, any prefix or extension fails', async (t) => {
  const token = mintRetryToken({ key, nowMs, address, originalDcid: odcid })
  for (let i = 0; i < token.length; i++) {
    const bad = token.slice()
    bad[i] ^= 0x04
    t.notOk(validateRetryToken({ key, nowMs, address, token: bad }).ok, `byte ${i}`)
  }
  for (let n = 0; n < token.length; n++) t.same(validateRetryToken({ key, nowMs, address, token: token.subarray(0, n) }).ok, false, `prefix ${n}`)
  const longer = new Uint8Array(token.length + 1)
  longer.set(token)
  t.same(validateRetryToken({ key, nowMs, address, token: longer }), { ok: false, reason: 'malformed' })
  // Extending the lifetime by editing the expiry breaks the tag.
  const extended = token.slice()
  extended[5] ^= 0x40
  t.same(validateRetryToken({ key, nowMs, address, token: extended }), { ok: false, reason: 'forged' })
})

t.test('random tokens never validate and never throw', async (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 80 }), (token) => !validateRetryToken({ key, nowMs, address, token }).ok),
    fcParams(2000),
  )
  t.pass()
})

t.test('misuse: short key, long DCID', async (t) => {
  t.throws(() => mintRetryToken({ key: new Uint8Array(16), nowMs, address, originalDcid: odcid }), UsageError)
  t.throws(() => mintRetryToken({ key, nowMs, address, originalDcid: new Uint8Array(21) }), UsageError)
  t.throws(() => validateRetryToken({ key: new Uint8Array(31), nowMs, address, token: new Uint8Array(40) }), UsageError)
})
