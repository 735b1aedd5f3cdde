import { Endpoint, type EndpointEvent } from '../../src/core/endpoint.js'
import type { KeyPair } from '../../src/core/crypto/noise-nk.js'
import { checksumProtection, type PacketProtection } from '../../src/core/protection.js'
import type { SessionConfig } from '../../src/core/session/config.js'
import type { SessionEvent } from '../../src/core/session/events.js'
import type { Session } from '../../src/core/session/session.js'
import type { ClientSecurity } from '../../src/core/session/secure-handshake.js'
import type { TraceSink } from '../../src/core/trace.js'
import { EndpointNode } from '../../src/sim/endpoint-node.js'
import type { ImpairmentConfig } from '../../src/sim/models/index.js'
import { SimNetwork } from '../../src/sim/network.js'

export interface Received {
  atMs: number
  streamId: number
  seq: number
  data: Uint8Array
}

export interface PairOptions {
  seed: number
  /** client -> server impairment */
  up?: ImpairmentConfig
  /** server -> client impairment */
  down?: ImpairmentConfig
  sessionConfig?: Partial<SessionConfig>
  /** Client-only settings on top of sessionConfig (keepalives are a client's business). */
  clientSessionConfig?: Partial<SessionConfig>
  protection?: PacketProtection
  trace?: TraceSink
  /** Encrypt: the server's key pair, and the key the client pins (default: the right one). */
  secure?: { serverKeyPair: KeyPair; pinnedServerKey?: Uint8Array; keyUpdateAfterPackets?: number; keyUpdateAfterMs?: number }
  /** Server answers new clients with a RETRY first (stateless address validation). */
  retry?: { key: Uint8Array }
}

/** A client and a server endpoint on the simulated network, with their events recorded. */
export class SimPair {
  readonly net: SimNetwork
  readonly client: Endpoint<string>
  readonly server: Endpoint<string>
  /** The client's current session (a new one after connectRetrying had to start over). */
  clientSession: Session
  serverSession: Session | undefined
  readonly clientEvents: Array<{ atMs: number; event: SessionEvent }> = []
  readonly serverEvents: Array<{ atMs: number; event: SessionEvent }> = []
  /** Messages received by the server / client. */
  readonly atServer: Received[] = []
  readonly atClient: Received[] = []
  /** What the client pins (for sessions connectRetrying opens). */
  private readonly pinned: ClientSecurity | undefined

  constructor(opts: PairOptions) {
    this.net = new SimNetwork({ seed: opts.seed })
    const protection = (): PacketProtection => opts.protection ?? checksumProtection
    const security = opts.secure === undefined ? undefined : { staticKeyPair: opts.secure.serverKeyPair, keyUpdateAfterPackets: opts.secure.keyUpdateAfterPackets, keyUpdateAfterMs: opts.secure.keyUpdateAfterMs }
    this.server = new Endpoint<string>({ rng: this.net.rngFor('server'), server: true, sessionConfig: opts.sessionConfig, protection, trace: opts.trace, security, retry: opts.retry })
    const clientConfig = opts.clientSessionConfig === undefined ? opts.sessionConfig : { ...opts.sessionConfig, ...opts.clientSessionConfig }
    this.client = new Endpoint<string>({ rng: this.net.rngFor('client'), server: false, sessionConfig: clientConfig, protection, trace: opts.trace })
    this.net.addNode('server', new EndpointNode(this.server, (t, e) => this.onServerEvent(t, e)))
    this.net.addNode('client', new EndpointNode(this.client, (t, e) => this.onClientEvent(t, e)))
    if (opts.up) this.net.setLink('client', 'server', opts.up)
    if (opts.down) this.net.setLink('server', 'client', opts.down)
    const pinned =
      opts.secure === undefined
        ? undefined
        : { serverStaticPublicKey: opts.secure.pinnedServerKey ?? opts.secure.serverKeyPair.publicKey, keyUpdateAfterPackets: opts.secure.keyUpdateAfterPackets, keyUpdateAfterMs: opts.secure.keyUpdateAfterMs }
    this.pinned = pinned
    this.clientSession = this.client.connect(this.net.nowMs, 'server', undefined, pinned)
    this.net.nodeWake('client')
  }

  private onServerEvent(atMs: number, e: EndpointEvent<string>): void {
    if (e.event.type === 'accepted') {
      this.serverSession = e.session
      return
    }
    if (e.event.type === 'address_changed') return
    this.serverEvents.push({ atMs, event: e.event })
    if (e.event.type === 'message') this.atServer.push({ atMs, streamId: e.event.streamId, seq: e.event.seq, data: e.event.data })
  }

  private onClientEvent(atMs: number, e: EndpointEvent<string>): void {
    if (e.event.type === 'accepted' || e.event.type === 'address_changed') return
    this.clientEvents.push({ atMs, event: e.event })
    if (e.event.type === 'message') this.atClient.push({ atMs, streamId: e.event.streamId, seq: e.event.seq, data: e.event.data })
  }

  /** From now on, keep a copy of every datagram the client sends (for replay / tamper tests). */
  captureClientDatagrams(): Uint8Array[] {
    const captured: Uint8Array[] = []
    const poll = this.client.pollTransmit.bind(this.client)
    this.client.pollTransmit = (nowMs: number) => {
      const out = poll(nowMs)
      if (out !== undefined) captured.push(out.bytes.slice())
      return out
    }
    return captured
  }

  /** Run until the client is connected (or fail after limitMs of virtual time). */
  connect(limitMs = 60_000): boolean {
    return this.net.runUntil({ untilMs: this.net.nowMs + limitMs, predicate: () => this.connected })
  }

  /**
   * connect(), as the client library does it: an attempt that dies before its handshake
   * completes (dead link: at extreme loss every HELLO of deadLinkTimeoutMs can be lost)
   * is followed by a fresh session, until limitMs of virtual time.
   */
  connectRetrying(limitMs = 60_000): boolean {
    const untilMs = this.net.nowMs + limitMs
    while (this.net.runUntil({ untilMs, predicate: () => this.connected || !this.clientSession.isActive() })) {
      if (this.connected) return true
      this.clientSession = this.client.connect(this.net.nowMs, 'server', undefined, this.pinned)
      this.net.nodeWake('client')
    }
    return false
  }

  private get connected(): boolean {
    return this.clientSession.isEstablished && this.serverSession?.isEstablished === true
  }

  /** Queue a message from the client at the current virtual time. */
  clientSend(streamId: number, data: Uint8Array, expiresAtMs?: number): number {
    const seq = this.clientSession.send(this.net.nowMs, streamId, data, { expiresAtMs })
    this.client.wake(this.clientSession)
    this.net.nodeWake('client')
    return seq
  }

  serverSend(streamId: number, data: Uint8Array, expiresAtMs?: number): number {
    const s = this.serverSession!
    const seq = s.send(this.net.nowMs, streamId, data, { expiresAtMs })
    this.server.wake(s)
    this.net.nodeWake('server')
    return seq
  }

  eventsOf(side: 'client' | 'server', type: SessionEvent['type']): Array<{ atMs: number; event: SessionEvent }> {
    return (side === 'client' ? this.clientEvents : this.serverEvents).filter((e) => e.event.type === type)
  }
}
