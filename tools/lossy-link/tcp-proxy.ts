/**
 * TCP relay mode (toxiproxy-like) for pigeon's TCP fallback path. Per connection, two
 * pipes (up = client -> server, down = server -> client); each pipe keeps an ordered
 * queue of segments with release times computed from the bandwidth limit, the delay
 * and its jitter (never reordering bytes). Only the head of each pipe sits in the
 * shared Scheduler, so a busy relay still uses one timer.
 *
 * Stalls hold data (the connection stays up), resets send RST both ways, the black
 * hole swallows bytes without closing anything (a half-open connection).
 */
import { EventEmitter } from 'node:events'
import { createServer, connect, type Server, type Socket } from 'node:net'
import type { Logger } from 'pino'
import type { Rng } from '../../src/core/rng.js'
import type { Direction } from './config.js'
import type { Endpoint } from './ip.js'
import { inPeriodic } from './schema.js'
import type { Scheduler, TaskHandle } from './scheduler.js'
import type { TcpConfig, TcpDirectionConfig } from './tcp-config.js'
import type { HostPort } from './units.js'

export interface TcpProxyOptions {
  listen: HostPort
  upstream: HostPort
  scheduler: Scheduler
  logger: Logger
  config: TcpConfig
  /** For jitter; seeded so runs repeat. */
  rng: Rng
}

/** Bytes queued in one pipe before we stop reading from its source (backpressure). */
const HIGH_WATER_BYTES = 1 << 20
const LOW_WATER_BYTES = 256 << 10
/** Segment size when a rate limit applies, so bandwidth is released smoothly. */
const SEGMENT_BYTES = 1460

interface Segment { atMs: number; bytes: Buffer }

class TcpDirectionStats {
  bytesIn = 0
  bytesOut = 0
  bytesSwallowed = 0
  stallsHit = 0
}

class Pipe {
  readonly queue: Segment[] = []
  queuedBytes = 0
  lastTxEndMs = 0
  lastReleaseMs = 0
  task: TaskHandle | undefined
  taskAtMs = Infinity
  srcEnded = false
  pausedForQueue = false
  waitingDrain = false
  constructor(readonly conn: Connection, readonly direction: Direction, readonly src: Socket, readonly dst: Socket) {}
}

interface Connection {
  id: number
  client: Socket
  server: Socket
  up: Pipe
  down: Pipe
  openedAtMs: number
  bytes: number
  resetTask: TaskHandle | undefined
  closed: boolean
}

export class TcpProxy extends EventEmitter {
  private readonly options: TcpProxyOptions
  private readonly scheduler: Scheduler
  private readonly log: Logger
  private config: TcpConfig
  private server: Server | undefined
  private readonly connections = new Set<Connection>()
  private nextId = 1
  /** On-demand stall per direction: until this time (Infinity = until unstall). */
  private stalledUntil: Record<Direction, number> = { up: 0, down: 0 }
  stats = { opened: 0, resets: 0, up: new TcpDirectionStats(), down: new TcpDirectionStats() }

  constructor(options: TcpProxyOptions) {
    super()
    this.options = options
    this.scheduler = options.scheduler
    this.log = options.logger
    this.config = structuredClone(options.config)
  }

  private get now(): number {
    return this.scheduler.clock.now()
  }

  async start(): Promise<Endpoint> {
    const server = createServer({ allowHalfOpen: true }, (client) => this.onConnection(client))
    this.server = server
    server.on('error', (err) => this.log.warn({ err }, 'tcp listen error'))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.options.listen.port, this.options.listen.host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    const a = server.address()
    if (a === null || typeof a === 'string') throw new Error('tcp proxy: no address')
    return { address: a.address, port: a.port }
  }

  private onConnection(client: Socket): void {
    const { upstream } = this.options
    const server = connect({ host: upstream.host, port: upstream.port, allowHalfOpen: true })
    client.setNoDelay(true)
    server.setNoDelay(true)
    const conn = { id: this.nextId++, client, server, openedAtMs: this.now, bytes: 0, resetTask: undefined, closed: false } as Connection
    conn.up = new Pipe(conn, 'up', client, server)
    conn.down = new Pipe(conn, 'down', server, client)
    this.connections.add(conn)
    this.stats.opened++
    this.log.info({ conn: conn.id, client: `${client.remoteAddress}:${client.remotePort}` }, 'tcp connection')
    for (const pipe of [conn.up, conn.down]) {
      pipe.src.on('data', (chunk: Buffer) => this.onData(pipe, chunk))
      pipe.src.on('end', () => {
        pipe.srcEnded = true
        this.flush(pipe)
      })
      pipe.dst.on('drain', () => {
        pipe.waitingDrain = false
        this.flush(pipe)
      })
    }
    const onError = (side: string) => (err: NodeJS.ErrnoException) => {
      this.log.debug({ conn: conn.id, side, code: err.code }, 'tcp socket error')
      // A reset from one peer is passed on as a reset to the other.
      this.teardown(conn, err.code === 'ECONNRESET')
    }
    client.on('error', onError('client'))
    server.on('error', onError('server'))
    client.on('close', () => this.teardown(conn, false))
    server.on('close', () => this.teardown(conn, false))
    if (this.config.resetAfterMs !== undefined) {
      conn.resetTask = this.scheduler.at(conn.openedAtMs + this.config.resetAfterMs, (c: Connection) => this.reset(c, 'after-ms'), conn)
    }
    this.emit('connection', { id: conn.id })
  }

  private dirConfig(direction: Direction): TcpDirectionConfig {
    return this.config[direction]
  }

  private onData(pipe: Pipe, chunk: Buffer): void {
    const stats = this.stats[pipe.direction]
    stats.bytesIn += chunk.length
    if (this.listenerCount('data') > 0) this.emit('data', { direction: pipe.direction, bytes: chunk.length })
    const conn = pipe.conn
    if (this.config.blackhole) {
      stats.bytesSwallowed += chunk.length
      return
    }
    conn.bytes += chunk.length
    const cfg = this.dirConfig(pipe.direction)
    const now = this.now
    const rate = cfg.rateBitsPerSecond
    const step = rate ? SEGMENT_BYTES : chunk.length
    for (let off = 0; off < chunk.length; off += step) {
      const bytes = chunk.subarray(off, Math.min(chunk.length, off + step))
      let txEnd = now
      if (rate) {
        txEnd = Math.max(now, pipe.lastTxEndMs) + (bytes.length * 8000) / rate
        pipe.lastTxEndMs = txEnd
      }
      let delay = cfg.delayMs ?? 0
      if (cfg.jitterMs) delay = Math.max(0, delay + (this.options.rng.nextFloat() * 2 - 1) * cfg.jitterMs)
      const atMs = Math.max(txEnd + delay, pipe.lastReleaseMs)
      pipe.lastReleaseMs = atMs
      pipe.queue.push({ atMs, bytes })
      pipe.queuedBytes += bytes.length
    }
    if (pipe.queuedBytes > HIGH_WATER_BYTES && !pipe.pausedForQueue) {
      pipe.pausedForQueue = true
      pipe.src.pause()
    }
    if (this.config.resetAfterBytes !== undefined && conn.bytes >= this.config.resetAfterBytes) {
      this.reset(conn, 'after-bytes')
      return
    }
    this.flush(pipe)
  }

  /** End of the stall covering `now` in this direction, or undefined if not stalled. */
  private stallEnd(direction: Direction, now: number): number | undefined {
    if (this.stalledUntil[direction] > now) return this.stalledUntil[direction]
    const cfg = this.dirConfig(direction)
    if (cfg.stallEvery && inPeriodic(cfg.stallEvery, now)) {
      const { periodMs, durationMs, offsetMs = 0 } = cfg.stallEvery
      return offsetMs + Math.floor((now - offsetMs) / periodMs) * periodMs + durationMs
    }
    for (const w of cfg.stalls ?? []) if (now >= w.startMs && now < w.startMs + w.durationMs) return w.startMs + w.durationMs
    return undefined
  }

  private flush = (pipe: Pipe): void => {
    pipe.task = undefined
    pipe.taskAtMs = Infinity
    const conn = pipe.conn
    if (conn.closed || pipe.waitingDrain) return
    const now = this.now
    const stalled = this.stallEnd(pipe.direction, now)
    if (stalled !== undefined) {
      if (pipe.queue.length > 0) {
        this.stats[pipe.direction].stallsHit++
        if (stalled !== Infinity) this.arm(pipe, stalled)
      }
      return
    }
    const limit = now + this.scheduler.clock.toleranceMs
    const stats = this.stats[pipe.direction]
    while (pipe.queue.length > 0 && pipe.queue[0].atMs <= limit) {
      const seg = pipe.queue.shift()!
      pipe.queuedBytes -= seg.bytes.length
      stats.bytesOut += seg.bytes.length
      if (!pipe.dst.write(seg.bytes)) {
        pipe.waitingDrain = true
        break
      }
    }
    if (pipe.pausedForQueue && pipe.queuedBytes < LOW_WATER_BYTES) {
      pipe.pausedForQueue = false
      pipe.src.resume()
    }
    if (pipe.queue.length > 0) {
      if (!pipe.waitingDrain) this.arm(pipe, pipe.queue[0].atMs)
    } else if (pipe.srcEnded && !pipe.dst.writableEnded) {
      pipe.dst.end()
    }
  }

  private arm(pipe: Pipe, atMs: number): void {
    if (pipe.task && pipe.taskAtMs <= atMs) return
    pipe.task?.cancel()
    pipe.taskAtMs = atMs
    pipe.task = this.scheduler.at(atMs, this.flush, pipe)
  }

  private reset(conn: Connection, reason: string): void {
    if (conn.closed) return
    this.stats.resets++
    this.log.info({ conn: conn.id, reason }, 'tcp reset')
    this.emit('reset', { id: conn.id, reason })
    this.teardown(conn, true)
  }

  private teardown(conn: Connection, withReset: boolean): void {
    if (conn.closed) return
    conn.closed = true
    conn.resetTask?.cancel()
    conn.up.task?.cancel()
    conn.down.task?.cancel()
    this.connections.delete(conn)
    for (const s of [conn.client, conn.server]) {
      if (s.destroyed) continue
      if (withReset && typeof s.resetAndDestroy === 'function' && s.readyState !== 'opening') s.resetAndDestroy()
      else s.destroy()
    }
  }

  /** Reset every open connection now (RST both ways). */
  resetAll(): number {
    const all = [...this.connections]
    for (const c of all) this.reset(c, 'api')
    return all.length
  }

  /** Hold data in these directions for durationMs (or until unstall). */
  stall(directions: readonly Direction[], durationMs?: number): void {
    const until = durationMs === undefined ? Infinity : this.now + durationMs
    for (const d of directions) this.stalledUntil[d] = until
    if (durationMs !== undefined) {
      for (const c of this.connections) for (const d of directions) if (c[d].queue.length) this.arm(c[d], until)
    }
  }

  unstall(directions: readonly Direction[]): void {
    for (const d of directions) this.stalledUntil[d] = 0
    for (const c of this.connections) for (const d of directions) this.flush(c[d])
  }

  setConfig(config: TcpConfig): void {
    this.config = structuredClone(config)
    for (const c of this.connections) for (const d of ['up', 'down'] as const) this.flush(c[d])
  }

  get currentConfig(): TcpConfig {
    return structuredClone(this.config)
  }

  state() {
    const now = this.now
    return {
      config: this.currentConfig,
      connections: this.connections.size,
      stalled: { up: this.stallEnd('up', now) !== undefined, down: this.stallEnd('down', now) !== undefined },
      stats: {
        opened: this.stats.opened,
        resets: this.stats.resets,
        up: { ...this.stats.up },
        down: { ...this.stats.down },
      },
    }
  }

  resetStats(): void {
    this.stats = { opened: 0, resets: 0, up: new TcpDirectionStats(), down: new TcpDirectionStats() }
  }

  async close(): Promise<void> {
    for (const c of [...this.connections]) this.teardown(c, false)
    const server = this.server
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()))
  }
}
