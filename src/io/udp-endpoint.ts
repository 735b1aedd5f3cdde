import { createSocket, type RemoteInfo, type Socket, type SocketType } from 'node:dgram'
import { lookup as dnsLookup } from 'node:dns'
import { isIP } from 'node:net'
import { randomBytes } from 'node:crypto'
import { appendFileSync } from 'node:fs'
import { AddressLimiter } from '../core/address-limiter.js'
import type { ClientSecurity, ServerSecurity } from '../core/session/secure-handshake.js'
import { nodeCryptoBackend } from './node-crypto-backend.js'
import { EventEmitter, once } from 'node:events'
import { Endpoint, type EndpointEvent } from '../core/endpoint.js'
import { ErrorCode } from '../core/errors.js'
import { type PacketProtection, checksumProtection } from '../core/protection.js'
import type { Rng } from '../core/rng.js'
import type { SessionConfig } from '../core/session/config.js'
import type { SendOptions, Session } from '../core/session/session.js'
import type { TraceSink } from '../core/trace.js'
import { type UdpAddress, formatAddress, socketTypeFor, stripBrackets } from './address.js'
import { type Clock, monotonicClock } from './clock.js'
import { CryptoRng } from './crypto-rng.js'
import { type Logger, silentLogger } from './logger.js'

export interface UdpEndpointOptions {
  /** Local address to bind; an IPv6 literal (`::`, `::1`) opens a udp6 socket, anything else udp4. */
  host: string
  /** 0 picks a free port. */
  port: number
  /** Accept sessions from clients. */
  server: boolean
  sessionConfig?: Partial<SessionConfig>
  /** Protection for each new session; default CRC-32C checksums. */
  protection?: () => PacketProtection
  rng?: Rng
  clock?: Clock
  logger?: Logger
  trace?: TraceSink
  maxSessions?: number
  /** SO_RCVBUF / SO_SNDBUF request (the kernel may cap it). Default 4 MiB. */
  socketBufferBytes?: number
  /** Server: encrypt every session with this static key pair (Noise NK + ChaCha20-Poly1305). */
  security?: ServerSecurity
  /** Server: answer every new client with a RETRY first (stateless address validation). */
  retry?: boolean
  /** Server: new handshakes per client IP (default 20/s, bursts of 40, 100,000 IPs tracked). */
  handshakeLimit?: { ratePerSecond: number; burst: number; maxAddresses: number }
  /** Append SSLKEYLOGFILE-style secrets of every encrypted session here (debugging only). */
  keyLogFile?: string
  /** udp6 only: refuse IPv4-mapped peers (default: dual stack where the OS allows it). */
  ipv6Only?: boolean
}

/** Counters of the I/O layer; the core's own counters are in `core.stats`. */
export interface UdpEndpointStats {
  datagramsReceived: number
  bytesReceived: number
  datagramsSent: number
  bytesSent: number
  sendErrors: number
  socketErrors: number
  /** Exceptions thrown by the core (a bug: the core drops bad input itself). */
  coreErrors: number
  /** Exceptions thrown by an 'event' listener (a bug there): counted, logged, the next event goes on. */
  listenerErrors: number
  timerWakeups: number
}

export type UdpEndpointEvents = { event: [EndpointEvent<UdpAddress>] }

const DEFAULT_SOCKET_BUFFER_BYTES = 4 << 20
const DEFAULT_HANDSHAKE_LIMIT = { ratePerSecond: 20, burst: 40, maxAddresses: 100_000 }

/** Appends key-log lines synchronously (rare: once per handshake; must not be lost on a crash). */
const keyLogWriter = (path: string): ((lines: string) => void) => {
  return (lines) => appendFileSync(path, lines, { mode: 0o600 })
}

/** Remembered peer addresses (one object per address and port) before the cache starts over. */
const ADDRESS_CACHE_LIMIT = 4096

/**
 * A socket whose sends to an IP literal skip dns.lookup. node:dgram resolves the
 * destination of every send on an unconnected socket, and dns.lookup answers even an IP
 * literal on the next tick: a closure and a nextTick hop per datagram. Until the socket
 * is bound, lookups (of the bind address) keep Node's asynchronous behaviour.
 */
const createUdpSocket = (type: SocketType, ipv6Only: boolean): Socket => {
  let bound = false
  // The last literal seen: a client (or a busy peer) sends to the same one again and again.
  let lastHostname = ''
  let lastFamily = 0
  const socket = createSocket({
    type,
    ipv6Only,
    lookup: ((hostname: string, options: unknown, callback: (err: Error | null, address: string, family: number) => void) => {
      if (bound && hostname !== lastHostname) {
        const family = isIP(hostname)
        if (family !== 0) {
          lastHostname = hostname
          lastFamily = family
        }
      }
      if (bound && hostname === lastHostname) callback(null, hostname, lastFamily)
      else dnsLookup(hostname, options as number, callback)
    }) as unknown as typeof dnsLookup,
  })
  socket.once('listening', () => {
    bound = true
  })
  return socket
}

/** setTimeout's largest delay; longer deadlines are re-armed when this one fires. */
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1

/**
 * Drives a sans-IO Endpoint over one node:dgram socket: datagrams in, datagrams out,
 * ONE timer for all sessions, events out as 'event'. A received datagram is answered
 * at once, in its 'message' callback: its events go to the listeners and whatever they
 * queued leaves in the same flush, with no event-loop hop in between (what matters for
 * latency, and what costs CPU per datagram). Application sends made outside a flush are
 * flushed once, on setImmediate, so a burst of sends yields one pass over the core's
 * transmit queue.
 */
export class UdpEndpoint extends EventEmitter<UdpEndpointEvents> {
  readonly core: Endpoint<UdpAddress>
  socket: Socket
  readonly stats: UdpEndpointStats = {
    datagramsReceived: 0,
    bytesReceived: 0,
    datagramsSent: 0,
    bytesSent: 0,
    sendErrors: 0,
    socketErrors: 0,
    coreErrors: 0,
    listenerErrors: 0,
    timerWakeups: 0,
  }
  readonly clock: Clock
  private readonly log: Logger
  private timer: NodeJS.Timeout | undefined
  private timerDeadlineMs: number | undefined
  private flushScheduled = false
  private flushing = false
  private pendingSends = 0
  private sendsDrained: Array<() => void> = []
  private closing: Promise<void> | undefined
  private socketOpen = true
  /** Peer address objects by port (checked against the IP): see addressOf. */
  private readonly addresses = new Map<number, UdpAddress>()

  /** Bind a socket and start driving a new Endpoint over it. */
  static async open(opts: UdpEndpointOptions): Promise<UdpEndpoint> {
    const host = stripBrackets(opts.host)
    const type = socketTypeFor(host)
    const socket = createUdpSocket(type, type === 'udp6' && opts.ipv6Only === true)
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error): void => {
        socket.close()
        reject(err)
      }
      socket.once('error', fail)
      socket.bind(opts.port, host, () => {
        socket.off('error', fail)
        resolve()
      })
    })
    return new UdpEndpoint(socket, opts)
  }

  private constructor(socket: Socket, opts: UdpEndpointOptions) {
    super()
    this.socket = socket
    this.clock = opts.clock ?? monotonicClock
    this.log = opts.logger ?? silentLogger()
    this.core = new Endpoint<UdpAddress>({
      rng: opts.rng ?? new CryptoRng(),
      server: opts.server,
      sessionConfig: opts.sessionConfig,
      trace: opts.trace,
      protection: opts.protection ?? (() => checksumProtection),
      maxSessions: opts.maxSessions,
      security: opts.security === undefined ? undefined : { backend: nodeCryptoBackend, ...opts.security },
      retry: opts.server && opts.retry === true ? { key: new Uint8Array(randomBytes(32)) } : undefined,
      handshakeLimiter: opts.server ? new AddressLimiter(opts.handshakeLimit ?? DEFAULT_HANDSHAKE_LIMIT) : undefined,
      limiterKey: (a: UdpAddress) => a.address,
      keyLog: opts.keyLogFile === undefined ? undefined : keyLogWriter(opts.keyLogFile),
    })
    const bufferBytes = opts.socketBufferBytes ?? DEFAULT_SOCKET_BUFFER_BYTES
    try {
      socket.setRecvBufferSize(bufferBytes)
      socket.setSendBufferSize(bufferBytes)
    } catch (err) {
      this.log.warn({ err, bufferBytes }, 'could not size socket buffers')
    }
    socket.on('message', this.onMessage)
    socket.on('error', (err) => {
      this.stats.socketErrors++
      this.log.warn({ err }, 'socket error')
    })
  }

  /**
   * Move to a fresh socket on a new local port, as a NAT rebinding or a switch of network
   * would; sessions carry on (the server follows after validating the new path).
   */
  async rebind(): Promise<void> {
    const old = this.socket
    const local = old.address()
    const socket = createUdpSocket(local.family === 'IPv6' ? 'udp6' : 'udp4', false)
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject)
      socket.bind(0, local.address, () => {
        socket.off('error', reject)
        resolve()
      })
    })
    socket.on('message', this.onMessage)
    socket.on('error', (err) => {
      this.stats.socketErrors++
      this.log.warn({ err }, 'socket error')
    })
    this.socket = socket
    old.close()
  }

  get localAddress(): UdpAddress {
    const a = this.socket.address()
    return { address: a.address, port: a.port, family: a.family === 'IPv6' ? 'IPv6' : 'IPv4' }
  }

  get isClosing(): boolean {
    return this.closing !== undefined
  }

  /** Open a client session to `to` (an IP address of this socket's family). */
  /** Open a session to `to`; with `security` it is encrypted and pins the server's key. */
  connect(to: UdpAddress, config?: Partial<SessionConfig>, security?: ClientSecurity): Session {
    const pinned = security === undefined ? undefined : { backend: nodeCryptoBackend, ...security }
    const session = this.core.connect(this.clock(), to, config, pinned)
    this.scheduleFlush()
    return session
  }

  /** Queue a message on `session`; it goes out on the next flush. Throws UsageError like Session.send. */
  send(session: Session, streamId: number, data: Uint8Array, opts?: SendOptions): number {
    const seq = session.send(this.clock(), streamId, data, opts)
    this.core.wake(session)
    this.scheduleFlush()
    return seq
  }

  /** Close one session gracefully (CLOSE frame to the peer). */
  closeSession(session: Session, code: number = ErrorCode.NO_ERROR, reason = ''): void {
    session.close(this.clock(), code, reason)
    this.core.wake(session)
    this.scheduleFlush()
  }

  /**
   * Close every session with a CLOSE frame, wait until those datagrams left the socket,
   * then close the socket. Idempotent.
   */
  close(opts: { code?: number; reason?: string } = {}): Promise<void> {
    // Deferred to a microtask so `closing` is set before shutdown emits 'closed' events
    // (whose listeners may call close() again).
    this.closing ??= Promise.resolve().then(() => this.shutdown(opts.code ?? ErrorCode.NO_ERROR, opts.reason ?? ''))
    return this.closing
  }

  private async shutdown(code: number, reason: string): Promise<void> {
    // Called from an event listener: let the running flush finish first.
    while (this.flushing) await new Promise<void>((resolve) => setImmediate(resolve))
    const nowMs = this.clock()
    for (const session of this.core.sessions()) {
      if (!session.isActive()) continue
      session.close(nowMs, code, reason)
      this.core.wake(session)
    }
    this.flush()
    if (this.pendingSends > 0) await new Promise<void>((resolve) => this.sendsDrained.push(resolve))
    this.clearTimer()
    this.socketOpen = false
    const closed = once(this.socket, 'close')
    this.socket.close()
    await closed
  }

  private readonly onMessage = (msg: Buffer, rinfo: RemoteInfo): void => {
    this.stats.datagramsReceived++
    this.stats.bytesReceived += msg.length
    const from = this.addressOf(rinfo)
    try {
      // Node gives every datagram its own backing store, so the core may keep views into it.
      this.core.handleDatagram(this.clock(), new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength), from)
    } catch (err) {
      this.coreFailure('handleDatagram', err, from)
    }
    // Answer in this callback rather than on setImmediate: one event-loop hop and its
    // bookkeeping less per datagram, and the reply leaves before libuv goes back to the
    // socket. Several messages queued by the listeners still share one flush (and so
    // datagrams); only datagrams that arrive together are no longer flushed as a batch.
    this.flush()
  }

  /**
   * The core compares peer addresses by identity first: hand it the same object for the
   * same address and port instead of a new one per datagram.
   */
  private addressOf(rinfo: RemoteInfo): UdpAddress {
    const key = rinfo.port
    const cached = this.addresses.get(key)
    if (cached !== undefined && cached.address === rinfo.address) return cached
    if (this.addresses.size >= ADDRESS_CACHE_LIMIT) this.addresses.clear()
    const from: UdpAddress = { address: rinfo.address, port: rinfo.port, family: rinfo.family === 'IPv6' ? 'IPv6' : 'IPv4' }
    this.addresses.set(key, from)
    return from
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.flushing) return
    this.flushScheduled = true
    setImmediate(this.runScheduledFlush)
  }

  private readonly runScheduledFlush = (): void => {
    this.flushScheduled = false
    this.flush()
  }

  /**
   * Hand the core's events to listeners, send everything the core has (with what the
   * listeners queued: an echo or reply rides in the same datagram as the ACK of what
   * it answers), repeat while sending produced events, re-arm the timer.
   */
  private flush(): void {
    if (this.flushing || !this.socketOpen) return
    this.flushing = true
    try {
      this.emitEvents()
      do this.transmitAll(this.clock())
      while (this.emitEvents())
    } finally {
      this.flushing = false
    }
    this.rearmTimer()
  }

  private transmitAll(nowMs: number): void {
    for (;;) {
      let out
      try {
        out = this.core.pollTransmit(nowMs)
      } catch (err) {
        this.coreFailure('pollTransmit', err)
        return
      }
      if (out === undefined) return
      this.sendDatagram(out.bytes, out.to)
    }
  }

  private sendDatagram(bytes: Uint8Array, to: UdpAddress): void {
    if (!this.socketOpen) return
    // Completion callbacks cost a JS call per datagram; only shutdown needs to know when
    // the last datagrams (the CLOSE frames) have left, so only then do we ask for them.
    const track = this.closing !== undefined
    if (track) this.pendingSends++
    try {
      if (track) this.socket.send(bytes, to.port, to.address, this.onSent)
      else this.socket.send(bytes, to.port, to.address)
    } catch (err) {
      // Node validates synchronously (a peer with source port 0, say): count it, never crash.
      if (track) this.pendingSends--
      this.stats.sendErrors++
      this.log.warn({ err, to: formatAddress(to) }, 'send refused')
      return
    }
    this.stats.datagramsSent++
    this.stats.bytesSent += bytes.length
  }

  private readonly onSent = (err: Error | null): void => {
    this.pendingSends--
    if (err !== null) {
      this.stats.sendErrors++
      this.log.warn({ err }, 'send failed')
    }
    if (this.pendingSends === 0 && this.sendsDrained.length > 0) {
      for (const resolve of this.sendsDrained.splice(0)) resolve()
    }
  }

  /** Returns whether any event was emitted. */
  private emitEvents(): boolean {
    let any = false
    for (;;) {
      const e = this.core.pollEvent()
      if (e === undefined) return any
      any = true
      try {
        this.emit('event', e)
      } catch (err) {
        // One handler's bug must not take the server (and every other session) down.
        this.stats.listenerErrors++
        this.log.error({ err, event: e.event.type }, "an 'event' listener threw; the event is dropped")
      }
    }
  }

  private rearmTimer(): void {
    if (!this.socketOpen) return
    const deadlineMs = this.core.pollTimeout()
    if (deadlineMs === this.timerDeadlineMs) return
    // Deadlines mostly move later (each packet pushes the probe timeout): keep an earlier
    // timer and let it fire — handleTimeout then does nothing and we re-arm — instead of
    // clearing and re-creating a timer for every packet.
    if (deadlineMs !== undefined && this.timerDeadlineMs !== undefined && deadlineMs > this.timerDeadlineMs) return
    this.clearTimer()
    if (deadlineMs === undefined) return
    this.timerDeadlineMs = deadlineMs
    const delayMs = Math.min(MAX_TIMER_DELAY_MS, Math.max(0, Math.ceil(deadlineMs - this.clock())))
    // The socket keeps the process alive; the timer alone should not.
    this.timer = setTimeout(this.onTimer, delayMs).unref()
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    this.timerDeadlineMs = undefined
  }

  private readonly onTimer = (): void => {
    this.timer = undefined
    this.timerDeadlineMs = undefined
    this.stats.timerWakeups++
    try {
      this.core.handleTimeout(this.clock())
    } catch (err) {
      this.coreFailure('handleTimeout', err)
    }
    this.flush()
  }

  private coreFailure(where: string, err: unknown, from?: UdpAddress): void {
    this.stats.coreErrors++
    this.log.error({ err, where, from: from === undefined ? undefined : formatAddress(from) }, 'core threw; input dropped')
  }
}
