/**
 * Encrypted sessions over real sockets (127.0.0.1 and ::1): replayed and tampered
 * datagrams are dropped and counted, never processed; a client that switches to a new
 * socket (new port, as after a NAT rebinding) keeps its session after path validation.
 */
import t from 'tap'
import { generateStaticKeyPair } from '../../src/core/crypto/noise-nk.js'
import { PigeonClient } from '../../src/io/client.js'
import { CryptoRng } from '../../src/io/crypto-rng.js'
import { nodeCryptoBackend } from '../../src/io/node-crypto-backend.js'
import { startEchoServer } from '../../src/io/server.js'
import { startRelay } from './relay.js'

const text = (s: string): Uint8Array => new TextEncoder().encode(s)
const str = (b: Uint8Array): string => new TextDecoder().decode(b)
const keyPair = generateStaticKeyPair({ rng: new CryptoRng(), backend: nodeCryptoBackend })

const echo = (client: PigeonClient, data: string): Promise<string> =>
  new Promise((resolve) => {
    client.once('message', (_s: number, _q: number, d: Uint8Array) => resolve(str(d)))
    client.send(1, text(data))
  })

for (const host of ['127.0.0.1', '::1']) {
  t.test(`${host}: replayed and tampered datagrams are dropped and counted`, async (t) => {
    const server = await startEchoServer({ host, port: 0, security: { staticKeyPair: keyPair }, retry: true })
    t.teardown(() => server.close())
    // The relay forwards each client datagram, then a replay of it and a tampered copy.
    let injected = 0
    const relay = await startRelay({
      host,
      serverPort: server.port,
      upstream: (d) => {
        if ((d[0] & 0x80) !== 0) return [d.slice()] // leave the handshake alone
        const tampered = d.slice()
        tampered[tampered.length - 1] ^= 0x40
        injected += 2
        return [d.slice(), d.slice(), tampered]
      },
    })
    t.teardown(() => relay.close())
    const client = await PigeonClient.connect({ host, port: relay.port, serverPublicKey: keyPair.publicKey, connectTimeoutMs: 10_000 })
    t.teardown(() => client.close())
    for (let i = 0; i < 20; i++) t.equal(await echo(client, `m${i}`), `m${i}`)
    const session = [...server.endpoint.core.sessions()][0]
    const s = session.stats
    t.ok(injected >= 40, `${injected} forged datagrams injected`)
    t.equal(s.messagesDelivered, 20, 'each message processed exactly once')
    t.ok(s.droppedUndecryptable + s.droppedDuplicate >= injected, `every replay and tamper dropped (${s.droppedUndecryptable} + ${s.droppedDuplicate})`)
    t.equal(server.endpoint.core.stats.retriesSent, 1, 'the client went through a RETRY')
  })

  t.test(`${host}: switching the client's socket mid-session (new port) keeps the session`, async (t) => {
    const server = await startEchoServer({ host, port: 0, security: { staticKeyPair: keyPair } })
    t.teardown(() => server.close())
    const client = await PigeonClient.connect({ host, port: server.port, serverPublicKey: keyPair.publicKey, connectTimeoutMs: 10_000 })
    t.teardown(() => client.close())
    t.equal(await echo(client, 'before'), 'before')
    await client.rebind()
    t.equal(await echo(client, 'after the switch'), 'after the switch')
    t.equal(await echo(client, 'and again'), 'and again')
    const core = server.endpoint.core
    t.equal(core.stats.addressChanges, 1, 'the server followed the client to its new port')
    t.ok(core.stats.pathChallenges >= 1, 'after validating the new path')
    t.equal(core.sessionCount, 1, 'same session, no new handshake')
  })
}
