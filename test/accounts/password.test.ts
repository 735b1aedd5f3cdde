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

t.test('a password too long only after NFC: hashing refuses it, verifying does the same scrypt work and says wrong', async (t) => {
  const crypto = await import('node:crypto')
  let scryptCalls = 0
  const counted = await t.mockImport<typeof import('../../src/server/accounts/password.js')>('../../src/server/accounts/password.js', {
    'node:crypto': {
      ...crypto,
      scrypt: (...args: Parameters<typeof crypto.scrypt>) => {
        scryptCalls++
        return (crypto.scrypt as (...a: unknown[]) => void)(...args)
      },
    },
  })
  const password = '\u0958'.repeat(341) // 1023 bytes, 2046 after NFC
  t.equal(counted.isPasswordTooLong(password), true)
  t.equal(counted.isPasswordTooLong('\u0958'.repeat(170)), false, '1020 bytes after NFC')
  await t.rejects(counted.hashPassword(password, LOW), { name: 'PasswordFormatError', code: 'PASSWORD_TOO_LONG' })
  const stored = await counted.hashPassword('correct horse', LOW)
  scryptCalls = 0
  t.same(await counted.verifyPassword(password, stored, LOW), { ok: false, needsRehash: false })
  t.equal(scryptCalls, 1, 'one scrypt, as for any other wrong password')
  t.same(await counted.verifyPassword('x'.repeat(5000), stored, LOW), { ok: false, needsRehash: false })
  t.equal(scryptCalls, 2)
  // A stored hash of the first PASSWORD_MAX_BYTES bytes must not match the longer password.
  const prefix = 'y'.repeat(1024)
  t.equal((await counted.verifyPassword(prefix + 'z', await counted.hashPassword(prefix, LOW), LOW)).ok, false, 'only the prefix is hashed, yet it is wrong')
})
