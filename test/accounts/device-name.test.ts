/**
 * Device names are one name however the client composed its accents: stored and matched in
 * NFC, with the 64-byte limit measured on the NFC form.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { DEVICE_NAME_MAX_BYTES, StoreError, isValidDeviceName, type AccountStore } from '../../src/store/account-store.js'
import { MemoryAccountStore } from '../../src/store/memory-account-store.js'
import { SqliteAccountStore } from '../../src/store/sqlite-account-store.js'
import { LoginService } from '../../src/server/accounts/login.js'
import { hashPassword } from '../../src/server/accounts/password.js'
import { SessionTokens } from '../../src/server/accounts/tokens.js'

const COMPOSED = 'caf\u00e9' // é as one code point
const DECOMPOSED = 'cafe\u0301' // e + combining acute accent
/** 32 x é: 64 bytes in NFC, 96 bytes decomposed. */
const LONG_COMPOSED = '\u00e9'.repeat(32)
const LONG_DECOMPOSED = 'e\u0301'.repeat(32)
/** U+0958 (3 bytes) is a composition exclusion: NFC makes it U+0915 U+093C (6 bytes). */
const GROWS_IN_NFC = '\u0958'.repeat(21)

const LOW_SCRYPT = { N: 1 << 10, r: 8, p: 1 }

const stores: Array<[string, () => { store: AccountStore; cleanup: () => Promise<void> }]> = [
  ['memory', () => ({ store: new MemoryAccountStore(), cleanup: async () => {} })],
  [
    'sqlite',
    () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'pigeon-device-name-'))
      const store = new SqliteAccountStore({ dataDir })
      return {
        store,
        cleanup: async () => {
          await store.close()
          rmSync(dataDir, { recursive: true, force: true })
        },
      }
    },
  ],
]

const rejectsCode = async (t: Test, p: Promise<unknown>, code: string): Promise<void> => {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  t.ok(err instanceof StoreError && err.code === code, `rejects with ${code}`, { found: err })
}

t.test('the validity rule measures the NFC form', async (t) => {
  t.equal(Buffer.byteLength(LONG_DECOMPOSED), 96)
  t.ok(isValidDeviceName(LONG_DECOMPOSED), 'too long as typed, 64 bytes in NFC')
  t.equal(Buffer.byteLength(GROWS_IN_NFC), 63)
  t.equal(Buffer.byteLength(GROWS_IN_NFC.normalize('NFC')), 126)
  t.notOk(isValidDeviceName(GROWS_IN_NFC), 'short as typed, too long in NFC')
  t.notOk(isValidDeviceName(`${LONG_COMPOSED}x`), `${DEVICE_NAME_MAX_BYTES + 1} bytes`)
})

for (const [kind, open] of stores) {
  t.test(`${kind} store: composed and decomposed names are one device`, async (t) => {
    const { store, cleanup } = open()
    t.teardown(cleanup)
    const alice = await store.createUser({ username: 'alice', passwordHash: 'h', nowMs: 0 })
    const device = await store.createDevice({ userId: alice.userId, name: DECOMPOSED, nowMs: 1 })
    t.equal(device.name, COMPOSED, 'stored in NFC')
    t.same(await store.getDeviceByName({ userId: alice.userId, name: COMPOSED }), device)
    t.same(await store.getDeviceByName({ userId: alice.userId, name: DECOMPOSED }), device)
    await rejectsCode(t, store.createDevice({ userId: alice.userId, name: COMPOSED, nowMs: 2 }), 'DEVICE_EXISTS')
    t.same((await store.listDevices(alice.userId)).map((d) => d.name), [COMPOSED])
  })

  t.test(`${kind} store: the byte limit applies after NFC`, async (t) => {
    const { store, cleanup } = open()
    t.teardown(cleanup)
    const alice = await store.createUser({ username: 'alice', passwordHash: 'h', nowMs: 0 })
    const long = await store.createDevice({ userId: alice.userId, name: LONG_DECOMPOSED, nowMs: 1 })
    t.equal(long.name, LONG_COMPOSED)
    t.equal(Buffer.byteLength(long.name), DEVICE_NAME_MAX_BYTES)
    await rejectsCode(t, store.createDevice({ userId: alice.userId, name: GROWS_IN_NFC, nowMs: 2 }), 'INVALID_ARGUMENT')
  })
}

t.test('login and register: the same name in either form is the same device', async (t) => {
  const store = new MemoryAccountStore()
  const tokens = new SessionTokens({ store, secret: new Uint8Array(32).fill(1) })
  await store.createUser({ username: 'alice', passwordHash: await hashPassword('wonderland', LOW_SCRYPT), nowMs: 0 })
  const service = new LoginService({ store, tokens, scryptParams: LOW_SCRYPT, openRegistration: true })
  const base = { username: 'alice', password: 'wonderland', address: '192.0.2.1' }

  const first = await service.login({ ...base, deviceName: COMPOSED, nowMs: 1000 })
  const second = await service.login({ ...base, deviceName: DECOMPOSED, nowMs: 2000 })
  if (!first.ok || !second.ok) throw new Error('login failed')
  t.equal(second.deviceId, first.deviceId, 'decomposed login finds the composed device')
  t.same((await store.listDevices(first.userId)).map((d) => [d.name, d.lastSeenAtMs]), [[COMPOSED, 2000]])
  t.same(await service.login({ ...base, deviceName: GROWS_IN_NFC, nowMs: 3000 }), { ok: false, code: 'INVALID_REQUEST' })

  const registered = await service.register({ ...base, username: 'bob', deviceName: DECOMPOSED, nowMs: 4000 })
  const bobAgain = await service.login({ ...base, username: 'bob', deviceName: COMPOSED, nowMs: 5000 })
  if (!registered.ok || !bobAgain.ok) throw new Error('register or login failed')
  t.equal(bobAgain.deviceId, registered.deviceId, 'register stored the NFC name the later login matches')
})

t.test('sqlite: a device stored decomposed before names were normalized is still found by either form', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'pigeon-device-name-'))
  const store = new SqliteAccountStore({ dataDir })
  t.teardown(async () => {
    await store.close()
    rmSync(dataDir, { recursive: true, force: true })
  })
  const user = await store.createUser({ username: 'alice', passwordHash: 'h', nowMs: 0 })
  store.db.prepare('INSERT INTO devices (user_id, name, created_at_ms, last_seen_at_ms) VALUES (?, ?, 0, 0)').run(user.userId, DECOMPOSED)
  t.equal((await store.getDeviceByName({ userId: user.userId, name: DECOMPOSED }))?.name, DECOMPOSED, 'the form it was typed in')
  t.equal((await store.getDeviceByName({ userId: user.userId, name: COMPOSED }))?.name, undefined, 'the NFC form finds the NFC row only (there is none)')
})
