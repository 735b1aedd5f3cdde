/**
 * SessionAuthenticator bookkeeping, without sockets: sessions of one user (one kept
 * as is, several in a Set), kick closes every live one, forget and LOGOUT take a
 * session out; login messages of one session are handled in order.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { ErrorCode } from '../../src/core/errors.js'
import { SeededRng } from '../../src/core/rng.js'
import { Session } from '../../src/core/session/session.js'
import { type SessionIo, SessionAuthenticator } from '../../src/io/session-auth.js'
import { silentLogger } from '../../src/io/logger.js'
import { decodeLoginMessage, encodeLoginMessage } from '../../src/protocol/login-messages.js'
import { LoginService } from '../../src/server/accounts/login.js'
import { hashPassword } from '../../src/server/accounts/password.js'
import { SessionTokens } from '../../src/server/accounts/tokens.js'
import { MemoryAccountStore } from '../../src/store/memory-account-store.js'

const LOW_COST = { N: 1 << 10, r: 8, p: 1 }
const NOW_MS = 1_700_000_000_000

const setup = async () => {
  const store = new MemoryAccountStore()
  await store.createUser({ username: 'alice', passwordHash: await hashPassword('wonderland', LOW_COST), nowMs: NOW_MS })
  await store.createUser({ username: 'bob', passwordHash: await hashPassword('builder!', LOW_COST), nowMs: NOW_MS })
  const tokens = new SessionTokens({ store, secret: new Uint8Array(randomBytes(32)) })
  const service = new LoginService({ store, tokens, scryptParams: LOW_COST })
  const replies = new Map<Session, string[]>()
  const closed: Array<{ session: Session; code: number; reason: string }> = []
  const io: SessionIo = {
    send: (session, _streamId, data) => {
      const list = replies.get(session) ?? []
      list.push(decodeLoginMessage(data).type)
      replies.set(session, list)
      return 0
    },
    closeSession: (session, code, reason) => closed.push({ session, code, reason }),
  }
  const deauthenticated: Session[] = []
  const auth = new SessionAuthenticator({ service, io, log: silentLogger(), nowMs: () => NOW_MS, onDeauthenticated: (s) => deauthenticated.push(s) })
  const rng = new SeededRng(7)
  const session = (): Session => new Session({ role: 'server', nowMs: 0, rng })
  /** Feed a login message and wait until the authenticator has answered it. */
  const say = async (s: Session, m: Parameters<typeof encodeLoginMessage>[0]): Promise<string> => {
    const before = replies.get(s)?.length ?? 0
    auth.onMessage(s, '127.0.0.1', 0, encodeLoginMessage(m), () => {})
    while ((replies.get(s)?.length ?? 0) === before) await new Promise((resolve) => setImmediate(resolve))
    return replies.get(s)![before]
  }
  const login = (s: Session, username: string, password: string): Promise<string> => say(s, { type: 'LOGIN', username, password, deviceName: 'phone' })
  return { auth, closed, deauthenticated, replies, session, say, login, tokens, service }
}

t.test('kick closes every live session of the user, one or several', async (t) => {
  const { auth, closed, session, login } = await setup()
  const a1 = session()
  const a2 = session()
  const a3 = session()
  const b = session()
  t.equal(await login(a1, 'alice', 'wonderland'), 'LOGIN_OK')
  t.equal(await login(b, 'bob', 'builder!'), 'LOGIN_OK')
  const bobId = auth.authOf(b)!.userId
  const aliceId = auth.authOf(a1)!.userId
  t.equal(auth.kick(bobId), 1, 'a lone session')
  t.same(closed.map((c) => [c.session === b, c.code]), [[true, ErrorCode.APPLICATION_CLOSE]])
  t.equal(await login(a2, 'alice', 'wonderland'), 'LOGIN_OK')
  t.equal(await login(a3, 'alice', 'wonderland'), 'LOGIN_OK')
  closed.length = 0
  t.equal(auth.kick(aliceId), 3, 'three sessions of one user')
  t.same(new Set(closed.map((c) => c.session)), new Set([a1, a2, a3]))
})

t.test('forget and LOGOUT take one session out, the others stay', async (t) => {
  const { auth, closed, deauthenticated, session, say, login } = await setup()
  const [s1, s2, s3] = [session(), session(), session()]
  for (const s of [s1, s2, s3]) t.equal(await login(s, 'alice', 'wonderland'), 'LOGIN_OK')
  const aliceId = auth.authOf(s1)!.userId
  auth.forget(s2)
  t.equal(auth.isAuthenticated(s2), false)
  t.same(deauthenticated, [s2])
  t.equal(await say(s3, { type: 'LOGOUT' }), 'LOGOUT_OK')
  t.equal(auth.isAuthenticated(s3), false, 'logged out')
  t.equal(auth.kick(aliceId), 1, 'only s1 is left')
  t.same(closed.map((c) => c.session), [s1])
  auth.forget(s1)
  t.equal(auth.kick(aliceId), 0, 'nobody left')
  t.equal(await login(s2, 'alice', 'wonderland'), 'LOGIN_OK', 'a session can log in again')
  t.equal(auth.kick(aliceId), 1)
})

t.test('a LOGIN on a logged-in session is refused and leaves it counted once', async (t) => {
  const { auth, session, login } = await setup()
  const s = session()
  t.equal(await login(s, 'alice', 'wonderland'), 'LOGIN_OK')
  t.equal(await login(s, 'alice', 'wonderland'), 'LOGIN_FAILED')
  t.equal(auth.isAuthenticated(s), true, 'still logged in')
  t.equal(auth.kick(auth.authOf(s)!.userId), 1)
})

t.test('login messages of one session are answered in order; other messages wait for login', async (t) => {
  const { auth, closed, replies, session } = await setup()
  const s = session()
  const delivered: number[] = []
  auth.onMessage(s, '127.0.0.1', 0, encodeLoginMessage({ type: 'LOGIN', username: 'alice', password: 'nope', deviceName: 'x' }), () => {})
  auth.onMessage(s, '127.0.0.1', 0, encodeLoginMessage({ type: 'LOGIN', username: 'alice', password: 'wonderland', deviceName: 'x' }), () => {})
  auth.onMessage(s, '127.0.0.1', 0, encodeLoginMessage({ type: 'LOGOUT' }), () => {})
  while ((replies.get(s)?.length ?? 0) < 3) await new Promise((resolve) => setImmediate(resolve))
  t.same(replies.get(s), ['LOGIN_FAILED', 'LOGIN_OK', 'LOGOUT_OK'])
  auth.onMessage(s, '127.0.0.1', 1, new Uint8Array([0x40]), (_s, streamId) => delivered.push(streamId))
  t.same(delivered, [], 'not delivered after LOGOUT')
  t.equal(closed.length, 1, 'closed instead')
})

t.test('LOGOUT ends the other sessions resumed with the same token; revalidate closes sessions whose token was revoked elsewhere', async (t) => {
  const { auth, closed, session, say, login, tokens, service } = await setup()
  const a1 = session()
  const a2 = session()
  const a3 = session()
  t.equal(await login(a1, 'alice', 'wonderland'), 'LOGIN_OK')
  const token = auth.authOf(a1)!.token
  t.equal(await say(a2, { type: 'RESUME', token }), 'RESUME_OK', 'a second session with the same token')
  t.equal(await login(a3, 'alice', 'wonderland'), 'LOGIN_OK', 'a third with a token of its own')
  t.equal(await say(a1, { type: 'LOGOUT' }), 'LOGOUT_OK')
  t.same(closed.map((c) => [c.session === a2, c.reason]), [[true, 'logged out']], 'only the session sharing the token')
  auth.forget(a2) // what its 'closed' event does in the server

  // Another process (the admin CLI) revokes a3's token: the server finds out by checking.
  const isValid = async (a: { token: Uint8Array }): Promise<boolean> => (await service.resume({ token: a.token, nowMs: NOW_MS })).ok
  t.equal(await auth.revalidate(isValid), 0, 'nothing revoked yet')
  await tokens.revoke({ token: auth.authOf(a3)!.token, nowMs: NOW_MS })
  t.equal(await auth.revalidate(isValid), 1)
  t.match(closed.at(-1), { reason: 'token revoked' })
  t.equal(closed.at(-1)!.session, a3)
})
