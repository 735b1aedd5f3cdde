/**
 * The login service the session layer calls after the secure handshake: login with a
 * password, resume with a session token, logout, admin kick, and (optionally open)
 * registration. It never reveals whether a user exists: an unknown user and a wrong
 * password both answer WRONG_CREDENTIALS after the same scrypt work (a dummy hash).
 */
import { randomBytes } from 'node:crypto'
import type { AuthFailureCode } from '../../protocol/login-messages.js'
import { StoreError, isValidDeviceName, isValidUsername, type AccountStore } from '../../store/account-store.js'
import { DEFAULT_SCRYPT_PARAMS, PASSWORD_MAX_BYTES, hashPassword, isPasswordTooLong, verifyPassword, type ScryptParams } from './password.js'
import { TokenBucketLimiter, addressKey, type TokenBucketOptions } from './rate-limit.js'
import { TokenError, type SessionTokens, type TokenClaims } from './tokens.js'

/** Every failure the login family can answer; the type and its wire codes live in the protocol module. */
export type { AuthFailureCode }

export interface AuthFailure {
  ok: false
  code: AuthFailureCode
  /** Set with RATE_LIMITED: when one more attempt would be allowed. */
  retryAfterMs?: number
}

export interface LoginOk {
  ok: true
  token: Uint8Array
  userId: number
  deviceId: number
  expiresAtMs: number
}

export interface ResumeOk {
  ok: true
  userId: number
  deviceId: number
  username: string
  expiresAtMs: number
  /** Hex id of the token: the key to pass to `logout` or to watch for revocation. */
  tokenId: string
}

export interface LoginRequest {
  username: string
  password: string
  deviceName: string
  /** Client IP (no port), for the per-address limit. */
  address: string
  nowMs: number
}

export interface LoginServiceOptions {
  store: AccountStore
  tokens: SessionTokens
  /** Parameters for new hashes; weaker stored hashes are upgraded on login. */
  scryptParams?: ScryptParams
  /** Allow `register()` (the server's --open-registration flag). Default false. */
  openRegistration?: boolean
  minPasswordLength?: number
  maxDevicesPerUser?: number
  /** Attempts (login and register) per client address. Default burst 20, +1 per 3 s, 100k addresses. */
  perAddress?: TokenBucketOptions
  /** Failed logins per username (known or not): every attempt takes one before hashing, a
   * successful one gives it back. Default burst 10, +1 per 60 s, 100k names. */
  perUser?: TokenBucketOptions
  /** Called after kick() revoked tokens, so the session layer can close live sessions. */
  onKick?: (event: { userId: number; revokedTokens: number }) => void
}

export const DEFAULT_PER_ADDRESS: TokenBucketOptions = { capacity: 20, refillIntervalMs: 3000, maxKeys: 100_000 }
export const DEFAULT_PER_USER: TokenBucketOptions = { capacity: 10, refillIntervalMs: 60_000, maxKeys: 100_000 }

export class LoginService {
  readonly openRegistration: boolean
  private readonly store: AccountStore
  private readonly tokens: SessionTokens
  private readonly params: ScryptParams
  private readonly minPasswordLength: number
  private readonly maxDevicesPerUser: number
  private readonly perAddress: TokenBucketLimiter
  private readonly perUser: TokenBucketLimiter
  private readonly onKick: LoginServiceOptions['onKick']
  private dummyHash: Promise<string> | undefined

  constructor(options: LoginServiceOptions) {
    this.store = options.store
    this.tokens = options.tokens
    this.params = options.scryptParams ?? DEFAULT_SCRYPT_PARAMS
    this.openRegistration = options.openRegistration ?? false
    this.minPasswordLength = options.minPasswordLength ?? 8
    this.maxDevicesPerUser = options.maxDevicesPerUser ?? 32
    this.perAddress = new TokenBucketLimiter(options.perAddress ?? DEFAULT_PER_ADDRESS)
    this.perUser = new TokenBucketLimiter(options.perUser ?? DEFAULT_PER_USER)
    this.onKick = options.onKick
  }

  async login(req: LoginRequest): Promise<LoginOk | AuthFailure> {
    if (!isWellFormed(req)) return fail('INVALID_REQUEST')
    const byAddress = this.perAddress.take(addressKey(req.address), req.nowMs)
    if (!byAddress.ok) return fail('RATE_LIMITED', byAddress.retryAfterMs)
    // Keyed by the name as typed, known or not, so the limit itself reveals nothing. Taken
    // before the (slow, async) hash: checking first and charging a failure afterwards let
    // any number of parallel guesses through the check before the first was charged.
    const byUser = this.perUser.take(req.username, req.nowMs)
    if (!byUser.ok) return fail('RATE_LIMITED', byUser.retryAfterMs)

    const user = isValidUsername(req.username) ? await this.store.getUserByName(req.username) : undefined
    const verdict = await verifyPassword(req.password, user ? user.passwordHash : await this.dummy(), this.params)
    if (!user || !verdict.ok) return fail('WRONG_CREDENTIALS')
    // The hash verified may have been replaced while scrypt ran (admin passwd): the session
    // must only start if it is still the stored one.
    let verifiedHash = user.passwordHash
    if (verdict.needsRehash) {
      const upgradedHash = await hashPassword(req.password, this.params)
      // Compare-and-set: an unconditional write would put the old password back.
      if (!(await this.store.replacePasswordHash({ userId: user.userId, expectedPasswordHash: verifiedHash, passwordHash: upgradedHash }))) {
        return fail('WRONG_CREDENTIALS')
      }
      verifiedHash = upgradedHash
    }
    const started = await this.startSession({ userId: user.userId, deviceName: req.deviceName, nowMs: req.nowMs })
    if (!(await this.stillCurrent(user.userId, verifiedHash))) {
      // Changed while we worked, perhaps after our token was stored: take the token back.
      if (started.ok) await this.tokens.revoke({ token: started.token, nowMs: req.nowMs })
      return fail('WRONG_CREDENTIALS')
    }
    // The limit counts failed guesses; the right password gives its attempt back.
    this.perUser.giveBack(req.username, req.nowMs)
    return started
  }

  /** Create an account and log it in; refused unless openRegistration. */
  async register(req: LoginRequest): Promise<LoginOk | AuthFailure> {
    if (!this.openRegistration) return fail('REGISTRATION_CLOSED')
    // A password that only NFC makes too long gets the same answer as any too-long one.
    if (!isWellFormed(req) || isPasswordTooLong(req.password)) return fail('INVALID_REQUEST')
    if (!isValidUsername(req.username)) return fail('INVALID_USERNAME')
    if ([...req.password.normalize('NFC')].length < this.minPasswordLength) return fail('WEAK_PASSWORD')
    const byAddress = this.perAddress.take(addressKey(req.address), req.nowMs)
    if (!byAddress.ok) return fail('RATE_LIMITED', byAddress.retryAfterMs)
    let userId: number
    try {
      const passwordHash = await hashPassword(req.password, this.params)
      userId = (await this.store.createUser({ username: req.username, passwordHash, nowMs: req.nowMs })).userId
    } catch (err) {
      if (err instanceof StoreError && err.code === 'USER_EXISTS') return fail('USER_EXISTS')
      throw err
    }
    return this.startSession({ userId, deviceName: req.deviceName, nowMs: req.nowMs })
  }

  /** A client that restarted (or a new session) presents its token instead of a password. */
  async resume(req: { token: Uint8Array; nowMs: number }): Promise<ResumeOk | AuthFailure> {
    let claims: TokenClaims
    try {
      claims = await this.tokens.verify(req)
    } catch (err) {
      if (err instanceof TokenError) return fail(err.code)
      throw err
    }
    const user = await this.store.getUserById(claims.userId)
    if (!user) return fail('TOKEN_REVOKED')
    await this.store.touchDevice({ deviceId: claims.deviceId, nowMs: req.nowMs })
    return { ok: true, userId: claims.userId, deviceId: claims.deviceId, username: user.username, expiresAtMs: claims.expiresAtMs, tokenId: claims.tokenId }
  }

  /** Revoke this token. An already revoked token is not an error (logout is idempotent). */
  async logout(req: { token: Uint8Array; nowMs: number }): Promise<{ ok: true } | AuthFailure> {
    try {
      await this.tokens.revoke(req)
      return { ok: true }
    } catch (err) {
      if (err instanceof TokenError) return fail(err.code)
      throw err
    }
  }

  /** Admin kick: revoke every token of the user; live sessions are closed via onKick. */
  async kick(req: { userId: number; nowMs: number }): Promise<{ revokedTokens: number }> {
    const revokedTokens = await this.store.revokeAllForUser(req)
    this.onKick?.({ userId: req.userId, revokedTokens })
    return { revokedTokens }
  }

  /** The store matches device names in NFC: "café" composed or decomposed is one device. */
  private async startSession(args: { userId: number; deviceName: string; nowMs: number }): Promise<LoginOk | AuthFailure> {
    let device = await this.store.getDeviceByName({ userId: args.userId, name: args.deviceName })
    if (!device) {
      if ((await this.store.listDevices(args.userId)).length >= this.maxDevicesPerUser) return fail('TOO_MANY_DEVICES')
      try {
        device = await this.store.createDevice({ userId: args.userId, name: args.deviceName, nowMs: args.nowMs })
      } catch (err) {
        // Two concurrent first logins from the same device name: use the winner's row.
        if (!(err instanceof StoreError && err.code === 'DEVICE_EXISTS')) throw err
        device = await this.store.getDeviceByName({ userId: args.userId, name: args.deviceName })
        if (!device) throw err
      }
    } else {
      await this.store.touchDevice({ deviceId: device.deviceId, nowMs: args.nowMs })
    }
    const { token, claims } = await this.tokens.issue({ userId: args.userId, deviceId: device.deviceId, nowMs: args.nowMs })
    return { ok: true, token, userId: args.userId, deviceId: device.deviceId, expiresAtMs: claims.expiresAtMs }
  }

  /**
   * Checked after the token is stored. `admin passwd` stores the new hash and then revokes
   * every token: if we still see the verified hash here, our token was stored before the
   * new hash, hence before the revocation, which covers it.
   */
  private async stillCurrent(userId: number, verifiedHash: string): Promise<boolean> {
    return (await this.store.getUserById(userId))?.passwordHash === verifiedHash
  }

  /** A hash of a random password with the current parameters: unknown users cost the same. */
  private dummy(): Promise<string> {
    this.dummyHash ??= hashPassword(randomBytes(16).toString('hex'), this.params)
    return this.dummyHash
  }
}

/**
 * The request's shape as the wire decoder enforces it (raw UTF-8 bytes of the password);
 * the device name's limit is on its NFC form, the one the store keeps and matches.
 */
const isWellFormed = (req: LoginRequest): boolean =>
  typeof req.password === 'string' && Buffer.byteLength(req.password) <= PASSWORD_MAX_BYTES && isValidDeviceName(req.deviceName)

const fail = (code: AuthFailureCode, retryAfterMs?: number): AuthFailure =>
  retryAfterMs === undefined ? { ok: false, code } : { ok: false, code, retryAfterMs }
