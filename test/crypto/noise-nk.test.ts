import fc from 'fast-check'
import t, { type Test } from 'tap'
import { nobleBackend, type CryptoBackend } from '../../src/core/crypto/backend.js'
import { HandshakeError } from '../../src/core/crypto/errors.js'
import {
  generateStaticKeyPair,
  HANDSHAKE_MESSAGE_OVERHEAD_BYTES,
  handshakePrologue,
  NoiseClient,
  NoiseServer,
  staticKeyPairFromPrivate,
  trafficSecretsFor,
  type KeyPair,
} from '../../src/core/crypto/noise-nk.js'
import { ErrorCode, UsageError } from '../../src/core/errors.js'
import { SeededRng } from '../../src/core/rng.js'
import { VERSION_V1 } from '../../src/core/wire/packet-header.js'
import { nodeCryptoBackend } from '../../src/io/node-crypto-backend.js'
import { fcParams, fixedBytesRng, hex, unhex } from './helpers.js'

const backends: CryptoBackend[] = [nobleBackend, nodeCryptoBackend]
const prologue = handshakePrologue({ version: VERSION_V1, originalDcid: unhex('8394c8f03e515708'), clientScid: unhex('f067a5502a4262b5') })
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)

const run = (o: { rng: SeededRng; server: KeyPair; pinned?: Uint8Array; backend?: CryptoBackend; p1?: Uint8Array; p2?: Uint8Array }) => {
  const client = new NoiseClient({ rng: o.rng, serverStaticPublicKey: o.pinned ?? o.server.publicKey, prologue, backend: o.backend })
  const message1 = client.writeMessage1(o.p1 ?? utf8('params of the client'))
  const responder = NoiseServer.readMessage1({ rng: o.rng, staticKeyPair: o.server, prologue, message: message1, backend: o.backend })
  const { message2, keys: serverKeys } = responder.respond(o.p2 ?? utf8('params of the server'))
  return { client, message1, responder, message2, serverKeys }
}

/** Asserts `f` throws a HandshakeError (and nothing else). */
const throwsHandshake = (t: Test, f: () => unknown, reason?: string, msg?: string): void => {
  try {
    f()
    t.fail(msg ?? 'expected HandshakeError')
  } catch (err) {
    if (!(err instanceof HandshakeError)) throw err
    t.equal(err.code, ErrorCode.HANDSHAKE_FAILED)
    if (reason !== undefined) t.equal(err.reason, reason, msg ?? `reason ${reason}`)
  }
}

t.test('matches the public Noise_NK_25519_ChaChaPoly_SHA256 test vector (cacophony)', async (t) => {
  for (const backend of backends) {
    const prologue = unhex('4a6f686e2047616c74')
    const server = staticKeyPairFromPrivate(unhex('4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893'), backend)
    t.equal(hex(server.publicKey), '31e0303fd6418d2f8c0e78b91f22e8caed0fbe48656dcf4767e4834f701b8f62')
    const client = new NoiseClient({
      rng: fixedBytesRng(unhex('893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a')),
      serverStaticPublicKey: server.publicKey,
      prologue,
      backend,
    })
    const m1 = client.writeMessage1(unhex('4c756477696720766f6e204d69736573'))
    t.equal(hex(m1), 'ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c79448134d00711fdb390a0d178fa008f6d47d2891e5ea18ae136c3b4c23ac384efb0')
    const rngS = fixedBytesRng(unhex('bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b'))
    const responder = NoiseServer.readMessage1({ rng: rngS, staticKeyPair: server, prologue, message: m1, backend })
    t.equal(hex(responder.payload), '4c756477696720766f6e204d69736573')
    const { message2, keys } = responder.respond(unhex('4d757272617920526f746862617264'))
    t.equal(hex(message2), '95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f1448088438ea16e3701bc0d77744f117bee22451c9afa7f4cdbbcff00c04a8ee0913c88')
    const done = client.readMessage2(message2)
    t.equal(hex(done.payload), '4d757272617920526f746862617264')
    t.equal(hex(keys.handshakeHash), '2efa38a9c7c93ac98f3a097af25c2f58b9e7673787717bc27e98827118c2c1a5')
    // The vector's first transport message: Split()'s first key, nonce 0, no AD.
    const buf = new Uint8Array(11 + 16)
    buf.set(utf8('F. A. Hayek'))
    backend.chacha20poly1305(done.keys.clientToServer).seal(new Uint8Array(12), new Uint8Array(0), buf, 0, 11)
    t.equal(hex(buf), 'a62de29ce27cb80245d440d986ed816c156e9d757d7008df2198b0', `split key 1 (${backend.name})`)
    const buf2 = new Uint8Array(11 + 16)
    buf2.set(utf8('Carl Menger'))
    backend.chacha20poly1305(done.keys.serverToClient).seal(new Uint8Array(12), new Uint8Array(0), buf2, 0, 11)
    t.equal(hex(buf2), '174a35f11c689f4530d7208618e0564ae12f2f50ba8eb4df5382ff', `split key 2 (${backend.name})`)
  }
})

t.test('round trip: payloads delivered, both sides derive the same keys', async (t) => {
  for (const backend of backends) {
    const rng = new SeededRng(7)
    const server = generateStaticKeyPair({ rng, backend })
    const { client, message1, responder, message2, serverKeys } = run({ rng, server, backend })
    t.equal(new TextDecoder().decode(responder.payload), 'params of the client')
    t.equal(client.state, 'awaiting_message2')
    t.same(client.message1, message1)
    t.equal(message1.length, HANDSHAKE_MESSAGE_OVERHEAD_BYTES + 'params of the client'.length)
    const { payload, keys } = client.readMessage2(message2)
    t.equal(new TextDecoder().decode(payload), 'params of the server')
    t.equal(client.state, 'done')
    t.equal(hex(keys.clientToServer), hex(serverKeys.clientToServer))
    t.equal(hex(keys.serverToClient), hex(serverKeys.serverToClient))
    t.equal(hex(keys.handshakeHash), hex(serverKeys.handshakeHash))
    t.equal(hex(keys.clientEphemeralPublicKey), hex(message1.subarray(0, 32)))
    t.not(hex(keys.clientToServer), hex(keys.serverToClient))
    t.same(trafficSecretsFor('client', keys).sendSecret, trafficSecretsFor('server', serverKeys).recvSecret)
    t.same(trafficSecretsFor('server', keys).sendSecret, trafficSecretsFor('client', serverKeys).recvSecret)
  }
})

t.test('empty payloads and the largest payload', async (t) => {
  const rng = new SeededRng(8)
  const server = generateStaticKeyPair({ rng })
  const empty = run({ rng, server, p1: new Uint8Array(0), p2: new Uint8Array(0) })
  t.equal(empty.message1.length, 48)
  t.equal(empty.message2.length, 48)
  t.equal(empty.client.readMessage2(empty.message2).payload.length, 0)
  const big = new Uint8Array(65535 - 48).fill(0xab)
  const r = run({ rng, server, p1: big, p2: big })
  t.equal(r.responder.payload.length, big.length)
  t.throws(() => new NoiseClient({ rng, serverStaticPublicKey: server.publicKey, prologue }).writeMessage1(new Uint8Array(65535 - 47)), UsageError)
})

t.test('wrong pinned key (man in the middle) fails on both sides', async (t) => {
  for (const backend of backends) {
    const rng = new SeededRng(9)
    const real = generateStaticKeyPair({ rng, backend })
    const mallory = generateStaticKeyPair({ rng, backend })
    // The client pinned the real key; Mallory answers instead and cannot read message 1.
    const client = new NoiseClient({ rng, serverStaticPublicKey: real.publicKey, prologue, backend })
    const m1 = client.writeMessage1(utf8('hi'))
    throwsHandshake(t, () => NoiseServer.readMessage1({ rng, staticKeyPair: mallory, prologue, message: m1, backend }), 'bad_tag', 'mallory cannot read message 1')
    // Mallory relays message 1 to the real server but substitutes her own message 2,
    // built from a handshake she runs with the real server key pinned... she lacks its private key,
    // so the best she can do is a handshake with her own key: the client rejects it.
    const forgedClient = new NoiseClient({ rng, serverStaticPublicKey: mallory.publicKey, prologue, backend })
    const mm1 = forgedClient.writeMessage1(utf8('hi'))
    const forged = NoiseServer.readMessage1({ rng, staticKeyPair: mallory, prologue, message: mm1, backend }).respond(utf8('evil'))
    throwsHandshake(t, () => client.readMessage2(forged.message2), 'bad_tag', 'client rejects a message 2 not from the pinned key')
    // A client that pinned Mallory's key (misconfigured) is refused by the real server.
    const misconfigured = new NoiseClient({ rng, serverStaticPublicKey: mallory.publicKey, prologue, backend })
    throwsHandshake(t, () => NoiseServer.readMessage1({ rng, staticKeyPair: real, prologue, message: misconfigured.writeMessage1(), backend }), 'bad_tag')
    // The genuine message 2 still works after the forgery was refused.
    const genuine = NoiseServer.readMessage1({ rng, staticKeyPair: real, prologue, message: m1, backend }).respond(utf8('ok'))
    t.equal(new TextDecoder().decode(client.readMessage2(genuine.message2).payload), 'ok')
  }
})

t.test('a different prologue (version or connection ids rewritten) fails', async (t) => {
  const rng = new SeededRng(10)
  const server = generateStaticKeyPair({ rng })
  const client = new NoiseClient({ rng, serverStaticPublicKey: server.publicKey, prologue })
  const m1 = client.writeMessage1()
  for (const other of [
    handshakePrologue({ version: VERSION_V1 + 1, originalDcid: unhex('8394c8f03e515708'), clientScid: unhex('f067a5502a4262b5') }),
    handshakePrologue({ version: VERSION_V1, originalDcid: unhex('8394c8f03e515709'), clientScid: unhex('f067a5502a4262b5') }),
    handshakePrologue({ version: VERSION_V1, originalDcid: unhex('8394c8f03e515708'), clientScid: unhex('f067a5502a4262') }),
  ]) {
    throwsHandshake(t, () => NoiseServer.readMessage1({ rng, staticKeyPair: server, prologue: other, message: m1 }), 'bad_tag')
  }
})

t.test('tampering with any byte of either message fails', async (t) => {
  const rng = new SeededRng(11)
  const server = generateStaticKeyPair({ rng })
  const { client, message1, message2 } = run({ rng, server })
  for (let i = 0; i < message1.length; i++) {
    const bad = message1.slice()
    bad[i] ^= 1 << (i % 8)
    throwsHandshake(t, () => NoiseServer.readMessage1({ rng, staticKeyPair: server, prologue, message: bad }), undefined, `message 1 byte ${i}`)
  }
  for (let i = 0; i < message2.length; i++) {
    const bad = message2.slice()
    bad[i] ^= 0x80 >> (i % 8)
    throwsHandshake(t, () => client.readMessage2(bad), undefined, `message 2 byte ${i}`)
    t.equal(client.state, 'awaiting_message2')
  }
  t.ok(client.readMessage2(message2).keys, 'the untouched message 2 still completes the handshake')
})

t.test('truncation at every prefix, and an extra byte, fail with HandshakeError only', async (t) => {
  for (const backend of backends) {
    const rng = new SeededRng(12)
    const server = generateStaticKeyPair({ rng, backend })
    const { client, message1, message2 } = run({ rng, server, backend })
    for (let n = 0; n < message1.length; n++) {
      throwsHandshake(t, () => NoiseServer.readMessage1({ rng, staticKeyPair: server, prologue, message: message1.subarray(0, n) }), n < 48 ? 'bad_length' : undefined)
    }
    for (let n = 0; n < message2.length; n++) throwsHandshake(t, () => client.readMessage2(message2.subarray(0, n)), n < 48 ? 'bad_length' : undefined)
    const longer1 = new Uint8Array(message1.length + 1)
    longer1.set(message1)
    throwsHandshake(t, () => NoiseServer.readMessage1({ rng, staticKeyPair: server, prologue, message: longer1, backend }), 'bad_tag')
    const longer2 = new Uint8Array(message2.length + 1)
    longer2.set(message2)
    throwsHandshake(t, () => client.readMessage2(longer2), 'bad_tag')
    throwsHandshake(t, () => client.readMessage2(new Uint8Array(65536)), 'bad_length')
    t.ok(client.readMessage2(message2))
  }
})

// Curve25519 points of small order, their non-canonical encodings (x + p) and with the ignored top bit set.
const LOW_ORDER = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  '0000000000000000000000000000000000000000000000000000000000000080',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880',
]

t.test('low-order public keys are refused (no all-zero shared secret)', async (t) => {
  for (const backend of backends) {
    const rng = new SeededRng(13)
    const server = generateStaticKeyPair({ rng, backend })
    const { client, message2 } = run({ rng, server, backend })
    for (const point of LOW_ORDER) {
      const m1 = new Uint8Array(48)
      m1.set(unhex(point))
      throwsHandshake(t, () => NoiseServer.readMessage1({ rng, staticKeyPair: server, prologue, message: m1, backend }), 'bad_public_key', `message 1 e=${point.slice(0, 8)} (${backend.name})`)
      const m2 = message2.slice()
      m2.set(unhex(point))
      throwsHandshake(t, () => client.readMessage2(m2), 'bad_public_key', `message 2 e=${point.slice(0, 8)} (${backend.name})`)
      // A client pinned to a low-order "server key" cannot even write message 1.
      const c = new NoiseClient({ rng, serverStaticPublicKey: unhex(point), prologue, backend })
      throwsHandshake(t, () => c.writeMessage1(), 'bad_public_key')
    }
  }
})

t.test('ephemeral keys differ per handshake; traffic secrets too (forward secrecy structure)', async (t) => {
  const rng = new SeededRng(14)
  const server = generateStaticKeyPair({ rng })
  const seen = new Set<string>()
  for (let i = 0; i < 20; i++) {
    const { client, message1, message2 } = run({ rng, server, p1: utf8('same'), p2: utf8('same') })
    const { keys } = client.readMessage2(message2)
    for (const v of [hex(message1.subarray(0, 32)), hex(message2.subarray(0, 32)), hex(keys.clientToServer), hex(keys.serverToClient), hex(keys.handshakeHash)]) {
      t.notOk(seen.has(v), 'fresh value')
      seen.add(v)
    }
  }
  // Replaying message 1 gets a new server ephemeral, hence different keys: the replayer learns nothing.
  const { message1 } = run({ rng, server })
  const a = NoiseServer.readMessage1({ rng, staticKeyPair: server, prologue, message: message1 }).respond()
  const b = NoiseServer.readMessage1({ rng, staticKeyPair: server, prologue, message: message1 }).respond()
  t.not(hex(a.keys.clientToServer), hex(b.keys.clientToServer))
  t.not(hex(a.message2.subarray(0, 32)), hex(b.message2.subarray(0, 32)))
})

t.test('noble and node backends interoperate', async (t) => {
  const rng = new SeededRng(15)
  const server = generateStaticKeyPair({ rng, backend: nobleBackend })
  const client = new NoiseClient({ rng, serverStaticPublicKey: server.publicKey, prologue, backend: nodeCryptoBackend })
  const r = NoiseServer.readMessage1({ rng, staticKeyPair: server, prologue, message: client.writeMessage1(utf8('x')), backend: nobleBackend }).respond(utf8('y'))
  t.equal(hex(client.readMessage2(r.message2).keys.clientToServer), hex(r.keys.clientToServer))
  const pair = staticKeyPairFromPrivate(server.privateKey, nodeCryptoBackend)
  t.equal(hex(pair.publicKey), hex(server.publicKey))
})

t.test('API misuse is a UsageError; bad key sizes are HandshakeError bad_key', async (t) => {
  const rng = new SeededRng(16)
  const server = generateStaticKeyPair({ rng })
  throwsHandshake(t, () => new NoiseClient({ rng, serverStaticPublicKey: new Uint8Array(31), prologue }), 'bad_key')
  throwsHandshake(t, () => NoiseServer.readMessage1({ rng, staticKeyPair: { privateKey: new Uint8Array(32), publicKey: new Uint8Array(33) }, prologue, message: new Uint8Array(48) }), 'bad_key')
  const { client, responder, message2 } = run({ rng, server })
  t.throws(() => client.writeMessage1(), UsageError)
  t.throws(() => responder.respond(), UsageError)
  const fresh = new NoiseClient({ rng, serverStaticPublicKey: server.publicKey, prologue })
  t.throws(() => fresh.readMessage2(message2), UsageError)
  client.readMessage2(message2)
  t.throws(() => client.readMessage2(message2), UsageError)
})

t.test('random garbage as message 1 or 2 only ever throws HandshakeError', async (t) => {
  const rng = new SeededRng(17)
  const server = generateStaticKeyPair({ rng })
  const { client } = run({ rng, server })
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (garbage) => {
      for (const f of [() => NoiseServer.readMessage1({ rng, staticKeyPair: server, prologue, message: garbage }), () => client.readMessage2(garbage)]) {
        try {
          f()
          return false
        } catch (err) {
          if (!(err instanceof HandshakeError)) return false
        }
      }
      return client.state === 'awaiting_message2'
    }),
    fcParams(300),
  )
  t.pass('300 random messages, only HandshakeError')
})
