/**
 * Session tokens. A token is 81 opaque bytes:
 *
 *   version(1) = 0x01 | tokenId(16, random) | userId(8) | deviceId(8) | issuedAtMs(8)
 *   | expiresAtMs(8) | HMAC-SHA-256(server secret, the 49 bytes before)(32)
 *
 * integers unsigned big-endian. The random id (128 bits from the CSPRNG) makes it
 * unguessable; the MAC makes it unforgeable and lets the server reject garbage and
 * expired tokens without a store lookup; the store record (keyed by the id) makes it
 * revocable. The store never holds the MAC, so a leaked database does not yield tokens.
 * Clients treat the bytes as opaque.
 */
import { createHmac, randomBytes as cryptoRandomBytes, timingSafeEqual } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createFileOnce } from '../../io/durable-file.js'
import type { AccountStore } from '../../store/account-store.js'

export type TokenErrorCode = 'TOKEN_INVALID' | 'TOKEN_EXPIRED' | 'TOKEN_REVOKED'

export class TokenError extends Error {
  readonly code: TokenErrorCode
  constructor(code: TokenErrorCode, message: string) {
    super(message)
    this.name = 'TokenError'
    this.code = code
  }
}

export interface TokenClaims {
  /** Hex of the 16-byte random id; the store's key. */
  tokenId: string
  userId: number
  deviceId: number
  issuedAtMs: number
  expiresAtMs: number
}

export const TOKEN_VERSION = 0x01
export const TOKEN_ID_BYTES = 16
const BODY_BYTES = 1 + TOKEN_ID_BYTES + 4 * 8
const MAC_BYTES = 32
export const TOKEN_BYTES = BODY_BYTES + MAC_BYTES
export const TOKEN_SECRET_BYTES = 32
export const DEFAULT_TOKEN_LIFETIME_MS = 30 * 24 * 3600 * 1000

export interface SessionTokensOptions {
  store: AccountStore
  /** >= 32 bytes; signs new tokens. */
  secret: Uint8Array
  /** Older secrets still accepted (rotation): tokens they signed verify until they expire. */
  previousSecrets?: Uint8Array[]
  lifetimeMs?: number
  /** Injectable for tests; defaults to node:crypto randomBytes. */
  randomBytes?: (n: number) => Uint8Array
}

const writeU64 = (b: Buffer, offset: number, v: number): void => {
  b.writeUInt32BE(Math.floor(v / 2 ** 32), offset)
  b.writeUInt32BE(v >>> 0, offset + 4)
}
const readU64 = (b: Buffer, offset: number): number => b.readUInt32BE(offset) * 2 ** 32 + b.readUInt32BE(offset + 4)

const mac = (secret: Uint8Array, body: Uint8Array): Buffer => createHmac('sha256', secret).update(body).digest()

export class SessionTokens {
  readonly lifetimeMs: number
  private readonly store: AccountStore
  private readonly secrets: Uint8Array[]
  private readonly randomBytes: (n: number) => Uint8Array

  constructor(options: SessionTokensOptions) {
    const all = [options.secret, ...(options.previousSecrets ?? [])]
    for (const s of all) if (s.length < TOKEN_SECRET_BYTES) throw new RangeError(`token secret shorter than ${TOKEN_SECRET_BYTES} bytes`)
    this.secrets = all
    this.store = options.store
    this.lifetimeMs = options.lifetimeMs ?? DEFAULT_TOKEN_LIFETIME_MS
    if (!(this.lifetimeMs > 0)) throw new RangeError('token lifetime must be positive')
    this.randomBytes = options.randomBytes ?? cryptoRandomBytes
  }

  /** Mint a token and record it in the store (so it can be revoked). */
  async issue(args: { userId: number; deviceId: number; nowMs: number }): Promise<{ token: Uint8Array; claims: TokenClaims }> {
    const issuedAtMs = Math.floor(args.nowMs)
    const id = this.randomBytes(TOKEN_ID_BYTES)
    if (id.length !== TOKEN_ID_BYTES) throw new RangeError('randomBytes returned the wrong length')
    const claims: TokenClaims = {
      tokenId: Buffer.from(id).toString('hex'),
      userId: args.userId,
      deviceId: args.deviceId,
      issuedAtMs,
      expiresAtMs: issuedAtMs + this.lifetimeMs,
    }
    const token = Buffer.alloc(TOKEN_BYTES)
    token[0] = TOKEN_VERSION
    token.set(id, 1)
    writeU64(token, 17, claims.userId)
    writeU64(token, 25, claims.deviceId)
    writeU64(token, 33, claims.issuedAtMs)
    writeU64(token, 41, claims.expiresAtMs)
    token.set(mac(this.secrets[0], token.subarray(0, BODY_BYTES)), BODY_BYTES)
    await this.store.insertSessionToken({ ...claims, revokedAtMs: null })
    return { token: new Uint8Array(token), claims }
  }

  /** Check format and MAC only (no expiry, no store). Throws TokenError TOKEN_INVALID. */
  decode(token: Uint8Array): TokenClaims {
    if (token.length !== TOKEN_BYTES || token[0] !== TOKEN_VERSION) throw new TokenError('TOKEN_INVALID', 'malformed token')
    const b = Buffer.from(token.buffer, token.byteOffset, token.length)
    const body = b.subarray(0, BODY_BYTES)
    const tag = b.subarray(BODY_BYTES)
    let good = false
    // Try every secret (no early exit) so timing does not tell which one matched.
    for (const s of this.secrets) good = timingSafeEqual(mac(s, body), tag) || good
    if (!good) throw new TokenError('TOKEN_INVALID', 'token MAC mismatch')
    return {
      tokenId: b.subarray(1, 17).toString('hex'),
      userId: readU64(b, 17),
      deviceId: readU64(b, 25),
      issuedAtMs: readU64(b, 33),
      expiresAtMs: readU64(b, 41),
    }
  }

  /** MAC, expiry, then revocation in the store. Throws TokenError. */
  async verify(args: { token: Uint8Array; nowMs: number }): Promise<TokenClaims> {
    const claims = this.decode(args.token)
    if (args.nowMs >= claims.expiresAtMs) throw new TokenError('TOKEN_EXPIRED', 'token expired')
    const record = await this.store.getSessionToken(claims.tokenId)
    // Missing record: the store was reset or housekeeping removed it; treat as revoked.
    if (!record || record.revokedAtMs !== null) throw new TokenError('TOKEN_REVOKED', 'token revoked')
    if (record.userId !== claims.userId || record.deviceId !== claims.deviceId || record.expiresAtMs !== claims.expiresAtMs) {
      throw new TokenError('TOKEN_INVALID', 'token does not match its record')
    }
    return claims
  }

  /** Revoke a (MAC-valid) token; false if it was already revoked. Throws TOKEN_INVALID. */
  async revoke(args: { token: Uint8Array; nowMs: number }): Promise<boolean> {
    const claims = this.decode(args.token)
    return this.store.revokeToken({ tokenId: claims.tokenId, nowMs: args.nowMs })
  }
}

/** base64url text form, for client state files and logs-free debugging. */
export const tokenToText = (token: Uint8Array): string => Buffer.from(token).toString('base64url')
export const tokenFromText = (text: string): Uint8Array => new Uint8Array(Buffer.from(text.trim(), 'base64url'))

export const TOKEN_SECRET_FILE = 'token-secret.key'

/**
 * The server's token secret, kept next to the database (mode 0600) so tokens survive a
 * restart. Created on first use. Deleting the file invalidates every token.
 */
export const loadOrCreateTokenSecret = (dataDir: string): Uint8Array => {
  const path = join(dataDir, TOKEN_SECRET_FILE)
  // If another process created it meanwhile, read theirs.
  if (!existsSync(path)) createFileOnce({ path, data: cryptoRandomBytes(TOKEN_SECRET_BYTES), mode: 0o600 })
  const secret = readFileSync(path)
  if (secret.length < TOKEN_SECRET_BYTES) throw new RangeError(`${path} holds fewer than ${TOKEN_SECRET_BYTES} bytes`)
  return new Uint8Array(secret)
}
