/**
 * The whole messaging stack on the core's simulated network: a server endpoint with the
 * real SessionAuthenticator, MessagingService and GroupCommit over in-memory stores, and
 * devices that each run a core client endpoint and a ChatClientCore. Virtual time,
 * seeded randomness: the same seed replays the same run.
 *
 * The stores and services are async; every async step here completes in microtasks
 * (memory stores, the group commit scheduled on virtual time), so the loop drains them
 * after each simulated event with one setImmediate and the run stays deterministic.
 */
import { Endpoint, type EndpointEvent } from '../../src/core/endpoint.js'
import { ErrorCode } from '../../src/core/errors.js'
import { sendableMessageBytes } from '../../src/core/session/sizing.js'
import { checksumProtection } from '../../src/core/protection.js'
import type { SessionConfig } from '../../src/core/session/config.js'
import type { Session } from '../../src/core/session/session.js'
import { EndpointNode } from '../../src/sim/endpoint-node.js'
import type { ImpairmentConfig } from '../../src/sim/models/index.js'
import { SimNetwork } from '../../src/sim/network.js'
import { ChatClientCore, type MessageEntry, type ReceiptEntry } from '../../src/client/chat-core.js'
import { MemoryClientState } from '../../src/client/client-state.js'
import { decodeLoginMessage, encodeLoginMessage, isLoginMessage } from '../../src/protocol/login-messages.js'
import { CONTROL_STREAM, SessionAuthenticator, type SessionIo } from '../../src/io/session-auth.js'
import { silentLogger } from '../../src/io/logger.js'
import { LoginService } from '../../src/server/accounts/login.js'
import { SessionTokens } from '../../src/server/accounts/tokens.js'
import { type ChatLink, MessagingService } from '../../src/server/messaging/service.js'
import type { MessagingLimits } from '../../src/server/messaging/limits.js'
import { MemoryAccountStore } from '../../src/store/memory-account-store.js'
import { MemoryMessageStore } from '../../src/store/memory-message-store.js'
import { GroupCommit } from '../../src/store/group-commit.js'

const SERVER = 'server'
const drain = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

export interface ChatSimOptions {
  seed: number
  /** Applied to both directions of every device <-> server link. */
  impairment?: ImpairmentConfig
  sessionConfig?: Partial<SessionConfig>
  limits?: Partial<MessagingLimits>
  /** Group-commit window in virtual ms. */
  commitWindowMs?: number
}

/** One device of one user: a client endpoint, its session and a ChatClientCore. */
export class SimDevice {
  readonly received: MessageEntry[] = []
  readonly receipts: ReceiptEntry[] = []
  readonly state = new MemoryClientState()
  core!: ChatClientCore
  endpoint: Endpoint<string> | undefined
  session: Session | undefined
  online = false
  connects = 0

  constructor(
    readonly sim: ChatSim,
    readonly username: string,
    readonly userId: number,
    readonly deviceName: string,
    readonly token: Uint8Array,
  ) {}

  get address(): string {
    return `${this.username}/${this.deviceName}#${this.connects}`
  }
}

export class ChatSim {
  readonly net: SimNetwork
  readonly accounts = new MemoryAccountStore()
  readonly store: MemoryMessageStore
  readonly commit: GroupCommit
  readonly messaging: MessagingService
  readonly server: Endpoint<string>
  readonly devices: SimDevice[] = []
  private readonly tokens: SessionTokens
  private readonly auth: SessionAuthenticator
  private readonly links = new Map<Session, ChatLink>()
  private readonly opts: ChatSimOptions
  private readonly wallStartMs = Date.UTC(2026, 10, 22)
  private readonly userIds = new Map<string, number>()

  constructor(opts: ChatSimOptions) {
    this.opts = opts
    this.net = new SimNetwork({ seed: opts.seed })
    this.store = new MemoryMessageStore({ accounts: this.accounts })
    const schedule = (fn: () => void, delayMs: number): void => this.net.at(this.net.nowMs + delayMs, () => fn())
    this.commit = new GroupCommit({ store: this.store, windowMs: opts.commitWindowMs ?? 1, schedule })
    const log = silentLogger()
    this.tokens = new SessionTokens({ store: this.accounts, secret: new Uint8Array(32).fill(7), randomBytes: (n) => this.randomBytes('tokens', n) })
    const login = new LoginService({ store: this.accounts, tokens: this.tokens })
    this.messaging = new MessagingService({ store: this.store, accounts: this.accounts, commit: this.commit, log, limits: opts.limits, nowMs: () => this.wallMs() })
    this.server = new Endpoint<string>({ rng: this.net.rngFor(SERVER), server: true, sessionConfig: opts.sessionConfig, protection: () => checksumProtection })
    const io: SessionIo = {
      send: (session, streamId, data) => {
        const seq = session.send(this.net.nowMs, streamId, data)
        this.server.wake(session)
        this.net.nodeWake(SERVER)
        return seq
      },
      closeSession: (session, code, reason) => {
        session.close(this.net.nowMs, code, reason)
        this.server.wake(session)
        this.net.nodeWake(SERVER)
      },
    }
    this.auth = new SessionAuthenticator({
      service: login,
      io,
      log,
      nowMs: () => this.wallMs(),
      onAuthenticated: (session, a) => {
        const link: ChatLink = {
          userId: a.userId,
          deviceId: a.deviceId,
          traceId: session.traceId,
          maxMessageBytes: sendableMessageBytes(session),
          send: (bytes) => {
            if (!session.isActive()) return false
            io.send(session, CONTROL_STREAM, bytes)
            return true
          },
        }
        this.links.set(session, link)
        this.messaging.attach(link)
      },
      onDeauthenticated: (session) => {
        const link = this.links.get(session)
        if (link === undefined) return
        this.links.delete(session)
        this.messaging.detach(link)
      },
    })
    this.net.addNode(SERVER, new EndpointNode(this.server, (_t, e) => this.onServerEvent(e)))
  }

  wallMs(): number {
    return this.wallStartMs + Math.floor(this.net.nowMs)
  }

  private readonly rngs = new Map<string, ReturnType<SimNetwork['rngFor']>>()
  private randomBytes(label: string, n: number): Uint8Array {
    let rng = this.rngs.get(label)
    if (rng === undefined) this.rngs.set(label, (rng = this.net.rngFor(label)))
    const out = new Uint8Array(n)
    rng.fillBytes(out)
    return out
  }

  private onServerEvent(e: EndpointEvent<string>): void {
    const ev = e.event
    if (ev.type === 'message') {
      this.auth.onMessage(e.session, e.address, ev.streamId, ev.data, (session, streamId, data) => {
        const link = this.links.get(session)
        if (streamId === CONTROL_STREAM && link !== undefined) this.messaging.handle(link, data)
      })
    } else if (ev.type === 'closed') this.auth.forget(e.session)
  }

  async addUser(username: string): Promise<number> {
    const u = await this.accounts.createUser({ username, passwordHash: 'scrypt$unused', nowMs: this.wallMs() })
    this.userIds.set(username, u.userId)
    return u.userId
  }

  userId(username: string): number {
    const id = this.userIds.get(username)
    if (id === undefined) throw new Error(`no user ${username}`)
    return id
  }

  /** A device with a session token (issued directly: the sim does not spend time on scrypt). */
  async addDevice(username: string, deviceName: string): Promise<SimDevice> {
    const userId = this.userId(username)
    const device = await this.accounts.createDevice({ userId, name: deviceName, nowMs: this.wallMs() })
    const { token } = await this.tokens.issue({ userId, deviceId: device.deviceId, nowMs: this.wallMs() })
    const d = new SimDevice(this, username, userId, deviceName, token)
    d.core = new ChatClientCore({
      send: (bytes) => {
        if (d.session === undefined || d.endpoint === undefined || !d.session.isActive()) throw new Error('offline')
        d.session.send(this.net.nowMs, CONTROL_STREAM, bytes)
        d.endpoint.wake(d.session)
        this.net.nodeWake(d.address)
      },
      state: d.state,
      randomBytes: (n) => this.randomBytes(`device:${username}/${deviceName}`, n),
      nowMs: () => this.wallMs(),
      schedule: (fn, delayMs) => {
        let cancelled = false
        this.net.at(this.net.nowMs + delayMs, () => {
          if (!cancelled) fn()
        })
        return () => {
          cancelled = true
        }
      },
    })
    d.core.on('message', (entry) => d.received.push(entry))
    d.core.on('receipt', (entry) => d.receipts.push(entry))
    this.devices.push(d)
    return d
  }

  /** Bring the device online: a new endpoint at a new address, RESUME with its token. */
  connect(d: SimDevice): void {
    if (d.online) return
    d.connects++
    d.online = true
    const address = d.address
    const endpoint = new Endpoint<string>({ rng: this.net.rngFor(address), server: false, sessionConfig: this.opts.sessionConfig, protection: () => checksumProtection })
    d.endpoint = endpoint
    this.net.addNode(address, new EndpointNode(endpoint, (_t, e) => this.onDeviceEvent(d, endpoint, e)))
    if (this.opts.impairment !== undefined) this.net.setDuplexLink(address, SERVER, this.opts.impairment)
    d.session = endpoint.connect(this.net.nowMs, SERVER, this.opts.sessionConfig)
    this.net.nodeWake(address)
  }

  /** Take the device off the network at once (its session is not closed: the server finds out by itself). */
  disconnect(d: SimDevice): void {
    if (!d.online) return
    d.online = false
    this.net.removeNode(d.address)
    d.endpoint = undefined
    d.session = undefined
    d.core.onDisconnected()
  }

  private onDeviceEvent(d: SimDevice, endpoint: Endpoint<string>, e: EndpointEvent<string>): void {
    if (d.endpoint !== endpoint) return // an old incarnation
    const ev = e.event
    if (ev.type === 'connected') {
      e.session.send(this.net.nowMs, CONTROL_STREAM, encodeLoginMessage({ type: 'RESUME', token: d.token }))
      endpoint.wake(e.session)
      this.net.nodeWake(d.address)
    } else if (ev.type === 'message' && ev.streamId === CONTROL_STREAM) {
      if (isLoginMessage(ev.data)) {
        const reply = decodeLoginMessage(ev.data)
        if (reply.type !== 'RESUME_OK') throw new Error(`${d.address}: resume refused: ${JSON.stringify(reply)}`)
        d.core.onConnected({ userId: reply.userId, deviceId: reply.deviceId })
      } else d.core.handleMessage(ev.data)
    } else if (ev.type === 'closed') {
      // The session died (dead link at heavy loss): come back on a fresh session.
      const old = d.address
      this.net.at(this.net.nowMs, () => this.net.removeNode(old))
      d.online = false
      d.endpoint = undefined
      d.session = undefined
      d.core.onDisconnected()
      this.net.at(this.net.nowMs + 500, () => this.connect(d))
    }
  }

  /** Run until `done()` holds (checked after each drained event) or virtual `maxMs` passes; returns done(). */
  async runUntil(done: () => boolean, maxMs: number): Promise<boolean> {
    const endMs = this.net.nowMs + maxMs
    await drain()
    while (!done()) {
      if (this.net.nowMs > endMs) return false
      if (!this.net.step()) {
        await drain()
        if (!this.net.step()) return done()
      }
      await drain()
    }
    return true
  }

  /** Close every session (used at the end of a test). */
  async shutdown(): Promise<void> {
    for (const d of this.devices) if (d.session?.isActive()) d.session.close(this.net.nowMs, ErrorCode.NO_ERROR, 'done')
    await this.commit.close()
  }
}
