import fc from 'fast-check'
import t from 'tap'
import { type AeadProtection, createAeadProtection } from '../../src/core/crypto/aead-protection.js'
import { type CryptoBackend, nobleBackend } from '../../src/core/crypto/backend.js'
import { ReplayWindow } from '../../src/core/crypto/replay-window.js'
import { UsageError } from '../../src/core/errors.js'
import { SeededRng } from '../../src/core/rng.js'
import { decodePacketHeader } from '../../src/core/wire/packet-header.js'
import { decodePacketNumber, type PnLength } from '../../src/core/wire/pn-encoding.js'
import { nodeCryptoBackend } from '../../src/io/node-crypto-backend.js'
import { buildShortPacket, fcParams, hex } from './helpers.js'

const secretA = new Uint8Array(32).fill(0xa1)
const secretB = new Uint8Array(32).fill(0xb2)

/** Two ends of one session: a sends with secretA, b with secretB. */
const pair = (o: { backendA?: CryptoBackend; backendB?: CryptoBackend; windowPackets?: number; autoA?: number } = {}): { a: AeadProtection; b: AeadProtection } => ({
  a: createAeadProtection({ sendSecret: secretA, recvSecret: secretB, backend: o.backendA, replayWindowPackets: o.windowPackets, keyUpdateAfterPackets: o.autoA }),
  b: createAeadProtection({ sendSecret: secretB, recvSecret: secretA, backend: o.backendB, replayWindowPackets: o.windowPackets }),
})

const payloadOf = (pn: number, length = 32): Uint8Array => {
  const p = new Uint8Array(length)
  for (let i = 0; i < length; i++) p[i] = (pn * 31 + i * 7) & 0xff
  p[0] = 0x01 // a PING frame first, as a session would
  return p
}

/** Seals one short-header packet as the session's assemble step does; returns the datagram. */
const sealPacket = (from: AeadProtection, pn: number, payload = payloadOf(pn), pnLength: PnLength = 2): Uint8Array => {
  const p = buildShortPacket({ packetNumber: pn, payload, pnLength })
  return p.buf.slice(0, from.seal(p.buf, p))
}

/** Opens a datagram as the session's receive step does (decode header, expand pn, open). */
const openPacket = (to: AeadProtection, datagram: Uint8Array, largestReceived?: number): Uint8Array | null => {
  const h = decodePacketHeader(datagram)
  if (h.type !== 'short') throw new Error('short header expected')
  const packetNumber = decodePacketNumber({ truncated: h.truncatedPn, lengthBytes: h.pnLength, largestReceived })
  const payload = to.open(datagram.subarray(h.packetStart, h.packetEnd), { headerLength: h.headerLength, packetNumber })
  return payload === null ? null : payload.slice()
}

t.test('seal/open round trip of session-shaped packets, every pn length, both backends and across them', async (t) => {
  const combos: Array<[CryptoBackend, CryptoBackend]> = [
    [nobleBackend, nobleBackend],
    [nodeCryptoBackend, nodeCryptoBackend],
    [nobleBackend, nodeCryptoBackend],
    [nodeCryptoBackend, nobleBackend],
  ]
  for (const [backendA, backendB] of combos) {
    const { a, b } = pair({ backendA, backendB })
    let pn = 0
    let largest: number | undefined
    for (const pnLength of [1, 2, 3, 4] as PnLength[]) {
      for (const size of [1, 15, 16, 17, 64, 1167]) {
        const payload = payloadOf(pn, size)
        const datagram = sealPacket(a, pn, payload, pnLength)
        t.equal(datagram.length, 1 + 8 + pnLength + size + 16)
        t.not(hex(datagram.subarray(9 + pnLength, 9 + pnLength + size)), hex(payload), 'payload is encrypted')
        const opened = openPacket(b, datagram, largest)
        t.equal(opened === null ? null : hex(opened), hex(payload), `${backendA.name}->${backendB.name} pnLength ${pnLength} size ${size}`)
        largest = pn
        pn++
      }
    }
    t.equal(a.stats.sealed, pn)
    t.equal(b.stats.opened, pn)
  }
})

t.test('the key phase bit is written by seal and the header is authenticated', async (t) => {
  const { a, b } = pair()
  const p = buildShortPacket({ packetNumber: 0, payload: payloadOf(0) })
  p.buf[0] |= 0x20 // a caller's stale bit: seal sets the real phase (0)
  const end = a.seal(p.buf, p)
  t.equal(p.buf[0] & 0x20, 0)
  const flipped = p.buf.slice(0, end)
  flipped[0] ^= 0x20
  t.equal(openPacket(b, flipped), null, 'flipped key phase: tried with next keys, refused')
  t.equal(b.recvGeneration, 0, 'a forged phase change does not move keys')
  t.not(openPacket(b, p.buf.slice(0, end)), null)
  t.throws(() => a.seal(p.buf, { ...p, packetNumber: 1, keyPhase: 1 }), UsageError, 'header phase must match')
})

t.test('tampering with any header, payload or tag byte, or truncating, is refused and counted', async (t) => {
  const { a, b } = pair()
  const good = sealPacket(a, 7, payloadOf(7, 40))
  let refused = 0
  for (let i = 0; i < good.length; i++) {
    for (const mask of [0x01, 0x80]) {
      const bad = good.slice()
      bad[i] ^= mask
      // Opened with the true bounds: a changed form / pn-length bit would otherwise change the parse.
      t.equal(b.open(bad, { headerLength: 11, packetNumber: 7 }), null, `byte ${i} mask ${mask}`)
      refused++
    }
  }
  for (let n = 0; n < good.length; n++) t.equal(b.open(good.slice(0, n), { headerLength: 11, packetNumber: 7 }), null, `prefix ${n}`)
  t.equal(b.stats.undecryptable + b.stats.truncated, refused + good.length)
  t.equal(b.stats.truncated, 11 + 16, 'shorter than header + tag')
  t.equal(b.open(good.slice(), { headerLength: 11, packetNumber: 8 }), null, 'wrong packet number (nonce) fails')
  t.equal(b.open(good.slice(), { headerLength: 10, packetNumber: 7 }), null, 'wrong header length (AAD) fails')
  t.equal(b.stats.opened, 0)
  t.not(b.open(good.slice(), { headerLength: 11, packetNumber: 7 }), null, 'the original still opens: failures changed nothing')
})

t.test('open decrypts in place and returns a view; a failed open leaves the bytes alone', async (t) => {
  const { a, b } = pair()
  const datagram = sealPacket(a, 3)
  const bad = datagram.slice()
  bad[bad.length - 1] ^= 1
  const before = hex(bad)
  t.equal(b.open(bad, { headerLength: 11, packetNumber: 3 }), null)
  t.equal(hex(bad), before)
  const payload = b.open(datagram, { headerLength: 11, packetNumber: 3 })
  t.equal(payload?.buffer, datagram.buffer)
  t.equal(hex(datagram.subarray(11, 11 + 32)), hex(payloadOf(3)))
})

t.test('replayed packets are refused and counted; reordering inside the window is fine', async (t) => {
  const { a, b } = pair()
  const packets = Array.from({ length: 10 }, (_, pn) => sealPacket(a, pn))
  const order = [0, 2, 1, 5, 3, 4, 9, 8, 7, 6]
  for (const pn of order) t.not(b.open(packets[pn].slice(), { headerLength: 11, packetNumber: pn }), null, `pn ${pn}`)
  for (const pn of order) t.equal(b.open(packets[pn].slice(), { headerLength: 11, packetNumber: pn }), null, `replay of ${pn}`)
  t.equal(b.stats.replayed, 10)
  t.equal(b.stats.opened, 10)
})

t.test('packets below the window are refused as too old', async (t) => {
  const { a, b } = pair()
  const p0 = sealPacket(a, 100)
  const p1 = sealPacket(a, 101)
  const p2 = sealPacket(a, 5000)
  t.not(b.open(p2, { headerLength: 11, packetNumber: 5000 }), null)
  t.equal(b.open(p0, { headerLength: 11, packetNumber: 100 }), null)
  t.equal(b.stats.tooOld, 1)
  const q = pair()
  const at = Array.from({ length: 3 }, (_, i) => sealPacket(q.a, [10, 2057, 2058][i]))
  t.not(q.b.open(at[1], { headerLength: 11, packetNumber: 2057 }), null)
  t.not(q.b.open(at[0], { headerLength: 11, packetNumber: 10 }), null, '2057 - 10 = 2047: still inside')
  t.not(q.b.open(at[2], { headerLength: 11, packetNumber: 2058 }), null)
  t.equal(q.b.open(at[0].slice(), { headerLength: 11, packetNumber: 10 }), null)
  t.equal(q.b.stats.tooOld, 1, 'now 2048 below the largest')
  t.not(p1.length, 0)
})

t.test('large packet numbers (beyond 2^32) form distinct nonces that both sides agree on', async (t) => {
  const { a, b } = pair()
  for (const pn of [2 ** 32 - 1, 2 ** 32, 2 ** 40 + 5, 2 ** 53 - 1]) {
    const p = buildShortPacket({ packetNumber: pn, payload: payloadOf(1) })
    const end = a.seal(p.buf, p)
    t.not(b.open(p.buf.subarray(0, end), { headerLength: 13, packetNumber: pn }), null, `pn ${pn}`)
  }
})

t.test('sealing the same packet number twice is refused (nonce reuse)', async (t) => {
  const { a } = pair()
  sealPacket(a, 5)
  t.throws(() => sealPacket(a, 5), UsageError)
  t.throws(() => sealPacket(a, 4), UsageError)
  const p = buildShortPacket({ packetNumber: 9, payload: payloadOf(9) })
  t.throws(() => a.seal(p.buf.subarray(0, p.payloadEnd + 15), p), UsageError, 'no room for the tag')
})

t.test('key update with reordering across the phase change', async (t) => {
  const { a, b } = pair()
  t.equal(a.canUpdateKeys, false, 'nothing sent yet')
  t.throws(() => a.keyUpdate(), UsageError)
  const gen0 = Array.from({ length: 10 }, (_, pn) => sealPacket(a, pn))
  for (const pn of [0, 1, 2, 5, 6]) t.not(openPacket(b, gen0[pn], pn - 1), null)
  t.equal(a.canUpdateKeys, false, 'no ack yet')
  a.onPacketAcknowledged(6)
  t.equal(a.canUpdateKeys, true)
  a.keyUpdate()
  t.equal(a.sealKeyPhase, 1)
  t.equal(a.sendGeneration, 1)
  t.equal(a.canUpdateKeys, false, 'the peer has not followed yet')
  const gen1 = Array.from({ length: 10 }, (_, i) => sealPacket(a, 10 + i))
  t.equal(gen1[0][0] & 0x20, 0x20, 'phase 1 on the wire')
  // Reordered: some new-phase packets arrive before late old-phase ones.
  t.not(b.open(gen1[2], { headerLength: 11, packetNumber: 12 }), null, 'first phase-1 packet: b moves to generation 1')
  t.equal(b.recvGeneration, 1)
  t.equal(b.sendGeneration, 1, 'b follows: its next packets are in phase 1')
  t.equal(b.stats.peerKeyUpdates, 1)
  for (const pn of [3, 4, 7]) t.not(b.open(gen0[pn], { headerLength: 11, packetNumber: pn }), null, `late phase-0 packet ${pn} (previous keys)`)
  for (const i of [0, 1, 3, 9]) t.not(b.open(gen1[i], { headerLength: 11, packetNumber: 10 + i }), null, `phase-1 packet ${10 + i}`)
  t.equal(b.open(gen0[3], { headerLength: 11, packetNumber: 3 }), null, 'replay across the phase change still refused')
  // b's answer in phase 1 lets a move its receive side too.
  const fromB = sealPacket(b, 0)
  t.equal(fromB[0] & 0x20, 0x20)
  t.not(a.open(fromB, { headerLength: 11, packetNumber: 0 }), null)
  t.equal(a.recvGeneration, 1)
  t.equal(a.stats.peerKeyUpdates, 0, 'a started it')
  t.equal(a.stats.keyUpdates, 1)
  t.equal(a.canUpdateKeys, false, 'no phase-1 packet of a acknowledged yet')
  a.onPacketAcknowledged(9)
  t.equal(a.canUpdateKeys, false, 'an ack of an old-phase packet does not count')
  a.onPacketAcknowledged(12)
  t.equal(a.canUpdateKeys, true)
  // Second update: generation 2 is phase 0 again; generation 0's keys are gone.
  a.keyUpdate()
  const gen2 = sealPacket(a, 20)
  t.equal(gen2[0] & 0x20, 0)
  t.not(b.open(gen2, { headerLength: 11, packetNumber: 20 }), null, 'generation 2 opens')
  t.equal(b.recvGeneration, 2)
  t.not(b.open(gen1[4], { headerLength: 11, packetNumber: 14 }), null, 'a late generation-1 packet opens with the previous keys')
  t.equal(b.open(gen0[8], { headerLength: 11, packetNumber: 8 }), null, 'generation 0 is gone (same phase bit as 2, wrong keys)')
  b.discardPreviousKeys()
  t.equal(b.open(gen1[5], { headerLength: 11, packetNumber: 15 }), null, 'previous keys discarded on request')
})

t.test('previous keys are dropped once their packets fall out of the replay window', async (t) => {
  const { a, b } = pair({ windowPackets: 64 })
  const old = Array.from({ length: 4 }, (_, pn) => sealPacket(a, pn))
  t.not(b.open(old[0], { headerLength: 11, packetNumber: 0 }), null)
  a.onPacketAcknowledged(0)
  a.keyUpdate()
  for (let pn = 4; pn < 80; pn++) t.not(b.open(sealPacket(a, pn), { headerLength: 11, packetNumber: pn }), null)
  t.equal(b.open(old[1], { headerLength: 11, packetNumber: 1 }), null)
  t.equal(b.stats.tooOld, 1)
})

t.test('automatic key update after N packets, once allowed', async (t) => {
  const { a, b } = pair({ autoA: 5 })
  let pn = 0
  for (; pn < 8; pn++) t.not(b.open(sealPacket(a, pn), { headerLength: 11, packetNumber: pn }), null)
  t.equal(a.sendGeneration, 0, 'not before an ack')
  a.onPacketAcknowledged(3)
  const p = sealPacket(a, pn)
  t.equal(p[0] & 0x20, 0, 'the packet that triggers the update is still sealed in phase 0')
  t.equal(a.sendGeneration, 1)
  t.not(b.open(p, { headerLength: 11, packetNumber: pn++ }), null)
  const q = sealPacket(a, pn)
  t.equal(q[0] & 0x20, 0x20)
  t.not(b.open(q, { headerLength: 11, packetNumber: pn++ }), null)
  t.equal(b.recvGeneration, 1)
})

t.test('bad secrets are a UsageError', async (t) => {
  t.throws(() => createAeadProtection({ sendSecret: new Uint8Array(16), recvSecret: secretB }), UsageError)
})

t.test('open never throws, whatever it is given (fast-check)', async (t) => {
  const { a, b } = pair()
  const good = sealPacket(a, 1000, payloadOf(1000, 100))
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 300 }),
      fc.oneof(fc.integer({ min: -5, max: 400 }), fc.constantFrom(NaN, Infinity, 1.5)),
      fc.oneof(fc.nat(), fc.constantFrom(-1, 2 ** 53, NaN, 0.5)),
      fc.constantFrom(undefined, 0 as const, 1 as const),
      (bytes, headerLength, packetNumber, keyPhase) => {
        const r = b.open(bytes, { headerLength, packetNumber, keyPhase })
        return r === null
      },
    ),
    fcParams(2000),
  )
  // Mutations of a genuine packet: refused unless unchanged.
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }), (flips) => {
      const bad = good.slice()
      for (const [i, x] of flips) bad[i] ^= x
      if (hex(bad) === hex(good)) return true
      return b.open(bad, { headerLength: 11, packetNumber: 1000 }) === null
    }),
    fcParams(2000),
  )
  t.equal(b.stats.opened, 0)
  t.pass('no exception escaped')
})

t.test('ReplayWindow agrees with a naive model', async (t) => {
  fc.assert(
    fc.property(fc.array(fc.nat(5000), { maxLength: 400 }), (pns) => {
      const w = new ReplayWindow(64)
      const seen = new Set<number>()
      let largest = -1
      for (const pn of pns) {
        const expected = pn > largest ? 'fresh' : pn <= largest - 64 ? 'too_old' : seen.has(pn) ? 'duplicate' : 'fresh'
        if (w.check(pn) !== expected) return false
        if (expected === 'fresh') {
          w.accept(pn)
          seen.add(pn)
          largest = Math.max(largest, pn)
        }
      }
      return true
    }),
    fcParams(500),
  )
  t.throws(() => new ReplayWindow(100))
})

t.test('a simulated lossy, reordering, duplicating link with key updates: every delivered packet opens exactly once', async (t) => {
  const seed = 0x5eed
  const rng = new SeededRng(seed)
  const { a, b } = pair()
  const inFlight: Array<{ pn: number; bytes: Uint8Array }> = []
  const delivered = new Set<number>()
  let pn = 0
  for (let step = 0; step < 3000; step++) {
    if (rng.nextFloat() < 0.6) {
      inFlight.push({ pn, bytes: sealPacket(a, pn, payloadOf(pn, 20), 4) })
      pn++
    }
    if (inFlight.length > 0 && rng.nextFloat() < 0.6) {
      const i = Math.floor(rng.nextFloat() * Math.min(inFlight.length, 8)) // reorder among the oldest 8
      const [pkt] = inFlight.splice(i, 1)
      if (rng.nextFloat() < 0.1) inFlight.push({ pn: pkt.pn, bytes: pkt.bytes.slice() }) // duplicate
      if (rng.nextFloat() < 0.05) continue // lost
      const r = b.open(pkt.bytes, { headerLength: 13, packetNumber: pkt.pn })
      if (r !== null) {
        if (delivered.has(pkt.pn)) t.fail(`pn ${pkt.pn} opened twice (seed ${seed})`)
        if (hex(r) !== hex(payloadOf(pkt.pn, 20))) t.fail(`pn ${pkt.pn} wrong payload (seed ${seed})`)
        delivered.add(pkt.pn)
        // b's traffic back carries acks; the ack makes further updates possible.
        const back = sealPacket(b, b.stats.sealed, payloadOf(0, 4), 4)
        a.open(back, { headerLength: 13, packetNumber: b.stats.sealed - 1 })
        a.onPacketAcknowledged(pkt.pn)
      }
    }
    if (step % 300 === 299 && a.canUpdateKeys) a.keyUpdate()
  }
  t.ok(a.stats.keyUpdates >= 5, `key updates: ${a.stats.keyUpdates} (seed ${seed})`)
  t.equal(b.stats.undecryptable, 0, `no packet lost to key changes (seed ${seed})`)
  t.equal(b.stats.opened, delivered.size)
  t.ok(b.stats.replayed > 0, 'duplicates were refused')
})
