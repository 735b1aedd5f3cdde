import t from 'tap'
import { PasswordFormatError, hashPassword, isWeaker, parsePasswordHash, verifyPassword } from '../../src/server/accounts/password.js'

const LOW = { N: 1 << 10, r: 8, p: 1 }
const LOWER = { N: 1 << 9, r: 8, p: 1 }

t.test('hash format carries parameters and a fresh salt', async (t) => {
  const a = await hashPassword('correct horse', LOW)
  const b = await hashPassword('correct horse', LOW)
  t.match(a, /^scrypt\$1024\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/)
  t.not(a, b, 'random salt per hash')
  const parsed = parsePasswordHash(a)
  t.equal(parsed.N, 1024)
  t.equal(parsed.salt.length, 16)
  t.equal(parsed.hash.length, 32)
})

t.test('verify: right, wrong, unicode normalization', async (t) => {
  const stored = await hashPassword('correct horse', LOW)
  t.same(await verifyPassword('correct horse', stored, LOW), { ok: true, needsRehash: false })
  t.same(await verifyPassword('correct horsE', stored, LOW), { ok: false, needsRehash: false })
  t.same(await verifyPassword('', stored, LOW), { ok: false, needsRehash: false })
  const composed = await hashPassword('caf\u00e9', LOW)
  t.equal((await verifyPassword('cafe\u0301', composed, LOW)).ok, true, 'NFC: composed and decomposed forms match')
  t.equal((await verifyPassword('x'.repeat(5000), stored, LOW)).ok, false, 'over-long password is just wrong')
})

t.test('a weaker stored hash asks for a rehash on success only', async (t) => {
  const stored = await hashPassword('pw', LOWER)
  t.same(await verifyPassword('pw', stored, LOW), { ok: true, needsRehash: true })
  t.same(await verifyPassword('nope', stored, LOW), { ok: false, needsRehash: false })
  t.equal(isWeaker({ N: 1024, r: 8, p: 1 }, { N: 1024, r: 8, p: 2 }), true)
  t.equal(isWeaker({ N: 2048, r: 8, p: 1 }, { N: 1024, r: 8, p: 1 }), false)
})

t.test('malformed stored hashes and parameters are rejected', async (t) => {
  for (const bad of ['', 'plain', 'scrypt$1024$8$1$c2FsdHNhbHQ=', 'bcrypt$1$2$3$4$5', 'scrypt$1000$8$1$c2FsdHNhbHRz$' + 'A'.repeat(44), 'scrypt$1024$8$1$$' + 'A'.repeat(44), 'scrypt$1024$x$1$c2FsdHNhbHRz$' + 'A'.repeat(44)]) {
    t.throws(() => parsePasswordHash(bad), PasswordFormatError, bad)
  }
  await t.rejects(hashPassword('pw', { N: 1000, r: 8, p: 1 }), PasswordFormatError)
})
