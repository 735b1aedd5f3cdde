/** In-memory AccountStore for tests; same semantics as the SQLite store (conformance suite). */
import {
  StoreError,
  checkDeviceName,
  checkUsername,
  normalizeDeviceName,
  type AccountStore,
  type DeviceRecord,
  type SessionTokenRecord,
  type UserRecord,
} from './account-store.js'

export class MemoryAccountStore implements AccountStore {
  private readonly users = new Map<number, UserRecord>()
  private readonly userIdByName = new Map<string, number>()
  private readonly devices = new Map<number, DeviceRecord>()
  private readonly tokens = new Map<string, SessionTokenRecord>()
  private nextUserId = 1
  private nextDeviceId = 1
  private closed = false

  async createUser(args: { username: string; passwordHash: string; nowMs: number }): Promise<UserRecord> {
    this.open()
    checkUsername(args.username)
    if (this.userIdByName.has(args.username)) throw new StoreError('USER_EXISTS', `user ${args.username} exists`)
    const user: UserRecord = { userId: this.nextUserId++, username: args.username, passwordHash: args.passwordHash, createdAtMs: args.nowMs }
    this.users.set(user.userId, user)
    this.userIdByName.set(user.username, user.userId)
    return { ...user }
  }

  async getUserByName(username: string): Promise<UserRecord | undefined> {
    this.open()
    const id = this.userIdByName.get(username)
    return id === undefined ? undefined : copy(this.users.get(id))
  }

  async getUserById(userId: number): Promise<UserRecord | undefined> {
    this.open()
    return copy(this.users.get(userId))
  }

  async listUsers(): Promise<UserRecord[]> {
    this.open()
    return [...this.users.values()].sort((a, b) => a.userId - b.userId).map((u) => ({ ...u }))
  }

  async setPassword(args: { userId: number; passwordHash: string }): Promise<void> {
    this.open()
    const user = this.users.get(args.userId)
    if (!user) throw new StoreError('UNKNOWN_USER', `no user ${args.userId}`)
    user.passwordHash = args.passwordHash
  }

  async replacePasswordHash(args: { userId: number; expectedPasswordHash: string; passwordHash: string }): Promise<boolean> {
    this.open()
    const user = this.users.get(args.userId)
    if (!user || user.passwordHash !== args.expectedPasswordHash) return false
    user.passwordHash = args.passwordHash
    return true
  }

  async createDevice(args: { userId: number; name: string; nowMs: number }): Promise<DeviceRecord> {
    this.open()
    const name = checkDeviceName(args.name)
    if (!this.users.has(args.userId)) throw new StoreError('UNKNOWN_USER', `no user ${args.userId}`)
    // No await between this check and the insert, or two concurrent creates both pass it.
    if (this.findDevice({ userId: args.userId, name })) throw new StoreError('DEVICE_EXISTS', `device ${name} exists`)
    const device: DeviceRecord = { deviceId: this.nextDeviceId++, userId: args.userId, name, createdAtMs: args.nowMs, lastSeenAtMs: args.nowMs }
    this.devices.set(device.deviceId, device)
    return { ...device }
  }

  async getDevice(deviceId: number): Promise<DeviceRecord | undefined> {
    this.open()
    return copy(this.devices.get(deviceId))
  }

  async getDeviceByName(args: { userId: number; name: string }): Promise<DeviceRecord | undefined> {
    this.open()
    return copy(this.findDevice(args))
  }

  async listDevices(userId: number): Promise<DeviceRecord[]> {
    this.open()
    return [...this.devices.values()].filter((d) => d.userId === userId).sort((a, b) => a.deviceId - b.deviceId).map((d) => ({ ...d }))
  }

  async touchDevice(args: { deviceId: number; nowMs: number }): Promise<void> {
    this.open()
    const d = this.devices.get(args.deviceId)
    if (!d) throw new StoreError('UNKNOWN_DEVICE', `no device ${args.deviceId}`)
    d.lastSeenAtMs = args.nowMs
  }

  async insertSessionToken(record: SessionTokenRecord): Promise<void> {
    this.open()
    if (this.tokens.has(record.tokenId)) throw new StoreError('TOKEN_EXISTS', 'token id exists')
    if (!this.users.has(record.userId)) throw new StoreError('UNKNOWN_USER', `no user ${record.userId}`)
    const d = this.devices.get(record.deviceId)
    if (!d || d.userId !== record.userId) throw new StoreError('UNKNOWN_DEVICE', `no device ${record.deviceId} for user ${record.userId}`)
    this.tokens.set(record.tokenId, { ...record })
  }

  async getSessionToken(tokenId: string): Promise<SessionTokenRecord | undefined> {
    this.open()
    return copy(this.tokens.get(tokenId))
  }

  async revokeToken(args: { tokenId: string; nowMs: number }): Promise<boolean> {
    this.open()
    const t = this.tokens.get(args.tokenId)
    if (!t || t.revokedAtMs !== null) return false
    t.revokedAtMs = args.nowMs
    return true
  }

  async revokeAllForUser(args: { userId: number; nowMs: number }): Promise<number> {
    this.open()
    let n = 0
    for (const t of this.tokens.values()) {
      if (t.userId === args.userId && t.revokedAtMs === null && t.expiresAtMs > args.nowMs) {
        t.revokedAtMs = args.nowMs
        n++
      }
    }
    return n
  }

  async listActiveTokens(args: { userId: number; nowMs: number }): Promise<SessionTokenRecord[]> {
    this.open()
    return [...this.tokens.values()]
      .filter((t) => t.userId === args.userId && t.revokedAtMs === null && t.expiresAtMs > args.nowMs)
      .sort((a, b) => a.issuedAtMs - b.issuedAtMs || (a.tokenId < b.tokenId ? -1 : 1))
      .map((t) => ({ ...t }))
  }

  async deleteExpiredTokens(args: { beforeMs: number }): Promise<number> {
    this.open()
    let n = 0
    for (const [id, t] of this.tokens) {
      if (t.expiresAtMs < args.beforeMs) {
        this.tokens.delete(id)
        n++
      }
    }
    return n
  }

  async close(): Promise<void> {
    this.closed = true
  }

  /** Stored names are NFC (createDevice); the one looked for is normalized here. */
  private findDevice(args: { userId: number; name: string }): DeviceRecord | undefined {
    const name = normalizeDeviceName(args.name)
    for (const d of this.devices.values()) if (d.userId === args.userId && d.name === name) return d
    return undefined
  }

  private open(): void {
    if (this.closed) throw new StoreError('STORE_CLOSED', 'store is closed')
  }
}

const copy = <T extends object>(v: T | undefined): T | undefined => (v === undefined ? undefined : { ...v })
