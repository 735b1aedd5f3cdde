import t from 'tap'
import { MemoryAccountStore } from '../../src/store/memory-account-store.js'
import { LoginService } from '../../src/server/accounts/login.js'
import { handleLoginMessage, type SessionAuth } from '../../src/server/accounts/login-handler.js'
import { decodeLoginMessage, encodeLoginMessage, type LoginMessage } from '../../src/protocol/login-messages.js'
import { hashPassword } from '../../src/server/accounts/password.js'
import { SessionTokens } from '../../src/server/accounts/tokens.js'

const LOW = { N: 1 << 10, r: 8, p: 1 }

const setup = async () => {
  const store = new MemoryAccountStore()
  await store.createUser({ username: 'alice', passwordHash: await hashPassword('wonderland', LOW), nowMs: 0 })
  const tokens = new SessionTokens({ store, secret: new Uint8Array(32).fill(3), lifetimeMs: 60_000 })
  const service = new LoginService({ store, tokens, scryptParams: LOW })
  const send = async (m: LoginMessage | Uint8Array, current: SessionAuth | undefined, nowMs = 1000) => {
    const r = await handleLoginMessage({ service, data: m instanceof Uint8Array ? m : encodeLoginMessage(m), address: '127.0.0.1', nowMs, current })
    return { ...r, message: decodeLoginMessage(r.reply) }
  }
  return { store, service, send }
}

t.test('login, then logout; resume on a new session; expired token', async (t) => {
  const { send } = await setup()
  const login = await send({ type: 'LOGIN', username: 'alice', password: 'wonderland', deviceName: 'phone' }, undefined)
  t.match(login.message, { type: 'LOGIN_OK', userId: 1, deviceId: 1, expiresAtMs: 61_000 })
  if (!login.auth) throw new Error('no auth')
  t.same(login.auth.token, (login.message as { token: Uint8Array }).token)

  t.same((await send({ type: 'LOGIN', username: 'alice', password: 'wonderland', deviceName: 'phone' }, login.auth)).message, { type: 'LOGIN_FAILED', code: 'INVALID_REQUEST' }, 'no second login on a session')

  const resumed = await send({ type: 'RESUME', token: login.auth.token }, undefined, 2000)
  t.same(resumed.message, { type: 'RESUME_OK', userId: 1, deviceId: 1, expiresAtMs: 61_000 })
  t.same(resumed.auth, login.auth)

  const expired = await send({ type: 'RESUME', token: login.auth.token }, undefined, 61_000)
  t.same(expired.message, { type: 'LOGIN_FAILED', code: 'TOKEN_EXPIRED' })
  t.equal(expired.auth, undefined)

  const out = await send({ type: 'LOGOUT' }, login.auth, 3000)
  t.same(out.message, { type: 'LOGOUT_OK' })
  t.equal(out.loggedOut, true)
  t.equal(out.auth, undefined)
  t.same((await send({ type: 'RESUME', token: login.auth.token }, undefined, 4000)).message, { type: 'LOGIN_FAILED', code: 'TOKEN_REVOKED' })
})

t.test('wrong credentials, garbage, wrong-direction messages, logout before login', async (t) => {
  const { send } = await setup()
  const wrong = await send({ type: 'LOGIN', username: 'alice', password: 'nope', deviceName: 'phone' }, undefined)
  t.same(wrong.message, { type: 'LOGIN_FAILED', code: 'WRONG_CREDENTIALS' })
  t.equal(wrong.auth, undefined)
  t.same((await send(Uint8Array.of(0x01, 0x05), undefined)).message, { type: 'LOGIN_FAILED', code: 'INVALID_REQUEST' })
  t.same((await send({ type: 'LOGOUT_OK' }, undefined)).message, { type: 'LOGIN_FAILED', code: 'INVALID_REQUEST' })
  t.same((await send({ type: 'LOGOUT' }, undefined)).message, { type: 'LOGIN_FAILED', code: 'INVALID_REQUEST' })
  t.same((await send({ type: 'REGISTER', username: 'bob', password: 'long enough', deviceName: 'x' }, undefined)).message, { type: 'LOGIN_FAILED', code: 'REGISTRATION_CLOSED' })
})

t.test('a failing store becomes INTERNAL_ERROR with the cause attached', async (t) => {
  const { store, send } = await setup()
  await store.close()
  const r = await send({ type: 'LOGIN', username: 'alice', password: 'wonderland', deviceName: 'phone' }, undefined)
  t.same(r.message, { type: 'LOGIN_FAILED', code: 'INTERNAL_ERROR' })
  t.ok(r.error)
})
