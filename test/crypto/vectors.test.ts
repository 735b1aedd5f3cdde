/**
 * protocol-spec/handshake.md quotes every value of the deterministic run in
 * vector-run.ts as `vector <name>: <hex>`: re-derive them all (with both crypto
 * backends) and compare byte for byte; then recompute the derivations the spec describes
 * in prose with node:crypto alone, so spec, code and an independent reading agree.
 */
import { createCipheriv, createHmac } from 'node:crypto'
import { readFileSync } from 'node:fs'
import t from 'tap'
import { nobleBackend } from '../../src/core/crypto/backend.js'
import { nodeCryptoBackend } from '../../src/io/node-crypto-backend.js'
import { hex, unhex } from './helpers.js'
import { computeVectors, VECTOR_INPUTS } from './vector-run.js'

const spec = readFileSync(new URL('../../protocol-spec/handshake.md', import.meta.url), 'utf8')
const quoted = new Map<string, string>()
for (const m of spec.matchAll(/^ {4}vector ([a-z0-9-]+): ([0-9a-f]+)$/gm)) {
  if (quoted.has(m[1])) throw new Error(`vector ${m[1]} quoted twice`)
  quoted.set(m[1], m[2])
}
const v = (name: string): string => {
  const value = quoted.get(name)
  if (value === undefined) throw new Error(`vector ${name} missing from the spec`)
  return value
}

t.test('every vector in the spec is re-derived byte for byte, with either backend', async (t) => {
  for (const backend of [nobleBackend, nodeCryptoBackend]) {
    const { vectors, keyLog } = computeVectors(backend)
    t.equal(quoted.size, vectors.length, 'the spec quotes exactly the computed vectors')
    for (const [name, value] of vectors) t.equal(quoted.get(name), value, `${name} (${backend.name})`)
    t.ok(spec.includes('```\n' + keyLog + '```'), 'key log block')
  }
})

// HKDF-Expand for one block: HMAC(secret, info || 0x01).
const expandLabel = (secret: string, label: string, length: number): string => {
  const full = Buffer.from(`pigeon ${label}`, 'ascii')
  const info = Buffer.concat([Buffer.from([length >> 8, length & 0xff, full.length]), full, Buffer.from([0])])
  return createHmac('sha256', unhex(secret)).update(info).update(Buffer.from([1])).digest().subarray(0, length).toString('hex')
}

t.test('the prose derivations, recomputed with node:crypto only', async (t) => {
  const I = VECTOR_INPUTS
  t.equal(v('hs-prologue'), hex(Buffer.from('pigeon', 'ascii')) + '50470001' + '08' + hex(I.originalDcid) + '08' + hex(I.clientScid))
  t.equal(v('hs-payload1'), hex(I.payload1))
  t.equal(v('hs-message1').slice(0, 64), hex(unhex(v('hs-message1')).subarray(0, 32)))
  t.equal(unhex(v('hs-message1')).length, 48 + I.payload1.length)
  t.equal(unhex(v('hs-message2')).length, 48 + I.payload2.length)
  t.equal(expandLabel(v('hs-client-secret'), 'key', 32), v('aead-client-key'))
  t.equal(expandLabel(v('hs-client-secret'), 'iv', 12), v('aead-client-iv'))
  t.equal(expandLabel(v('hs-server-secret'), 'key', 32), v('aead-server-key'))
  t.equal(expandLabel(v('hs-server-secret'), 'iv', 12), v('aead-server-iv'))
  t.equal(expandLabel(v('hs-client-secret'), 'ku', 32), v('ku-client-secret-1'))
  t.equal(expandLabel(v('ku-client-secret-1'), 'key', 32), v('ku-client-key-1'))
  t.equal(expandLabel(v('ku-client-secret-1'), 'iv', 12), v('ku-client-iv-1'))

  const nonceFor = (iv: string, pn: number): Buffer => {
    const n = Buffer.from(unhex(iv))
    const pnBytes = Buffer.alloc(8)
    pnBytes.writeBigUInt64BE(BigInt(pn))
    for (let i = 0; i < 8; i++) n[4 + i] ^= pnBytes[i]
    return n
  }
  t.equal(nonceFor(v('aead-client-iv'), I.packetNumber).toString('hex'), v('aead-nonce-1234'))
  const seal = (key: string, nonce: Buffer, header: Uint8Array, payload: Uint8Array): string => {
    const c = createCipheriv('chacha20-poly1305', unhex(key), nonce, { authTagLength: 16 })
    c.setAAD(header, { plaintextLength: payload.length })
    return Buffer.concat([header, c.update(payload), c.final(), c.getAuthTag()]).toString('hex')
  }
  const plain = unhex(v('aead-packet-plain'))
  t.equal(hex(plain), '41' + hex(I.serverCid) + '1234' + hex(I.packetPayload))
  t.equal(seal(v('aead-client-key'), nonceFor(v('aead-client-iv'), I.packetNumber), plain.subarray(0, 11), plain.subarray(11)), v('aead-packet-sealed'))
  const header1 = unhex('61' + hex(I.serverCid) + '1235')
  t.equal(seal(v('ku-client-key-1'), nonceFor(v('ku-client-iv-1'), I.packetNumber + 1), header1, I.packetPayload), v('aead-packet-phase1-sealed'))

  const token = unhex(v('retry-token'))
  const body = token.subarray(0, token.length - 16)
  t.equal(hex(body), '01' + (I.retryNowMs + 10_000).toString(16).padStart(16, '0') + '08' + hex(I.originalDcid))
  const tag = createHmac('sha256', unhex(v('retry-key'))).update('pigeon token').update(body).update(I.retryAddress).digest().subarray(0, 16)
  t.equal(hex(token.subarray(body.length)), hex(tag))
})
