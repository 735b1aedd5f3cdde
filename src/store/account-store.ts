/**
 * The account store: users, devices and session tokens. An interface so that the embedded
 * SQLite store, the in-memory test store and a later Redis store pass the same conformance
 * suite (test/store/conformance.ts). Methods are async because a networked store will be.
 *
 * Times are milliseconds since the Unix epoch, passed in by the caller (never read here).
 */

export type StoreErrorCode =
  | 'USER_EXISTS'
  | 'UNKNOWN_USER'
  | 'UNKNOWN_DEVICE'
  | 'DEVICE_EXISTS'
  | 'TOKEN_EXISTS'
  | 'INVALID_USERNAME'
  | 'INVALID_ARGUMENT'
  | 'STORE_CLOSED'

export class StoreError extends Error {
  readonly code: StoreErrorCode
  constructor(code: StoreErrorCode, message: string) {
    super(message)
    this.name = 'StoreError'
    this.code = code
  }
}

export interface UserRecord {
  /** Never reused, even after a user is removed, so stale tokens can never name a new user. */
  userId: number
  username: string
  /** Self-describing hash string, see src/server/accounts/password.ts. */
  passwordHash: string
  createdAtMs: number
}

export interface DeviceRecord {
  deviceId: number
  userId: number
  /** Unique per user, in NFC (normalizeDeviceName); a login with a known name reuses the
   * device (and its sync cursor later), however the client composed its accents. */
  name: string
  createdAtMs: number
  lastSeenAtMs: number
}

export interface SessionTokenRecord {
  /** Hex of the token's random id (the MAC'd token itself is never stored). */
  tokenId: string
  userId: number
  deviceId: number
  issuedAtMs: number
  expiresAtMs: number
  /** null while valid; set by logout, kick or password change. */
  revokedAtMs: number | null
}

export interface AccountStore {
  createUser(args: { username: string; passwordHash: string; nowMs: number }): Promise<UserRecord>
  getUserByName(username: string): Promise<UserRecord | undefined>
  getUserById(userId: number): Promise<UserRecord | undefined>
  /** Ordered by userId. */
  listUsers(): Promise<UserRecord[]>
  /** Throws UNKNOWN_USER. */
  setPassword(args: { userId: number; passwordHash: string }): Promise<void>
  /**
   * Compare-and-set: store passwordHash only if the stored hash is still expectedPasswordHash
   * (a login upgrading a weak hash must not undo a concurrent password change). False if it
   * is not, or the user is unknown.
   */
  replacePasswordHash(args: { userId: number; expectedPasswordHash: string; passwordHash: string }): Promise<boolean>

  /** Names are compared and stored in NFC (normalizeDeviceName). Throws UNKNOWN_USER,
   * DEVICE_EXISTS, INVALID_ARGUMENT. */
  createDevice(args: { userId: number; name: string; nowMs: number }): Promise<DeviceRecord>
  getDevice(deviceId: number): Promise<DeviceRecord | undefined>
  getDeviceByName(args: { userId: number; name: string }): Promise<DeviceRecord | undefined>
  /** Ordered by deviceId. */
  listDevices(userId: number): Promise<DeviceRecord[]>
  /** Throws UNKNOWN_DEVICE. */
  touchDevice(args: { deviceId: number; nowMs: number }): Promise<void>

  /** Throws TOKEN_EXISTS, UNKNOWN_USER, UNKNOWN_DEVICE. */
  insertSessionToken(record: SessionTokenRecord): Promise<void>
  getSessionToken(tokenId: string): Promise<SessionTokenRecord | undefined>
  /** Returns false if unknown or already revoked. */
  revokeToken(args: { tokenId: string; nowMs: number }): Promise<boolean>
  /** Revokes every still-valid token of the user; returns how many. */
  revokeAllForUser(args: { userId: number; nowMs: number }): Promise<number>
  /** Tokens of the user that are neither revoked nor expired at nowMs, by issuedAtMs. */
  listActiveTokens(args: { userId: number; nowMs: number }): Promise<SessionTokenRecord[]>
  /** Housekeeping: forget tokens that expired before `beforeMs`; returns how many. */
  deleteExpiredTokens(args: { beforeMs: number }): Promise<number>

  close(): Promise<void>
}

/** Lower-case ASCII letters, digits, `_ . -`; starts with a letter or digit; 1..32 chars. */
export const USERNAME_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,31}$/
export const DEVICE_NAME_MAX_BYTES = 64

export const isValidUsername = (username: string): boolean => USERNAME_PATTERN.test(username)

export const checkUsername = (username: string): void => {
  if (!isValidUsername(username)) {
    throw new StoreError('INVALID_USERNAME', `invalid username ${JSON.stringify(username)}: use 1-32 of a-z 0-9 _ . - (starting with a letter or digit)`)
  }
}

/**
 * The one form a device name is stored and looked up in: NFC, so that "café" typed with
 * U+00E9 or with "e" + U+0301 is one device (SQLite's UNIQUE compares bytes). Stores apply
 * it in createDevice and getDeviceByName, the only ways a name reaches the devices.
 */
export const normalizeDeviceName = (name: string): string => name.normalize('NFC')

/** Non-empty, at most DEVICE_NAME_MAX_BYTES of UTF-8 after NFC (what is stored), no control characters. */
export const isValidDeviceName = (name: string): boolean => {
  const normalized = normalizeDeviceName(name)
  return normalized.length > 0 && Buffer.byteLength(normalized, 'utf8') <= DEVICE_NAME_MAX_BYTES && !/[\u0000-\u001f\u007f]/.test(normalized)
}

/** The name as stored (NFC); throws INVALID_ARGUMENT if it is not a valid device name. */
export const checkDeviceName = (name: string): string => {
  if (!isValidDeviceName(name)) {
    throw new StoreError('INVALID_ARGUMENT', `invalid device name ${JSON.stringify(name)}: use 1-${DEVICE_NAME_MAX_BYTES} bytes of UTF-8 (after NFC) without control characters`)
  }
  return normalizeDeviceName(name)
}
