/**
 * The UDP side of the tool: one listen socket for all clients and, per client, its own
 * upstream socket (its "NAT mapping"), so the server sees one source port per client.
 * Each datagram goes through the LossyLink decision engine; deliveries due now are
 * sent at once, later ones wait in the shared Scheduler (one timer for everything).
 *
 * NAT behaviour, per mapping:
 * - rebinding: every `rebindEveryMs` the mapping gets a new upstream socket, so the
 *   client's apparent source port changes; the old port is closed (late replies to it
 *   are lost, as with a real NAT);
 * - binding timeout: after `bindingTimeoutMs` of outbound silence, inbound datagrams
 *   are dropped (reason `nat-timeout`) and the next outbound datagram gets a new port.
 */
import { createSocket, type Socket } from 'node:dgram'
import { EventEmitter } from 'node:events'
import { isIPv6 } from 'node:net'
import type { Logger } from 'pino'
import type { Delivery } from '../../src/sim/models/index.js'
import type { ProxyCapture } from './capture.js'
import type { Direction, NatConfig } from './config.js'
import type { Endpoint } from './ip.js'
import type { LinkResult, LossyLink } from './link.js'
import type { Scheduler, TaskHandle } from './scheduler.js'
import { closeQuietly, dropComment, isLoopback, isUnspecified, literalLookup, sendComment, summarize } from './udp-util.js'
import type { HostPort } from './units.js'

export interface UdpProxyOptions {
  listen: HostPort
  /** An IP address (resolve names before). */
  upstream: HostPort
  link: LossyLink
  scheduler: Scheduler
  logger: Logger
  nat?: NatConfig
  capture?: ProxyCapture
  /** Mappings silent this long are closed (default 5 min). */
  idleTimeoutMs?: number
  /** SO_RCVBUF / SO_SNDBUF for every socket (default 4 MiB: bursts at 50k+ pkt/s). */
  socketBufferBytes?: number
}

export type RebindReason = 'timer' | 'nat-timeout' | 'api'

interface Binding {
  socket: Socket
  local: Endpoint | undefined
  pending: Uint8Array[] | undefined
}

interface Mapping {
  key: string
  client: Endpoint
  /** Our listen address as this client sees it (for captures). */
  listenFacing: Endpoint
  binding: Binding
  createdAtMs: number
  boundAtMs: number
  lastOutboundMs: number
  lastInboundMs: number
  rebinds: number
  rebindTask: TaskHandle | undefined
  closed: boolean
}

interface Pending {
  mapping: Mapping
  delivery: Delivery
  arrivedMs: number
}

const MAX_PENDING_BEFORE_CONNECT = 256

export class UdpProxy extends EventEmitter {
  private readonly options: UdpProxyOptions
  private readonly link: LossyLink
  private readonly scheduler: Scheduler
  private readonly log: Logger
  private readonly traceEnabled: boolean
  private listenSocket: Socket | undefined
  private listenAddress: Endpoint | undefined
  private readonly mappings = new Map<string, Mapping>()
  private nat: NatConfig
  private readonly upstreamEndpoint: Endpoint
  private sweepTask: TaskHandle | undefined
  private closed = false
  mappingsCreated = 0

  constructor(options: UdpProxyOptions) {
    super()
    this.options = options
    this.link = options.link
    this.scheduler = options.scheduler
    this.log = options.logger
    this.traceEnabled = this.log.isLevelEnabled('trace')
    this.nat = { ...options.nat }
    this.upstreamEndpoint = { address: options.upstream.host, port: options.upstream.port }
  }

  private get now(): number {
    return this.scheduler.clock.now()
  }

  async start(): Promise<Endpoint> {
    const { listen } = this.options
    const socket = createSocket({ type: isIPv6(listen.host) ? 'udp6' : 'udp4', lookup: literalLookup as never })
    this.listenSocket = socket
    socket.on('message', (msg, rinfo) => this.onClientDatagram(msg, rinfo.address, rinfo.port))
    socket.on('error', (err) => this.log.warn({ err }, 'listen socket error'))
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject)
      socket.bind(listen.port, listen.host, () => {
        socket.off('error', reject)
        resolve()
      })
    })
    this.setBuffers(socket)
    const a = socket.address()
    this.listenAddress = { address: a.address, port: a.port }
    this.scheduleSweep()
    return this.listenAddress
  }

  get address(): Endpoint | undefined {
    return this.listenAddress
  }

  private setBuffers(socket: Socket): void {
    const size = this.options.socketBufferBytes ?? 4 << 20
    try {
      socket.setRecvBufferSize(size)
      socket.setSendBufferSize(size)
    } catch (err) {
      this.log.debug({ err }, 'could not enlarge socket buffers')
    }
  }

  // ---- client -> server ----

  private onClientDatagram(msg: Buffer, address: string, port: number): void {
    const now = this.now
    const key = `${address}|${port}`
    let mapping = this.mappings.get(key)
    if (!mapping) mapping = this.createMapping(key, { address, port }, now)
    else if (this.nat.bindingTimeoutMs !== undefined && now - mapping.lastOutboundMs > this.nat.bindingTimeoutMs) {
      // The NAT forgot this flow: a new outbound datagram creates a new binding (new port).
      this.rebind(mapping, 'nat-timeout')
    }
    mapping.lastOutboundMs = now
    const result = this.link.process('up', now, msg)
    this.options.capture?.record('client', 'inbound', mapping.client, mapping.listenFacing, msg, dropComment(result))
    this.dispatch('up', mapping, result, now)
  }

  // ---- server -> client ----

  private onServerDatagram(mapping: Mapping, binding: Binding, msg: Buffer): void {
    if (mapping.closed || binding !== mapping.binding) return
    const now = this.now
    mapping.lastInboundMs = now
    let result: LinkResult
    if (this.nat.bindingTimeoutMs !== undefined && now - mapping.lastOutboundMs > this.nat.bindingTimeoutMs) {
      this.link.recordDrop('down', msg, 'nat-timeout')
      result = { dropped: 'nat-timeout' }
    } else {
      result = this.link.process('down', now, msg)
    }
    if (binding.local) this.options.capture?.record('server', 'inbound', this.upstreamEndpoint, binding.local, msg, dropComment(result))
    this.dispatch('down', mapping, result, now)
  }

  private dispatch(direction: Direction, mapping: Mapping, result: LinkResult, now: number): void {
    if (this.traceEnabled) this.log.trace({ direction, client: mapping.key, result: summarize(result) }, 'datagram')
    if (this.listenerCount('decision') > 0) this.emit('decision', { direction, client: mapping.client, result })
    if (result.dropped !== undefined) return
    const limit = now + this.scheduler.clock.toleranceMs
    for (const delivery of result.deliveries) {
      if (delivery.atMs <= limit) this.send(direction, mapping, delivery, now, now)
      else this.scheduler.at(delivery.atMs, direction === 'up' ? this.sendUpLater : this.sendDownLater, { mapping, delivery, arrivedMs: now })
    }
  }

  private sendUpLater = (p: Pending): void => this.send('up', p.mapping, p.delivery, p.arrivedMs, this.now)
  private sendDownLater = (p: Pending): void => this.send('down', p.mapping, p.delivery, p.arrivedMs, this.now)

  private send(direction: Direction, mapping: Mapping, delivery: Delivery, arrivedMs: number, now: number): void {
    if (mapping.closed || this.closed) return
    const bytes = delivery.bytes
    const capture = this.options.capture
    if (direction === 'up') {
      const binding = mapping.binding
      if (binding.pending) {
        if (binding.pending.length >= MAX_PENDING_BEFORE_CONNECT) {
          this.link.stats.up.dropped['send-error']++
          return
        }
        binding.pending.push(bytes)
      } else {
        binding.socket.send(bytes)
        if (capture && binding.local) capture.record('server', 'outbound', binding.local, this.upstreamEndpoint, bytes, sendComment(delivery))
      }
    } else {
      this.listenSocket!.send(bytes, mapping.client.port, mapping.client.address)
      capture?.record('client', 'outbound', mapping.listenFacing, mapping.client, bytes, sendComment(delivery))
    }
    const planned = delivery.atMs > arrivedMs ? now - delivery.atMs : undefined
    this.link.recordSent(direction, now - arrivedMs, planned)
  }

  // ---- mappings and NAT ----

  private createMapping(key: string, client: Endpoint, now: number): Mapping {
    const listen = this.listenAddress!
    const listenFacing = isUnspecified(listen.address)
      ? { address: isLoopback(client.address) ? (client.address.includes(':') && !client.address.startsWith('::ffff:') ? '::1' : '127.0.0.1') : listen.address, port: listen.port }
      : listen
    const mapping: Mapping = {
      key, client, listenFacing, binding: undefined as unknown as Binding, createdAtMs: now, boundAtMs: now,
      lastOutboundMs: now, lastInboundMs: now, rebinds: 0, rebindTask: undefined, closed: false,
    }
    mapping.binding = this.openBinding(mapping)
    this.mappings.set(key, mapping)
    this.mappingsCreated++
    this.scheduleRebind(mapping)
    this.log.info({ client: `${client.address}:${client.port}` }, 'new client mapping')
    return mapping
  }

  private openBinding(mapping: Mapping): Binding {
    const upstream = this.options.upstream
    const socket = createSocket({ type: isIPv6(upstream.host) ? 'udp6' : 'udp4', lookup: literalLookup as never })
    const binding: Binding = { socket, local: undefined, pending: [] }
    socket.on('message', (msg) => this.onServerDatagram(mapping, binding, msg))
    // ICMP port unreachable from a server that is not up yet shows here; keep going.
    socket.on('error', (err) => this.log.debug({ err, client: mapping.key }, 'upstream socket error'))
    socket.connect(upstream.port, upstream.host, () => {
      if (mapping.closed || binding !== mapping.binding) return
      this.setBuffers(socket)
      const a = socket.address()
      binding.local = { address: a.address, port: a.port }
      const pending = binding.pending ?? []
      binding.pending = undefined
      for (const bytes of pending) {
        socket.send(bytes)
        this.options.capture?.record('server', 'outbound', binding.local, this.upstreamEndpoint, bytes)
      }
      this.emit('bound', { client: mapping.client, port: a.port, rebinds: mapping.rebinds })
    })
    return binding
  }

  private rebind(mapping: Mapping, reason: RebindReason): void {
    if (mapping.closed) return
    const old = mapping.binding
    const oldPort = old.local?.port
    mapping.binding = this.openBinding(mapping)
    // Datagrams waiting for the old socket to connect move to the new one.
    if (old.pending && mapping.binding.pending) mapping.binding.pending.push(...old.pending)
    closeQuietly(old.socket)
    mapping.rebinds++
    mapping.boundAtMs = this.now
    this.scheduleRebind(mapping)
    this.log.info({ client: mapping.key, oldPort, reason }, 'NAT rebinding')
    mapping.binding.socket.once('connect', () => {
      this.emit('rebind', { client: mapping.client, oldPort, newPort: mapping.binding.local?.port, reason })
    })
  }

  private scheduleRebind(mapping: Mapping): void {
    mapping.rebindTask?.cancel()
    mapping.rebindTask = undefined
    const every = this.nat.rebindEveryMs
    if (every === undefined) return
    mapping.rebindTask = this.scheduler.at(mapping.boundAtMs + every, (m: Mapping) => this.rebind(m, 'timer'), mapping)
  }

  /** Force a NAT rebinding now (all clients, or the one given as "address:port"). */
  rebindNow(client?: string): number {
    let n = 0
    for (const m of this.mappings.values()) {
      if (client && `${m.client.address}:${m.client.port}` !== client) continue
      this.rebind(m, 'api')
      n++
    }
    return n
  }

  setNat(nat: NatConfig): void {
    this.nat = { ...nat }
    for (const m of this.mappings.values()) this.scheduleRebind(m)
  }

  get natConfig(): NatConfig {
    return { ...this.nat }
  }

  private scheduleSweep(): void {
    const idleMs = this.options.idleTimeoutMs ?? 300_000
    this.sweepTask = this.scheduler.at(this.now + Math.min(idleMs / 2, 30_000), () => {
      const now = this.now
      for (const m of this.mappings.values()) {
        if (now - Math.max(m.lastOutboundMs, m.lastInboundMs) > idleMs) this.closeMapping(m, 'idle')
      }
      this.scheduleSweep()
    }, undefined)
  }

  private closeMapping(m: Mapping, reason: string): void {
    m.closed = true
    m.rebindTask?.cancel()
    closeQuietly(m.binding.socket)
    this.mappings.delete(m.key)
    this.log.info({ client: m.key, reason }, 'client mapping closed')
  }

  clients() {
    const now = this.now
    return [...this.mappings.values()].map((m) => ({
      client: `${m.client.address}:${m.client.port}`,
      upstreamPort: m.binding.local?.port ?? null,
      rebinds: m.rebinds,
      ageMs: Math.round(now - m.createdAtMs),
      idleOutboundMs: Math.round(now - m.lastOutboundMs),
      idleInboundMs: Math.round(now - m.lastInboundMs),
      natBindingExpired: this.nat.bindingTimeoutMs !== undefined && now - m.lastOutboundMs > this.nat.bindingTimeoutMs,
    }))
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.sweepTask?.cancel()
    for (const m of [...this.mappings.values()]) this.closeMapping(m, 'shutdown')
    const s = this.listenSocket
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()))
  }
}
