/**
 * Password hashing with scrypt (node:crypto). The stored string carries its own cost
 * parameters and salt, `scrypt$N$r$p$<salt b64>$<hash b64>`, so the cost can be raised
 * later: verifyPassword reports `needsRehash` when a stored hash is weaker than the
 * current parameters and the login service re-hashes on the next successful login.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto'

export interface ScryptParams {
  /** CPU/memory cost, a power of two. */
  N: number
  r: number
  p: number
}

/** ~100 ms and 32 MiB on a current core: OWASP's floor for scrypt is N=2^17 r=8 p=1 at
 * 128 MiB; we stay at 2^15 so that a login burst does not exhaust server memory. */
export const DEFAULT_SCRYPT_PARAMS: Readonly<ScryptParams> = { N: 1 << 15, r: 8, p: 1 }

const SALT_BYTES = 16
const HASH_BYTES = 32
/** Passwords are UTF-8 after NFC normalization; this bounds the work per attempt. */
export const PASSWORD_MAX_BYTES = 1024

export type PasswordFormatErrorCode = 'PASSWORD_TOO_LONG' | 'MALFORMED_HASH' | 'BAD_PARAMETERS'

export class PasswordFormatError extends Error {
  readonly code: PasswordFormatErrorCode
  constructor(code: PasswordFormatErrorCode, message: string) {
    super(message)
    this.name = 'PasswordFormatError'
    this.code = code
  }
}

const scryptAsync = (password: Buffer, salt: Buffer, params: ScryptParams, keyBytes = HASH_BYTES): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    // maxmem must exceed 128 * N * r (plus slack) or node refuses the parameters.
    const maxmem = 128 * params.N * params.r * 2 + 1024 * 1024
    scrypt(password, salt, keyBytes, { N: params.N, r: params.r, p: params.p, maxmem }, (err, key) => (err ? reject(err) : resolve(key)))
  })

/** What scrypt hashes: the UTF-8 of the NFC form. */
const normalizedBytes = (password: string): Buffer => Buffer.from(password.normalize('NFC'), 'utf8')

/**
 * The one place the byte limit is decided. It applies to the normalized bytes, which can
 * be up to 3x the raw ones (U+0958 is 3 bytes, NFC makes it 6), so a password within the
 * wire limit can still be too long: registration refuses it, login finds it wrong.
 */
export const isPasswordTooLong = (password: string): boolean => normalizedBytes(password).length > PASSWORD_MAX_BYTES

const checkParams = (p: ScryptParams): void => {
  const powerOfTwo = Number.isSafeInteger(p.N) && p.N >= 2 && (p.N & (p.N - 1)) === 0
  if (!powerOfTwo || !(Number.isSafeInteger(p.r) && p.r >= 1 && p.r <= 64) || !(Number.isSafeInteger(p.p) && p.p >= 1 && p.p <= 16)) {
    throw new PasswordFormatError('BAD_PARAMETERS', `bad scrypt parameters N=${p.N} r=${p.r} p=${p.p}`)
  }
}

export const hashPassword = async (password: string, params: ScryptParams = DEFAULT_SCRYPT_PARAMS): Promise<string> => {
  checkParams(params)
  if (isPasswordTooLong(password)) throw new PasswordFormatError('PASSWORD_TOO_LONG', `password longer than ${PASSWORD_MAX_BYTES} bytes after NFC normalization`)
  const salt = randomBytes(SALT_BYTES)
  const hash = await scryptAsync(normalizedBytes(password), salt, params)
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString('base64')}$${hash.toString('base64')}`
}

export interface ParsedHash extends ScryptParams {
  salt: Buffer
  hash: Buffer
}

export const parsePasswordHash = (stored: string): ParsedHash => {
  const parts = stored.split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') throw new PasswordFormatError('MALFORMED_HASH', 'not an scrypt hash string')
  const [N, r, p] = parts.slice(1, 4).map((s) => (/^[0-9]{1,10}$/.test(s) ? Number(s) : NaN))
  const params = { N, r, p }
  checkParams(params)
  const salt = Buffer.from(parts[4], 'base64')
  const hash = Buffer.from(parts[5], 'base64')
  if (salt.length < 8 || hash.length < 16 || hash.length > 64) throw new PasswordFormatError('MALFORMED_HASH', 'salt or hash too short')
  return { ...params, salt, hash }
}

/** True when `stored` is cheaper than `current` in any parameter. */
export const isWeaker = (stored: ScryptParams, current: ScryptParams): boolean =>
  stored.N < current.N || stored.r < current.r || stored.p < current.p

export interface VerifyResult {
  ok: boolean
  /** ok and the stored hash uses weaker parameters than `current`: store a fresh hash. */
  needsRehash: boolean
}

/**
 * Constant-time comparison; a malformed stored hash throws PasswordFormatError. A password
 * too long to have been stored is wrong, after the same scrypt work as any other (over its
 * first PASSWORD_MAX_BYTES bytes), so the answer and its timing say nothing more.
 */
export const verifyPassword = async (password: string, stored: string, current: ScryptParams = DEFAULT_SCRYPT_PARAMS): Promise<VerifyResult> => {
  const parsed = parsePasswordHash(stored)
  const bytes = normalizedBytes(password)
  const tooLong = bytes.length > PASSWORD_MAX_BYTES
  const candidate = await scryptAsync(bytes.subarray(0, PASSWORD_MAX_BYTES), parsed.salt, parsed, parsed.hash.length)
  const ok = timingSafeEqual(candidate, parsed.hash) && !tooLong
  return { ok, needsRehash: ok && isWeaker(parsed, current) }
}
