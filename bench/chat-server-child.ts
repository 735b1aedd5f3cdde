/**
 * The chat server under test, in its own process (started by bench/chat-throughput.ts and
 * bench/chat-capacity.ts through bench/chat-common.ts): startChatServer over the durable
 * SQLite stores (WAL, synchronous FULL) in the given data directory, encryption on, with
 * the handshake limit and messaging limits the parent passes. Answers 'start', 'stats'
 * (memory, CPU, sessions, counters; optionally after forced GC) and 'stop' over IPC.
 */
import { generateStaticKeyPair } from '../src/core/crypto/noise-nk.js'
import { CryptoRng } from '../src/io/crypto-rng.js'
import { createLogger } from '../src/io/logger.js'
import { nodeCryptoBackend } from '../src/io/node-crypto-backend.js'
import { LoginService } from '../src/server/accounts/login.js'
import { SessionTokens, loadOrCreateTokenSecret } from '../src/server/accounts/tokens.js'
import { type ChatServer, type ChatServerOptions, startChatServer } from '../src/server/chat-server.js'
import type { MessagingLimits } from '../src/server/messaging/limits.js'
import { type SqliteStores, openSqliteStores } from '../src/store/sqlite-message-store.js'
import { mkdirSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector'
import { join } from 'node:path'
import { PerformanceObserver, monitorEventLoopDelay } from 'node:perf_hooks'
import { writeHeapSnapshot } from 'node:v8'
import { type ServerStats, serve, udpDrops } from './chat-common.js'

export interface ServerStartArgs {
  dataDir: string
  handshakeLimit: NonNullable<ChatServerOptions['handshakeLimit']>
  limits?: Partial<MessagingLimits>
  commitWindowMs?: number
  /** PRAGMA synchronous; FULL (the default, durable) unless investigating. */
  synchronous?: 'FULL' | 'NORMAL'
}

let inspector: Session | undefined
const post = (method: string, params?: object): Promise<unknown> =>
  new Promise((resolve, reject) => inspector!.post(method, params, (err, result) => (err ? reject(err) : resolve(result))))

let stores: SqliteStores | undefined
let server: ChatServer | undefined

const gc = (): void => {
  const g = (globalThis as { gc?: () => void }).gc
  if (g === undefined) return
  for (let i = 0; i < 3; i++) g()
}

const numbers = (o: object): Record<string, number> =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => typeof v === 'number')) as Record<string, number>

const loopDelay = monitorEventLoopDelay({ resolution: 10 })
loopDelay.enable()
/** GC pauses since the previous stats request. */
let gcMaxMs = 0
let gcTotalMs = 0
let gcOver100Ms = 0
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcTotalMs += e.duration
    if (e.duration > gcMaxMs) gcMaxMs = e.duration
    if (e.duration > 100) gcOver100Ms++
  }
}).observe({ entryTypes: ['gc'] })

const stats = (args: { gc?: boolean }): ServerStats => {
  const loopDelayP99Ms = loopDelay.percentile(99) / 1e6
  const loopDelayMaxMs = loopDelay.max / 1e6
  loopDelay.reset()
  const gcPauses = { maxMs: gcMaxMs, totalMs: gcTotalMs, over100Ms: gcOver100Ms }
  gcMaxMs = gcTotalMs = gcOver100Ms = 0
  if (args.gc === true) gc()
  const mem = process.memoryUsage()
  const cpu = process.cpuUsage()
  return {
    rssBytes: mem.rss,
    // The kernel's high-water mark: a peak between two samples is not missed.
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    heapUsedBytes: mem.heapUsed,
    heapTotalBytes: mem.heapTotal,
    externalBytes: mem.external,
    arrayBuffersBytes: mem.arrayBuffers,
    cpuUserUs: cpu.user,
    cpuSystemUs: cpu.system,
    sessions: server?.endpoint.core.sessionCount ?? 0,
    onlineUsers: server?.messaging.onlineUsers ?? 0,
    messaging: numbers(server?.messaging.stats ?? {}),
    commit: numbers(server?.commit.stats ?? {}),
    io: numbers(server?.endpoint.stats ?? {}),
    core: numbers(server?.endpoint.core.stats ?? {}),
    loopDelayP99Ms,
    loopDelayMaxMs,
    gcPauseMaxMs: gcPauses.maxMs,
    gcPauseTotalMs: gcPauses.totalMs,
    gcPausesOver100Ms: gcPauses.over100Ms,
    socketDrops: server === undefined ? 0 : udpDrops(server.port),
  }
}

serve(
  {
    start: async (a: ServerStartArgs) => {
      const keyPair = generateStaticKeyPair({ rng: new CryptoRng(), backend: nodeCryptoBackend })
      stores = openSqliteStores({ dataDir: a.dataDir, synchronous: a.synchronous ?? 'FULL' })
      const tokens = new SessionTokens({ store: stores.accounts, secret: loadOrCreateTokenSecret(a.dataDir) })
      const login = new LoginService({ store: stores.accounts, tokens })
      server = await startChatServer({
        host: '127.0.0.1',
        port: 0,
        login,
        accounts: stores.accounts,
        messages: stores.messages,
        logger: createLogger({ name: 'bench-server', level: 'warn' }),
        security: { staticKeyPair: keyPair },
        handshakeLimit: a.handshakeLimit,
        limits: a.limits,
        commitWindowMs: a.commitWindowMs,
      })
      return { port: server.port, publicKeyHex: Buffer.from(keyPair.publicKey).toString('hex'), pid: process.pid }
    },
    stats,
    /** Start the V8 CPU profiler (node:inspector), to profile one phase only. */
    profileStart: async () => {
      inspector ??= new Session()
      inspector.connect()
      await post('Profiler.enable')
      await post('Profiler.setSamplingInterval', { interval: 200 })
      await post('Profiler.start')
      return null
    },
    /** Stop it and write the .cpuprofile into `dir`; returns its path (summarise with chat-profile.ts). */
    profileStop: async (a: { dir: string; name: string }) => {
      const { profile } = (await post('Profiler.stop')) as { profile: unknown }
      inspector?.disconnect()
      mkdirSync(a.dir, { recursive: true })
      const path = join(a.dir, `${a.name}-${Date.now()}.cpuprofile`)
      writeFileSync(path, JSON.stringify(profile))
      return path
    },
    /** Write a heap snapshot (after GC) into `dir`; returns its path. */
    heapSnapshot: (a: { dir: string }) => {
      gc()
      mkdirSync(a.dir, { recursive: true })
      return writeHeapSnapshot(join(a.dir, `chat-server-${Date.now()}.heapsnapshot`))
    },
  },
  async () => {
    await server?.close()
    await stores?.close()
  },
)
