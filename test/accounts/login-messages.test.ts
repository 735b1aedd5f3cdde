import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import t from 'tap'
import { DecodeError } from '../../src/core/errors.js'
import {
  AuthFailureWireCode,
  LoginMessageType,
  MAX_TOKEN_BYTES,
  decodeLoginMessage,
  encodeLoginMessage,
  isLoginMessage,
  type AuthFailureCode,
  type LoginMessage,
} from '../../src/protocol/login-messages.js'
import { loginReply, resumeReply } from '../../src/server/accounts/login-handler.js'
import { fcSeed } from '../wire/helpers.js'

fc.configureGlobal({ seed: fcSeed() }) // reproducible; PIGEON_FC_SEED explores

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')
const unhex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'))
const token81 = Uint8Array.from({ length: 81 }, (_, i) => i)

const VECTORS: Record<string, LoginMessage> = {
  login: { type: 'LOGIN', username: 'alice', password: 'wonderland', deviceName: 'phone' },
  register: { type: 'REGISTER', username: 'bob', password: 'p\u00e4ssw\u00f6rd', deviceName: 'laptop' },
  'login-ok': { type: 'LOGIN_OK', userId: 7, deviceId: 300, expiresAtMs: Date.UTC(2026, 0, 1), token: token81 },
  'login-failed': { type: 'LOGIN_FAILED', code: 'WRONG_CREDENTIALS' },
  'login-failed-rate': { type: 'LOGIN_FAILED', code: 'RATE_LIMITED', retryAfterMs: 60000 },
  resume: { type: 'RESUME', token: unhex('00010203') },
  'resume-ok': { type: 'RESUME_OK', userId: 7, deviceId: 300, expiresAtMs: Date.UTC(2026, 0, 1) },
  logout: { type: 'LOGOUT' },
  'logout-ok': { type: 'LOGOUT_OK' },
}

t.test('protocol-spec/login.md vectors match the encoder and decoder', async (t) => {
  const doc = readFileSync(new URL('../../protocol-spec/login.md', import.meta.url), 'utf8')
  const found = new Map<string, string>()
  for (const m of doc.matchAll(/^ {4}vector ([a-z-]+): ([0-9a-f]+)$/gm)) {
    t.notOk(found.has(m[1]), `vector ${m[1]} documented once`)
    found.set(m[1], m[2])
  }
  t.same([...found.keys()].sort(), Object.keys(VECTORS).sort(), 'every vector documented, none extra')
  t.same([...new Set(Object.values(VECTORS).map((m) => m.type))].sort(), Object.keys(LoginMessageType).sort(), 'a vector for every message type')
  for (const [name, message] of Object.entries(VECTORS)) {
    const wire = found.get(name) ?? ''
    t.equal(hex(encodeLoginMessage(message)), wire, `encode ${name}`)
    t.same(decodeLoginMessage(unhex(wire)), message, `decode ${name}`)
  }
  for (const [name, code] of Object.entries(AuthFailureWireCode)) {
    t.match(doc, new RegExp(`\\| \`${code.toString(16).padStart(2, '0')}\` \\| ${name} \\|`), `failure code ${name} documented`)
  }
})

const str = (maxBytes: number) => fc.string({ unit: 'grapheme', maxLength: maxBytes / 4 }).filter((s) => Buffer.byteLength(s) <= maxBytes)
const bytes = fc.uint8Array({ maxLength: MAX_TOKEN_BYTES })
const n = fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.maxSafeNat())
const codes = Object.keys(AuthFailureWireCode) as AuthFailureCode[]
const message: fc.Arbitrary<LoginMessage> = fc.oneof(
  fc.record({ type: fc.constantFrom('LOGIN' as const, 'REGISTER' as const), username: str(64), password: str(1024), deviceName: str(64) }),
  fc.record({ type: fc.constant('LOGIN_OK' as const), userId: n, deviceId: n, expiresAtMs: n, token: bytes }),
  fc.record({ type: fc.constant('LOGIN_FAILED' as const), code: fc.constantFrom(...codes) }),
  fc.record({ type: fc.constant('LOGIN_FAILED' as const), code: fc.constantFrom(...codes), retryAfterMs: fc.integer({ min: 1, max: 2 ** 40 }) }),
  fc.record({ type: fc.constant('RESUME' as const), token: bytes }),
  fc.record({ type: fc.constant('RESUME_OK' as const), userId: n, deviceId: n, expiresAtMs: n }),
  fc.record({ type: fc.constantFrom('LOGOUT' as const, 'LOGOUT_OK' as const) }),
)

t.test('round trip (property)', async (t) => {
  fc.assert(
    fc.property(message, (m) => {
      const wire = encodeLoginMessage(m)
      t.ok(isLoginMessage(wire))
      return JSON.stringify(decodeLoginMessage(wire), replacer) === JSON.stringify(m, replacer)
    }),
  )
})

t.test('every proper prefix fails to decode with DecodeError; so do trailing bytes', async (t) => {
  fc.assert(
    fc.property(message, (m) => {
      const wire = encodeLoginMessage(m)
      for (let len = 0; len < wire.length; len++) {
        try {
          decodeLoginMessage(wire.subarray(0, len))
          return false
        } catch (err) {
          if (!(err instanceof DecodeError)) throw err
        }
      }
      const longer = new Uint8Array(wire.length + 1)
      longer.set(wire)
      try {
        decodeLoginMessage(longer)
        return false
      } catch (err) {
        return err instanceof DecodeError
      }
    }),
  )
})

t.test('malformed inputs', async (t) => {
  t.throws(() => decodeLoginMessage(unhex('00')), DecodeError, 'type 0')
  t.throws(() => decodeLoginMessage(unhex('0f')), DecodeError, 'reserved type')
  t.throws(() => decodeLoginMessage(unhex('03ff00')), DecodeError, 'unknown failure code')
  t.throws(() => decodeLoginMessage(unhex('0101ff0000')), DecodeError, 'invalid UTF-8 username')
  t.throws(() => decodeLoginMessage(unhex('0141000000')), DecodeError, 'username over 64 bytes (declared 256)')
  t.throws(() => decodeLoginMessage(unhex('0441000000')), DecodeError, 'token over 255 bytes')
  t.throws(() => decodeLoginMessage(new Uint8Array(0)), DecodeError, 'empty')
  t.throws(() => encodeLoginMessage({ type: 'LOGIN', username: 'x'.repeat(65), password: '', deviceName: 'd' }), RangeError)
  t.throws(() => encodeLoginMessage({ type: 'RESUME', token: new Uint8Array(256) }), RangeError)
  t.equal(isLoginMessage(unhex('10')), false)
  t.equal(isLoginMessage(new Uint8Array(0)), false)
})

t.test('garbage never throws anything but DecodeError (fuzz)', async (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (data) => {
      try {
        decodeLoginMessage(data)
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err
      }
    }),
    { numRuns: 5000 },
  )
  t.pass()
})

t.test('decoded tokens are copies, not views on the datagram', async (t) => {
  const wire = encodeLoginMessage({ type: 'RESUME', token: unhex('aabb') })
  const m = decodeLoginMessage(wire)
  wire.fill(0)
  t.same(m, { type: 'RESUME', token: unhex('aabb') })
})

t.test('reply helpers map service results', async (t) => {
  t.same(loginReply({ ok: true, token: token81, userId: 1, deviceId: 2, expiresAtMs: 3 }), { type: 'LOGIN_OK', userId: 1, deviceId: 2, expiresAtMs: 3, token: token81 })
  t.same(loginReply({ ok: false, code: 'RATE_LIMITED', retryAfterMs: 5 }), { type: 'LOGIN_FAILED', code: 'RATE_LIMITED', retryAfterMs: 5 })
  t.same(resumeReply({ ok: true, userId: 1, deviceId: 2, username: 'a', expiresAtMs: 3, tokenId: 'x' }), { type: 'RESUME_OK', userId: 1, deviceId: 2, expiresAtMs: 3 })
  t.same(resumeReply({ ok: false, code: 'TOKEN_EXPIRED' }), { type: 'LOGIN_FAILED', code: 'TOKEN_EXPIRED' })
})

function replacer(_key: string, value: unknown): unknown {
  return value instanceof Uint8Array ? `hex:${hex(value)}` : value
}
