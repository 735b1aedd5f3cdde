/** The AccountStore conformance suite: every implementation runs exactly these tests. */
import type { Test } from 'tap'
import { StoreError, type AccountStore } from '../../src/store/account-store.js'

export type StoreFactory = () => Promise<{ store: AccountStore; cleanup: () => Promise<void> }>

/** Asserts that `p` rejects with a StoreError of code `c`. */
export const rejectsCode = async (t: Test, p: Promise<unknown>, c: string, msg?: string): Promise<void> => {
  try {
    await p
    t.fail(msg ?? `expected ${c}, resolved`)
  } catch (err) {
    t.ok(err instanceof StoreError && err.code === c, msg ?? `rejects with ${c}`, { found: err })
  }
}

const id = (n: number) => n.toString(16).padStart(32, '0')

export const accountStoreConformance = (t: Test, factory: StoreFactory): void => {
  const withStore = (name: string, body: (store: AccountStore, t: Test) => Promise<void>) =>
    t.test(name, async (t) => {
      const { store, cleanup } = await factory()
      t.teardown(cleanup)
      await body(store, t)
    })

  withStore('users: create, get by name and id, list, duplicates', async (store, t) => {
    const alice = await store.createUser({ username: 'alice', passwordHash: 'h1', nowMs: 1000 })
    const bob = await store.createUser({ username: 'bob', passwordHash: 'h2', nowMs: 2000 })
    t.ok(alice.userId > 0)
    t.not(alice.userId, bob.userId)
    t.same(await store.getUserByName('alice'), { userId: alice.userId, username: 'alice', passwordHash: 'h1', createdAtMs: 1000 })
    t.same(await store.getUserById(bob.userId), bob)
    t.equal(await store.getUserByName('carol'), undefined)
    t.equal(await store.getUserById(9999), undefined)
    t.same((await store.listUsers()).map((u) => u.username), ['alice', 'bob'])
    await rejectsCode(t, store.createUser({ username: 'alice', passwordHash: 'x', nowMs: 3000 }), 'USER_EXISTS')
    await rejectsCode(t, store.createUser({ username: 'Alice!', passwordHash: 'x', nowMs: 3000 }), 'INVALID_USERNAME')
    await rejectsCode(t, store.createUser({ username: '', passwordHash: 'x', nowMs: 3000 }), 'INVALID_USERNAME')
  })

  withStore('setPassword', async (store, t) => {
    const alice = await store.createUser({ username: 'alice', passwordHash: 'h1', nowMs: 0 })
    await store.setPassword({ userId: alice.userId, passwordHash: 'h2' })
    t.equal((await store.getUserByName('alice'))?.passwordHash, 'h2')
    await rejectsCode(t, store.setPassword({ userId: 424242, passwordHash: 'h' }), 'UNKNOWN_USER')
  })

  withStore('replacePasswordHash: compare-and-set on the stored hash', async (store, t) => {
    const alice = await store.createUser({ username: 'alice', passwordHash: 'h1', nowMs: 0 })
    t.equal(await store.replacePasswordHash({ userId: alice.userId, expectedPasswordHash: 'h1', passwordHash: 'h2' }), true)
    t.equal((await store.getUserById(alice.userId))?.passwordHash, 'h2')
    t.equal(await store.replacePasswordHash({ userId: alice.userId, expectedPasswordHash: 'h1', passwordHash: 'h3' }), false, 'stale expected hash')
    t.equal((await store.getUserById(alice.userId))?.passwordHash, 'h2', 'not overwritten')
    t.equal(await store.replacePasswordHash({ userId: 424242, expectedPasswordHash: 'h1', passwordHash: 'h3' }), false, 'unknown user')
  })

  withStore('concurrent creates of one device: one wins, the other gets DEVICE_EXISTS', async (store, t) => {
    const alice = await store.createUser({ username: 'alice', passwordHash: 'h', nowMs: 0 })
    const results = await Promise.allSettled([
      store.createDevice({ userId: alice.userId, name: 'phone', nowMs: 1 }),
      store.createDevice({ userId: alice.userId, name: 'phone', nowMs: 2 }),
    ])
    t.same(results.map((r) => r.status).sort(), ['fulfilled', 'rejected'])
    const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    t.ok(rejected?.reason instanceof StoreError && rejected.reason.code === 'DEVICE_EXISTS', 'DEVICE_EXISTS', { found: rejected?.reason })
    t.equal((await store.listDevices(alice.userId)).length, 1)
  })

  withStore('returned records are copies', async (store, t) => {
    const alice = await store.createUser({ username: 'alice', passwordHash: 'h1', nowMs: 0 })
    alice.passwordHash = 'mutated'
    const again = await store.getUserByName('alice')
    if (again) again.passwordHash = 'mutated too'
    t.equal((await store.getUserById(alice.userId))?.passwordHash, 'h1')
  })

  withStore('devices: create, unique per user, list, touch', async (store, t) => {
    const alice = await store.createUser({ username: 'alice', passwordHash: 'h', nowMs: 0 })
    const bob = await store.createUser({ username: 'bob', passwordHash: 'h', nowMs: 0 })
    const phone = await store.createDevice({ userId: alice.userId, name: 'phone', nowMs: 10 })
    const laptop = await store.createDevice({ userId: alice.userId, name: 'laptop', nowMs: 20 })
    const bobPhone = await store.createDevice({ userId: bob.userId, name: 'phone', nowMs: 30 })
    t.same(phone, { deviceId: phone.deviceId, userId: alice.userId, name: 'phone', createdAtMs: 10, lastSeenAtMs: 10 })
    t.not(bobPhone.deviceId, phone.deviceId)
    t.same((await store.listDevices(alice.userId)).map((d) => d.name), ['phone', 'laptop'])
    t.same(await store.listDevices(9999), [])
    t.same(await store.getDevice(laptop.deviceId), laptop)
    t.same(await store.getDeviceByName({ userId: bob.userId, name: 'phone' }), bobPhone)
    t.equal(await store.getDeviceByName({ userId: bob.userId, name: 'laptop' }), undefined)
    await rejectsCode(t, store.createDevice({ userId: alice.userId, name: 'phone', nowMs: 0 }), 'DEVICE_EXISTS')
    await rejectsCode(t, store.createDevice({ userId: 9999, name: 'phone', nowMs: 0 }), 'UNKNOWN_USER')
    await rejectsCode(t, store.createDevice({ userId: alice.userId, name: '', nowMs: 0 }), 'INVALID_ARGUMENT')
    await store.touchDevice({ deviceId: phone.deviceId, nowMs: 500 })
    t.equal((await store.getDevice(phone.deviceId))?.lastSeenAtMs, 500)
    await rejectsCode(t, store.touchDevice({ deviceId: 9999, nowMs: 1 }), 'UNKNOWN_DEVICE')
  })

  withStore('session tokens: insert, get, revoke, revoke all, active list, expiry cleanup', async (store, t) => {
    const alice = await store.createUser({ username: 'alice', passwordHash: 'h', nowMs: 0 })
    const bob = await store.createUser({ username: 'bob', passwordHash: 'h', nowMs: 0 })
    const phone = await store.createDevice({ userId: alice.userId, name: 'phone', nowMs: 0 })
    const laptop = await store.createDevice({ userId: alice.userId, name: 'laptop', nowMs: 0 })
    const bobPhone = await store.createDevice({ userId: bob.userId, name: 'phone', nowMs: 0 })
    const rec = (n: number, userId: number, deviceId: number, issuedAtMs: number, expiresAtMs: number) =>
      ({ tokenId: id(n), userId, deviceId, issuedAtMs, expiresAtMs, revokedAtMs: null })
    await store.insertSessionToken(rec(1, alice.userId, phone.deviceId, 100, 10_000))
    await store.insertSessionToken(rec(2, alice.userId, laptop.deviceId, 200, 10_000))
    await store.insertSessionToken(rec(3, alice.userId, laptop.deviceId, 50, 1000)) // expires early
    await store.insertSessionToken(rec(4, bob.userId, bobPhone.deviceId, 300, 10_000))
    t.same(await store.getSessionToken(id(1)), rec(1, alice.userId, phone.deviceId, 100, 10_000))
    t.equal(await store.getSessionToken(id(99)), undefined)
    await rejectsCode(t, store.insertSessionToken(rec(1, alice.userId, phone.deviceId, 0, 1)), 'TOKEN_EXISTS')
    await rejectsCode(t, store.insertSessionToken(rec(5, 9999, phone.deviceId, 0, 1)), 'UNKNOWN_USER')
    await rejectsCode(t, store.insertSessionToken(rec(6, alice.userId, 9999, 0, 1)), 'UNKNOWN_DEVICE')
    await rejectsCode(t, store.insertSessionToken(rec(7, alice.userId, bobPhone.deviceId, 0, 1)), 'UNKNOWN_DEVICE', "another user's device")

    t.same((await store.listActiveTokens({ userId: alice.userId, nowMs: 500 })).map((r) => r.tokenId), [id(3), id(1), id(2)])
    t.same((await store.listActiveTokens({ userId: alice.userId, nowMs: 1000 })).map((r) => r.tokenId), [id(1), id(2)], 'expired excluded')

    t.equal(await store.revokeToken({ tokenId: id(1), nowMs: 600 }), true)
    t.equal(await store.revokeToken({ tokenId: id(1), nowMs: 700 }), false, 'second revoke is a no-op')
    t.equal(await store.revokeToken({ tokenId: id(99), nowMs: 700 }), false)
    t.equal((await store.getSessionToken(id(1)))?.revokedAtMs, 600)

    t.equal(await store.revokeAllForUser({ userId: alice.userId, nowMs: 2000 }), 1, 'only token 2 was still valid')
    t.equal((await store.getSessionToken(id(2)))?.revokedAtMs, 2000)
    t.equal((await store.getSessionToken(id(3)))?.revokedAtMs, null, 'expired tokens are left alone')
    t.equal((await store.getSessionToken(id(4)))?.revokedAtMs, null, "bob's token untouched")
    t.same(await store.listActiveTokens({ userId: alice.userId, nowMs: 2000 }), [])

    t.equal(await store.deleteExpiredTokens({ beforeMs: 5000 }), 1)
    t.equal(await store.getSessionToken(id(3)), undefined)
    t.ok(await store.getSessionToken(id(1)))
  })

  withStore('large ids and times round-trip', async (store, t) => {
    const alice = await store.createUser({ username: 'alice', passwordHash: 'h', nowMs: 2 ** 52 })
    const phone = await store.createDevice({ userId: alice.userId, name: 'телефон 📱', nowMs: 2 ** 52 + 1 })
    t.equal((await store.getDeviceByName({ userId: alice.userId, name: 'телефон 📱' }))?.createdAtMs, 2 ** 52 + 1)
    await store.insertSessionToken({ tokenId: id(1), userId: alice.userId, deviceId: phone.deviceId, issuedAtMs: 2 ** 52, expiresAtMs: 2 ** 53 - 1, revokedAtMs: null })
    t.equal((await store.getSessionToken(id(1)))?.expiresAtMs, 2 ** 53 - 1)
  })

  withStore('closed store refuses calls', async (store, t) => {
    await store.close()
    await rejectsCode(t, store.getUserByName('alice'), 'STORE_CLOSED')
    await store.close()
  })
}
