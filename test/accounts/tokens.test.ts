import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { MemoryAccountStore } from '../../src/store/memory-account-store.js'
import { SessionTokens, TOKEN_BYTES, TokenError, loadOrCreateTokenSecret, tokenFromText, tokenToText } from '../../src/server/accounts/tokens.js'

const SECRET = new Uint8Array(32).fill(7)
const DAY = 24 * 3600 * 1000

const setup = async (options: { secret?: Uint8Array; previousSecrets?: Uint8Array[] } = {}) => {
  const store = new MemoryAccountStore()
  const user = await store.createUser({ username: 'alice', passwordHash: 'h', nowMs: 0 })
  const device = await store.createDevice({ userId: user.userId, name: 'phone', nowMs: 0 })
  const tokens = new SessionTokens({ store, secret: options.secret ?? SECRET, previousSecrets: options.previousSecrets, lifetimeMs: DAY })
  return { store, tokens, userId: user.userId, deviceId: device.deviceId }
}

const expectCode = async (t: Test, p: Promise<unknown>, code: string) => {
  try {
    await p
    t.fail(`expected ${code}`)
  } catch (err) {
    t.equal(err instanceof TokenError ? err.code : err, code)
  }
}

t.test('issue then verify', async (t) => {
  const { store, tokens, userId, deviceId } = await setup()
  const { token, claims } = await tokens.issue({ userId, deviceId, nowMs: 1000.7 })
  t.equal(token.length, TOKEN_BYTES)
  t.equal(claims.issuedAtMs, 1000)
  t.equal(claims.expiresAtMs, 1000 + DAY)
  t.equal(claims.tokenId.length, 32, '128-bit id')
  t.same(await tokens.verify({ token, nowMs: 2000 }), claims)
  t.same((await store.getSessionToken(claims.tokenId))?.revokedAtMs, null)
  const other = await tokens.issue({ userId, deviceId, nowMs: 1000 })
  t.not(other.claims.tokenId, claims.tokenId)
  t.same(tokenFromText(tokenToText(token)), token)
})

t.test('expired', async (t) => {
  const { tokens, userId, deviceId } = await setup()
  const { token } = await tokens.issue({ userId, deviceId, nowMs: 0 })
  await tokens.verify({ token, nowMs: DAY - 1 })
  await expectCode(t, tokens.verify({ token, nowMs: DAY }), 'TOKEN_EXPIRED')
})

t.test('revoked: single token and all of a user', async (t) => {
  const { store, tokens, userId, deviceId } = await setup()
  const a = await tokens.issue({ userId, deviceId, nowMs: 0 })
  const b = await tokens.issue({ userId, deviceId, nowMs: 0 })
  t.equal(await tokens.revoke({ token: a.token, nowMs: 5 }), true)
  t.equal(await tokens.revoke({ token: a.token, nowMs: 6 }), false)
  await expectCode(t, tokens.verify({ token: a.token, nowMs: 10 }), 'TOKEN_REVOKED')
  await tokens.verify({ token: b.token, nowMs: 10 })
  t.equal(await store.revokeAllForUser({ userId, nowMs: 20 }), 1)
  await expectCode(t, tokens.verify({ token: b.token, nowMs: 30 }), 'TOKEN_REVOKED')
})

t.test('a token the store forgot counts as revoked', async (t) => {
  const { store, tokens, userId, deviceId } = await setup()
  const { token } = await tokens.issue({ userId, deviceId, nowMs: 0 })
  await store.deleteExpiredTokens({ beforeMs: DAY + 1 })
  await expectCode(t, tokens.verify({ token, nowMs: 1 }), 'TOKEN_REVOKED')
})

t.test('tampered, truncated, foreign-secret and garbage tokens are invalid', async (t) => {
  const { store, tokens, userId, deviceId } = await setup()
  const { token } = await tokens.issue({ userId, deviceId, nowMs: 0 })
  for (let i = 0; i < token.length; i++) {
    const bad = token.slice()
    bad[i] ^= 0x01
    await expectCode(t, tokens.verify({ token: bad, nowMs: 1 }), 'TOKEN_INVALID')
  }
  await expectCode(t, tokens.verify({ token: token.subarray(0, 80), nowMs: 1 }), 'TOKEN_INVALID')
  await expectCode(t, tokens.verify({ token: new Uint8Array(0), nowMs: 1 }), 'TOKEN_INVALID')
  await expectCode(t, tokens.verify({ token: new Uint8Array(TOKEN_BYTES), nowMs: 1 }), 'TOKEN_INVALID')
  const foreign = new SessionTokens({ store, secret: new Uint8Array(32).fill(8) })
  await expectCode(t, foreign.verify({ token, nowMs: 1 }), 'TOKEN_INVALID')
  await expectCode(t, tokens.revoke({ token: token.subarray(1), nowMs: 1 }), 'TOKEN_INVALID')
})

t.test('secret rotation: previous secrets still verify, new tokens use the new one', async (t) => {
  const old = await setup()
  const { token } = await old.tokens.issue({ userId: old.userId, deviceId: old.deviceId, nowMs: 0 })
  const rotated = new SessionTokens({ store: old.store, secret: new Uint8Array(32).fill(9), previousSecrets: [SECRET] })
  await rotated.verify({ token, nowMs: 1 })
  const fresh = await rotated.issue({ userId: old.userId, deviceId: old.deviceId, nowMs: 0 })
  await expectCode(t, old.tokens.verify({ token: fresh.token, nowMs: 1 }), 'TOKEN_INVALID')
})

t.test('short secrets are refused', async (t) => {
  t.throws(() => new SessionTokens({ store: new MemoryAccountStore(), secret: new Uint8Array(16) }), RangeError)
})

t.test('secret file: created once with mode 0600, then reused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pigeon-secret-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const a = loadOrCreateTokenSecret(join(dir, 'data'))
  const b = loadOrCreateTokenSecret(join(dir, 'data'))
  t.equal(a.length, 32)
  t.same(a, b)
  t.equal(statSync(join(dir, 'data', 'token-secret.key')).mode & 0o777, 0o600)
})
