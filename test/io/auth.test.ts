/**
 * Accounts over real sockets: an encrypted server that requires login on stream 0.
 * Login, wrong password, message before login, resume with the token, expired and
 * revoked tokens, kick — on 127.0.0.1 and ::1.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { generateStaticKeyPair } from '../../src/core/crypto/noise-nk.js'
import { AuthError, PigeonClient } from '../../src/io/client.js'
import { CryptoRng } from '../../src/io/crypto-rng.js'
import { nodeCryptoBackend } from '../../src/io/node-crypto-backend.js'
import { startEchoServer } from '../../src/io/server.js'
import { LoginService } from '../../src/server/accounts/login.js'
import { hashPassword } from '../../src/server/accounts/password.js'
import { SessionTokens } from '../../src/server/accounts/tokens.js'
import { MemoryAccountStore } from '../../src/store/memory-account-store.js'

const LOW_COST = { N: 1 << 10, r: 8, p: 1 }
const text = (s: string): Uint8Array => new TextEncoder().encode(s)

const setup = async (t: { teardown: (fn: () => unknown) => void }, host: string, tokenLifetimeMs?: number) => {
  const store = new MemoryAccountStore()
  await store.createUser({ username: 'alice', passwordHash: await hashPassword('wonderland', LOW_COST), nowMs: Date.now() })
  const tokens = new SessionTokens({ store, secret: new Uint8Array(randomBytes(32)), lifetimeMs: tokenLifetimeMs })
  let kickUser = (_userId: number): number => 0
  const service = new LoginService({ store, tokens, scryptParams: LOW_COST, onKick: (e) => kickUser(e.userId) })
  const keyPair = generateStaticKeyPair({ rng: new CryptoRng(), backend: nodeCryptoBackend })
  const server = await startEchoServer({ host, port: 0, security: { staticKeyPair: keyPair }, accounts: service })
  kickUser = server.kickUser
  t.teardown(() => server.close())
  const connect = async (): Promise<PigeonClient> => {
    const c = await PigeonClient.connect({ host, port: server.port, serverPublicKey: keyPair.publicKey, connectTimeoutMs: 10_000 })
    t.teardown(() => c.close())
    return c
  }
  return { service, tokens, store, connect }
}

const echoOnce = (client: PigeonClient, data: string): Promise<string> =>
  new Promise((resolve) => {
    client.once('message', (_s: number, _q: number, d: Uint8Array) => resolve(new TextDecoder().decode(d)))
    client.send(1, text(data))
  })

for (const host of ['127.0.0.1', '::1']) {
  t.test(`${host}: login, then messages; wrong password is refused`, async (t) => {
    const { connect } = await setup(t, host)
    const bad = await connect()
    await t.rejects(bad.login({ username: 'alice', password: 'nope', deviceName: 'phone' }), { code: 'WRONG_CREDENTIALS' })
    await t.rejects(bad.login({ username: 'mallory', password: 'nope', deviceName: 'phone' }), { code: 'WRONG_CREDENTIALS' }, 'unknown users look the same')
    const client = await connect()
    const ok = await client.login({ username: 'alice', password: 'wonderland', deviceName: 'phone' })
    t.ok(ok.token.length > 32, 'a session token')
    t.equal(await echoOnce(client, 'hello after login'), 'hello after login')
  })

  t.test(`${host}: a message before login closes the session`, async (t) => {
    const { connect } = await setup(t, host)
    const client = await connect()
    const closed = new Promise<{ code: number; reason: string }>((resolve) => client.once('closed', resolve))
    client.send(1, text('sneaky'))
    t.match(await closed, { reason: 'not logged in' })
  })

  t.test(`${host}: resume with the token, without the password; logout revokes it`, async (t) => {
    const { connect } = await setup(t, host)
    const first = await connect()
    const { token } = await first.login({ username: 'alice', password: 'wonderland', deviceName: 'laptop' })
    await first.close()
    const again = await connect() // a client restart: new socket, new session
    const resumed = await again.resume(token)
    t.ok(resumed.userId > 0)
    t.equal(await echoOnce(again, 'resumed'), 'resumed')
    await again.logout()
    const third = await connect()
    await t.rejects(third.resume(token), { code: 'TOKEN_REVOKED' })
    const forged = token.slice()
    forged[forged.length - 1] ^= 1
    await t.rejects(third.resume(forged), { code: 'TOKEN_INVALID' })
  })

  t.test(`${host}: an expired token is refused; a kick closes live sessions`, async (t) => {
    const { connect } = await setup(t, host, 1)
    const client = await connect()
    const { token } = await client.login({ username: 'alice', password: 'wonderland', deviceName: 'tablet' })
    const other = await connect()
    // The token lived 1 ms: a resume now is past its expiry.
    await t.rejects(other.resume(token), { code: 'TOKEN_EXPIRED' })
    t.ok(AuthError)
  })

  t.test(`${host}: an admin kick revokes the tokens and closes the user's live sessions`, async (t) => {
    const { connect, service } = await setup(t, host)
    const client = await connect()
    const { token, userId } = await client.login({ username: 'alice', password: 'wonderland', deviceName: 'desk' })
    const closed = new Promise<{ reason: string }>((resolve) => client.once('closed', resolve))
    await service.kick({ userId, nowMs: Date.now() })
    t.match(await closed, { reason: 'kicked' })
    const again = await connect()
    await t.rejects(again.resume(token), { code: 'TOKEN_REVOKED' })
  })
}
