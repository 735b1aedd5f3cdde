/**
 * Shared by the chat benchmarks (bench/chat-throughput.ts, bench/chat-capacity.ts) and
 * their child processes (bench/chat-server-child.ts, bench/chat-client-child.ts,
 * bench/chat-echo-child.ts): spawning a child with an IPC channel, a small
 * request/response protocol over it, and the database setup (users, devices and session
 * tokens written through the stores in one transaction, so no scrypt login is needed).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, fsyncSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SessionTokens, loadOrCreateTokenSecret } from '../src/server/accounts/tokens.js'
import { hashPassword } from '../src/server/accounts/password.js'
import { openSqliteStores } from '../src/store/sqlite-message-store.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
/** Run from source (tsx) or compiled (dist/, `npm run bench`): the children follow suit. */
const FROM_SOURCE = import.meta.url.endsWith('.ts')

export type ChildName = 'chat-server-child' | 'chat-client-child' | 'chat-echo-child'

// ---- IPC: requests { id, type, args } answered by { id, ok, result | error } ----------

interface Request {
  id: number
  type: string
  args: unknown
}
interface Reply {
  id: number
  ok: boolean
  result?: unknown
  error?: string
}
/** Unsolicited progress lines a child may send: { event, ... }. */
export interface ChildEvent {
  event: string
  [key: string]: unknown
}

export class Child {
  readonly proc: ChildProcess
  readonly name: string
  private nextId = 1
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  private readonly exited: Promise<number | null>
  onEvent: (e: ChildEvent) => void = () => {}

  constructor(name: ChildName, opts: { label?: string; execArgv?: string[] } = {}) {
    const file = fileURLToPath(new URL(FROM_SOURCE ? `./${name}.ts` : `./${name}.js`, import.meta.url))
    const execArgv = [...(FROM_SOURCE ? ['--import', 'tsx'] : []), '--expose-gc', ...(opts.execArgv ?? [])]
    this.name = opts.label ?? name
    this.proc = spawn(process.execPath, [...execArgv, file], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.proc.on('message', (m: Reply | ChildEvent) => {
      if ('event' in m) return this.onEvent(m)
      const w = this.waiting.get(m.id)
      if (w === undefined) return
      this.waiting.delete(m.id)
      if (m.ok) w.resolve(m.result)
      else w.reject(new Error(`${this.name}: ${m.error}`))
    })
    this.exited = once(this.proc, 'exit').then(([code]) => {
      for (const w of this.waiting.values()) w.reject(new Error(`${this.name} exited with ${String(code)}`))
      this.waiting.clear()
      return code as number | null
    })
  }

  call<T>(type: string, args: unknown = {}): Promise<T> {
    const id = this.nextId++
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject })
      this.proc.send({ id, type, args } satisfies Request)
    })
  }

  /** Ask the child to stop ('stop' request), then wait for its exit (killed after graceMs). */
  async stop(graceMs = 20_000): Promise<number | null> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return this.exited
    this.call('stop').catch(() => {})
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs)
    const code = await this.exited
    clearTimeout(timer)
    return code
  }
}

/** In a child: answer the parent's requests with `handlers`; 'stop' runs onStop then exits. */
export const serve = (handlers: Record<string, (args: never) => unknown>, onStop?: () => Promise<void>): void => {
  if (process.send === undefined) throw new Error('run me through bench/chat-common.ts (no IPC channel)')
  const reply = (r: Reply): void => void process.send!(r)
  process.on('message', (m: Request) => {
    if (m.type === 'stop') {
      void (async () => {
        try {
          await onStop?.()
        } finally {
          reply({ id: m.id, ok: true, result: null })
          process.disconnect()
          setTimeout(() => process.exit(0), 50).unref()
        }
      })()
      return
    }
    const h = handlers[m.type]
    if (h === undefined) return reply({ id: m.id, ok: false, error: `unknown request ${m.type}` })
    Promise.resolve()
      .then(() => h(m.args as never))
      .then(
        (result) => reply({ id: m.id, ok: true, result }),
        (err: unknown) => reply({ id: m.id, ok: false, error: err instanceof Error ? err.stack ?? err.message : String(err) }),
      )
  })
  process.on('disconnect', () => setTimeout(() => process.exit(0), 1000).unref())
}

export const emitEvent = (e: ChildEvent): void => {
  process.send?.(e)
}

// ---- what the server child reports --------------------------------------------------

export interface ServerStats {
  rssBytes: number
  /** The server process's peak RSS so far (getrusage ru_maxrss). */
  maxRssBytes: number
  heapUsedBytes: number
  heapTotalBytes: number
  externalBytes: number
  arrayBuffersBytes: number
  /** process.cpuUsage() of the server process, microseconds. */
  cpuUserUs: number
  cpuSystemUs: number
  /** Live sessions of the endpoint (handshaking included). */
  sessions: number
  /** Users with at least one logged-in session. */
  onlineUsers: number
  messaging: Record<string, number>
  commit: Record<string, number>
  io: Record<string, number>
  core: Record<string, number>
  /** Event-loop delay since the previous stats request, ms (perf_hooks histogram). */
  loopDelayP99Ms: number
  loopDelayMaxMs: number
  /** GC pauses since the previous stats request (PerformanceObserver 'gc'). */
  gcPauseMaxMs: number
  gcPauseTotalMs: number
  gcPausesOver100Ms: number
  /** Kernel drops on the server's socket (receive buffer full), since it was bound. */
  socketDrops: number
}

// ---- database setup -------------------------------------------------------------------

export interface BenchUser {
  userId: number
  deviceId: number
  /** The session token, hex (81 bytes). */
  tokenHex: string
}

/**
 * Create `count` users, each with one device and one session token, in pigeon.db under
 * `dataDir`, through the SQLite stores inside ONE transaction (each store call would
 * otherwise be its own fsync'd commit). The tokens are signed with the data directory's
 * token secret, which the server child loads too. Users never log in with a password:
 * they all share one (real) scrypt hash so the rows look like the real thing.
 */
/** Extra node flags for the chat server child (PIGEON_BENCH_SERVER_NODE_FLAGS, space-separated), to compare runtime settings. */
export const serverNodeFlags = (): string[] => nodeFlags('PIGEON_BENCH_SERVER_NODE_FLAGS')
/** Extra node flags for the bench's client children (PIGEON_BENCH_CLIENT_NODE_FLAGS), e.g. `--cpu-prof --cpu-prof-dir=/tmp/p`. */
export const clientNodeFlags = (): string[] => nodeFlags('PIGEON_BENCH_CLIENT_NODE_FLAGS')
const nodeFlags = (variable: string): string[] => (process.env[variable] ?? '').split(' ').filter((f) => f !== '')

export const createBenchUsers = async (dataDir: string, count: number, namePrefix = 'u'): Promise<BenchUser[]> => {
  const stores = openSqliteStores({ dataDir })
  const tokens = new SessionTokens({ store: stores.accounts, secret: loadOrCreateTokenSecret(dataDir) })
  const passwordHash = await hashPassword('bench-password-not-used')
  const nowMs = Date.now()
  const users: BenchUser[] = []
  const db = stores.accounts.db
  db.exec('BEGIN IMMEDIATE')
  try {
    for (let i = 0; i < count; i++) {
      const user = await stores.accounts.createUser({ username: `${namePrefix}${i}`, passwordHash, nowMs })
      const device = await stores.accounts.createDevice({ userId: user.userId, name: 'bench', nowMs })
      const { token } = await tokens.issue({ userId: user.userId, deviceId: device.deviceId, nowMs })
      users.push({ userId: user.userId, deviceId: device.deviceId, tokenHex: Buffer.from(token).toString('hex') })
    }
    db.exec('COMMIT')
  } catch (err) {
    db.exec('ROLLBACK')
    throw err
  } finally {
    await stores.close()
  }
  return users
}

/**
 * CPU time the whole machine spent busy (user, nice, system, irq, softirq) and stolen by
 * the hypervisor, in seconds, from /proc/stat; NaN off Linux. Compared with what the
 * bench's own processes used, it shows how much other work shared the cores.
 */
export const machineCpu = (): { busySeconds: number; stealSeconds: number } => {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
    const [user, nice, system, , , irq, softirq, steal] = f
    return { busySeconds: (user + nice + system + irq + softirq) / 100, stealSeconds: steal / 100 }
  } catch {
    return { busySeconds: NaN, stealSeconds: NaN }
  }
}

/** Datagrams the kernel dropped on the UDP socket bound to `port` (receive buffer full), from /proc/net/udp. */
export const udpDrops = (port: number): number => {
  try {
    const hex = port.toString(16).toUpperCase().padStart(4, '0')
    for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/)
      if (f.length > 12 && f[1].endsWith(`:${hex}`)) return Number(f[f.length - 1])
    }
  } catch {
    // not Linux
  }
  return NaN
}

/** Mean wall time of write(4 KiB) + fsync in `dir`, microseconds: what one durable commit waits for. */
export const fsyncLatencyUs = (dir: string, count = 200): number => {
  const path = join(dir, 'fsync-probe')
  const fd = openSync(path, 'w')
  const block = Buffer.alloc(4096, 1)
  const started = performance.now()
  try {
    for (let i = 0; i < count; i++) {
      writeSync(fd, block)
      fsyncSync(fd)
    }
  } finally {
    closeSync(fd)
    rmSync(path, { force: true })
  }
  return ((performance.now() - started) * 1000) / count
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

export const round = (x: number, digits: number): number => Number(x.toFixed(digits))

/** CPU seconds used between two process.cpuUsage()-style readings (microseconds). */
export const cpuSeconds = (a: { cpuUserUs: number; cpuSystemUs: number }, b: { cpuUserUs: number; cpuSystemUs: number }): number =>
  (b.cpuUserUs - a.cpuUserUs + b.cpuSystemUs - a.cpuSystemUs) / 1e6
