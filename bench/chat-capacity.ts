/**
 * Chat capacity: 100,000 logged-in idle sessions in ONE chat server process.
 *
 * The server (bench/chat-server-child.ts: startChatServer, durable SQLite store in a temp
 * directory, encryption on, handshake limit raised) runs in one child process; the
 * sessions come from four other child processes (bench/chat-client-child.ts), each
 * opening its share on UdpEndpoints of 12,500 sessions each, at most 100 handshakes +
 * RESUMEs outstanding in all. 100,000 users, devices and session tokens are written
 * through the stores in one transaction before the server starts; every session logs in
 * with RESUME (no scrypt). Keepalive: the chat client's (CHAT_SESSION_DEFAULTS: a PING
 * after 15 s without sending anything; see PIGEON_BENCH_CAPACITY_KEEPALIVE_MS).
 *
 * Reported: the server's RSS and heap with no session (after forced GC), when the last
 * session has logged in, after holding them idle for two keepalive periods (no forced GC
 * while sessions must stay alive: a full GC of a heap this size stalls the server), and
 * after the liveness check (forced GC); bytes per session; the most sessions held at once
 * and the RSS then, projected to the target count; the time to establish them. Every
 * 10 s a line on stderr (and `timeline` in the JSON) gives sessions, RSS, event-loop and
 * GC stalls, kernel drops on the server's socket and datagram counts. Liveness: every
 * session sends SYNC and must get its SYNC_BATCH back.
 * Target (the issue): server RSS <= 1.5 GB with 100,000 sessions, all alive.
 *
 * `--quick`: 5,000 sessions, one keepalive period of idling.
 * PIGEON_BENCH_CAPACITY_SESSIONS and PIGEON_BENCH_CLIENT_PROCS override the size,
 * PIGEON_BENCH_CAPACITY_HOLD_MS the idle time, PIGEON_BENCH_CAPACITY_CONCURRENCY the
 * handshakes outstanding (all client processes together), PIGEON_BENCH_CAPACITY_PROBE_CONCURRENCY
 * the SYNCs outstanding during the liveness probe (default 50; it was 200, and 2,000);
 * PIGEON_BENCH_SERVER_NODE_FLAGS node flags for the server child (space-separated);
 * PIGEON_BENCH_CHAT_PROFILE=1 writes CPU profiles of the server while establishing and
 * while idle into bench/out/profiles (see chat-profile.ts), PIGEON_BENCH_CAPACITY_SNAPSHOT=1
 * a heap snapshot after the idle hold (see chat-heap.ts; writing it stalls the server
 * long enough for the sessions to die, so the liveness check fails in that mode).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ClientConnectArgs, ConnectResult } from './chat-client-child.js'
import { Child, serverNodeFlags, type ServerStats, createBenchUsers, cpuSeconds, round, sleep } from './chat-common.js'
import type { ServerStartArgs } from './chat-server-child.js'
import type { BenchReport } from './report.js'
import { CHAT_SESSION_DEFAULTS } from '../src/client/chat-client.js'
import type { SessionConfig } from '../src/core/session/config.js'

const intEnv = (name: string, fallback: number): number => (process.env[name] === undefined ? fallback : Number.parseInt(process.env[name]!, 10))


/**
 * The chat client's own session settings (ChatClient's CHAT_SESSION_DEFAULTS: keepalive
 * 15 s, dead link after 25 s). PIGEON_BENCH_CAPACITY_KEEPALIVE_MS=5000 tries another
 * interval (dead link after two of them).
 */
const KEEPALIVE_MS = intEnv('PIGEON_BENCH_CAPACITY_KEEPALIVE_MS', CHAT_SESSION_DEFAULTS.keepAliveIntervalMs!)
const SESSION_CONFIG: Partial<SessionConfig> =
  KEEPALIVE_MS === CHAT_SESSION_DEFAULTS.keepAliveIntervalMs ? { ...CHAT_SESSION_DEFAULTS } : { keepAliveIntervalMs: KEEPALIVE_MS, deadLinkTimeoutMs: 2 * KEEPALIVE_MS }
const SESSIONS_PER_SOCKET = 12_500
/**
 * SYNCs outstanding at once during the liveness probe, all client processes together.
 * At 200 the probe kept the server saturated (each SYNC of an idle user reads SQLite) on
 * top of 6,700 keepalives/s, and on a slower day the probe itself killed 4,810 sessions
 * whose keepalives drowned (2026-11-23 09:00; none died in the idle hold before it); at
 * 50 the same code held all 100,000.
 */
const PROBE_CONCURRENCY = 50
/** The 1.5 GB, decimal (the stricter reading). */
const RSS_TARGET_BYTES = 1.5e9

interface ClientStatus {
  datagramsSent: number
  datagramsReceived: number
  loopDelayMaxMs: number
  socketDrops: number
  sessions: number
  ready: number
  closed: number
  deadLinks: number
  closeReasons: Record<string, number>
  rssBytes: number
}

const mib = (b: number): number => round(b / 1024 ** 2, 1)

export async function run(opts: { quick?: boolean } = {}): Promise<BenchReport> {
  const quick = opts.quick === true
  const sessionCount = intEnv('PIGEON_BENCH_CAPACITY_SESSIONS', quick ? 5_000 : 100_000)
  const clientProcs = Math.max(1, intEnv('PIGEON_BENCH_CLIENT_PROCS', quick ? 1 : 4))
  const holdMs = intEnv('PIGEON_BENCH_CAPACITY_HOLD_MS', (quick ? 1 : 2) * KEEPALIVE_MS + 1_000)

  const dataDir = mkdtempSync(join(tmpdir(), 'pigeon-bench-capacity-'))
  const setupStarted = performance.now()
  const users = await createBenchUsers(dataDir, sessionCount)
  const setupMs = performance.now() - setupStarted
  const profileDir = process.env.PIGEON_BENCH_CHAT_PROFILE === '1' ? join(process.cwd(), 'bench', 'out', 'profiles') : undefined
  const server = new Child('chat-server-child', { label: 'chat-server', execArgv: serverNodeFlags() })
  const profiles: string[] = []
  const profiled = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    if (profileDir === undefined) return fn()
    await server.call('profileStart')
    try {
      return await fn()
    } finally {
      profiles.push(await server.call<string>('profileStop', { dir: profileDir, name: `capacity-${name}` }))
    }
  }
  const clients: Child[] = []
  const progress: Array<{ elapsedMs: number; ready: number }> = []
  const timeline: Array<Record<string, number>> = []
  let monitor: NodeJS.Timeout | undefined
  let heapSnapshot: string | undefined
  let idle: ServerStats, established: ServerStats, held: ServerStats, beforeConnect: ServerStats, holdStart: ServerStats, holdEnd: ServerStats
  let serverAfterProbe: ServerStats
  let connect: ConnectResult[]
  let establishMs: number
  let clientsAfterHold: ClientStatus[]
  let probe: Array<{ answered: number; asked: number; elapsedMs: number }>
  try {
    const startArgs: ServerStartArgs = {
      dataDir,
      handshakeLimit: { ratePerSecond: 1_000_000, burst: 1_000_000, maxAddresses: 100_000 },
    }
    const { port, publicKeyHex } = await server.call<{ port: number; publicKeyHex: string }>('start', startArgs)
    idle = await server.call<ServerStats>('stats', { gc: true })

    const perProc = Math.ceil(sessionCount / clientProcs)
    for (let i = 0; i < clientProcs; i++) {
      const c = new Child('chat-client-child', { label: `capacity-clients-${i}`, execArgv: ['--max-old-space-size=8192'] })
      c.onEvent = (e) => {
        if (e.event === 'progress' && i === 0) progress.push({ elapsedMs: Math.round(e.elapsedMs as number), ready: (e.ready as number) * clientProcs })
      }
      clients.push(c)
    }
    beforeConnect = await server.call<ServerStats>('stats')
    const started = performance.now()
    // Every 10 s: sessions, memory, event-loop stalls and socket drops on both sides (stderr + JSON).
    let monitorBusy = false
    monitor = setInterval(() => {
      if (monitorBusy) return
      monitorBusy = true
      void Promise.all([server.call<ServerStats>('stats'), ...clients.map((c) => c.call<ClientStatus>('status'))])
        .then(([s, ...cs]) => {
          const point = {
            atS: round((performance.now() - started) / 1000, 0),
            serverSessions: (s as ServerStats).sessions,
            loggedIn: (s as ServerStats).onlineUsers,
            rssMiB: mib((s as ServerStats).rssBytes),
            serverLoopDelayMaxMs: round((s as ServerStats).loopDelayMaxMs, 0),
            serverGcMaxMs: round((s as ServerStats).gcPauseMaxMs, 0),
            serverGcTotalMs: round((s as ServerStats).gcPauseTotalMs, 0),
            serverSocketDrops: (s as ServerStats).socketDrops,
            clientReady: (cs as ClientStatus[]).reduce((n, c) => n + c.ready, 0),
            clientClosed: (cs as ClientStatus[]).reduce((n, c) => n + c.closed, 0),
            clientLoopDelayMaxMs: round(Math.max(...(cs as ClientStatus[]).map((c) => c.loopDelayMaxMs)), 0),
            clientSocketDrops: (cs as ClientStatus[]).reduce((n, c) => n + c.socketDrops, 0),
            serverDatagramsIn: (s as ServerStats).io.datagramsReceived,
            serverDatagramsOut: (s as ServerStats).io.datagramsSent,
            clientDatagramsOut: (cs as ClientStatus[]).reduce((n, c) => n + c.datagramsSent, 0),
            serverCpuS: round(((s as ServerStats).cpuUserUs + (s as ServerStats).cpuSystemUs) / 1e6, 1),
          }
          timeline.push(point)
          console.error(`chat-capacity ${JSON.stringify(point)}`)
        })
        .catch(() => {})
        .finally(() => {
          monitorBusy = false
        })
    }, 10_000)
    connect = await profiled('establish', () => Promise.all(
      clients.map((c, i) =>
        c.call<ConnectResult>('connect', {
          port,
          serverKeyHex: publicKeyHex,
          users: users.slice(i * perProc, (i + 1) * perProc),
          sessionsPerSocket: SESSIONS_PER_SOCKET,
          concurrency: Math.max(1, Math.round(intEnv('PIGEON_BENCH_CAPACITY_CONCURRENCY', 100) / clientProcs)),
          sessionConfig: SESSION_CONFIG,
          progressEvery: quick ? 1000 : 10_000,
        } satisfies ClientConnectArgs),
      ),
    ))
    establishMs = performance.now() - started
    // No forced GC while the sessions are to stay alive: a full GC of a heap this size
    // stalls the server for long enough to overflow its socket buffer (see RESULTS.md).
    established = await server.call<ServerStats>('stats')
    holdStart = established
    holdEnd = await profiled('idle', async () => {
      await sleep(holdMs)
      return server.call<ServerStats>('stats')
    })
    held = holdEnd
    if (process.env.PIGEON_BENCH_CAPACITY_SNAPSHOT === '1') {
      heapSnapshot = await server.call<string>('heapSnapshot', { dir: join(process.cwd(), 'bench', 'out', 'profiles') })
      console.error(`chat-capacity: server heap snapshot in ${heapSnapshot}`)
    }
    clientsAfterHold = await Promise.all(clients.map((c) => c.call<ClientStatus>('status')))
    // The probe checks liveness, not burst capacity: 2,000 SYNCs outstanding at once (the
    // old 500 per client process) queued for seconds in the server's socket buffer, so
    // every SYNC was retransmitted many times and the probe itself killed sessions.
    const probeConcurrency = Math.max(1, Math.round(intEnv('PIGEON_BENCH_CAPACITY_PROBE_CONCURRENCY', PROBE_CONCURRENCY) / clientProcs))
    probe = await Promise.all(clients.map((c) => c.call<{ answered: number; asked: number; elapsedMs: number }>('probe', { timeoutMs: 10_000, concurrency: probeConcurrency })))
    serverAfterProbe = await server.call<ServerStats>('stats', { gc: true })
  } finally {
    clearInterval(monitor)
    await Promise.all(clients.map((c) => c.stop()))
    await server.stop()
    rmSync(dataDir, { recursive: true, force: true })
  }

  const ready = connect.reduce((n, r) => n + r.ready, 0)
  const failed = connect.reduce((n, r) => n + r.failed, 0)
  const closedDuringHold = clientsAfterHold.reduce((n, c) => n + c.closed, 0)
  const answered = probe.reduce((n, p) => n + p.answered, 0)
  const perSession = (s: ServerStats, key: 'rssBytes' | 'heapUsedBytes'): number => (s[key] - idle[key]) / Math.max(1, s.sessions)
  const holdCpuSeconds = cpuSeconds(holdStart, holdEnd)
  const holdElapsedMs = holdMs
  const row = (what: string, s: ServerStats) => ({
    point: what,
    sessions: s.sessions,
    loggedIn: s.onlineUsers,
    rssMiB: mib(s.rssBytes),
    heapUsedMiB: mib(s.heapUsedBytes),
    externalMiB: mib(s.externalBytes),
    rssBytesPerSession: s.sessions === 0 ? '' : Math.round(perSession(s, 'rssBytes')),
    heapBytesPerSession: s.sessions === 0 ? '' : Math.round(perSession(s, 'heapUsedBytes')),
  })
  // The most sessions the server held at once (10 s samples and the phase readings) and its RSS then.
  const samples = [
    ...timeline.map((t) => ({ sessions: t.serverSessions, rssBytes: t.rssMiB * 1024 ** 2 })),
    { sessions: established.sessions, rssBytes: established.rssBytes },
    { sessions: held.sessions, rssBytes: held.rssBytes },
    { sessions: serverAfterProbe.sessions, rssBytes: serverAfterProbe.rssBytes },
  ]
  const peak = samples.reduce((a, b) => (b.sessions > a.sessions ? b : a))
  // The kernel's high-water mark as well: a peak between two samples counts.
  const peakRss = Math.max(serverAfterProbe.maxRssBytes, ...samples.map((x) => x.rssBytes))
  const bytesPerSessionAtPeak = (peak.rssBytes - idle.rssBytes) / Math.max(1, peak.sessions)
  const projectedRss = idle.rssBytes + bytesPerSessionAtPeak * sessionCount
  const table: Array<Record<string, string | number>> = [
    row('no session (after forced GC)', idle),
    row('all logged in', established),
    row(`after ${holdMs / 1000} s idle`, held),
    row('after the liveness probe (forced GC)', serverAfterProbe),
    {
      point: 'summary',
      sessions: ready,
      loggedIn: serverAfterProbe.onlineUsers,
      establishSeconds: round(establishMs / 1000, 1),
      sessionsPerSecond: Math.round((ready * 1000) / establishMs),
      failed,
      closedAfterLogin: closedDuringHold,
      aliveAfterIdle: answered,
      serverCpuPctWhileIdle: round((holdCpuSeconds * 100 * 1000) / holdElapsedMs, 1),
      keepAliveMs: KEEPALIVE_MS,
    },
    {
      point: 'most sessions held at once',
      sessions: peak.sessions,
      rssMiB: mib(peak.rssBytes),
      rssBytesPerSession: Math.round(bytesPerSessionAtPeak),
      projectedRssMiBAtTarget: mib(projectedRss),
      maxRssMiB: mib(peakRss),
      serverSocketDrops: held.socketDrops,
    },
  ]
  const allAlive = answered === sessionCount && closedDuringHold === 0
  return {
    name: 'chat-capacity',
    table,
    targets: [
      {
        metric: allAlive
          ? `server peak RSS with ${sessionCount} logged-in idle sessions, GB (all alive after ${holdMs / 1000} s idle, keepalive ${KEEPALIVE_MS / 1000} s)`
          : `server peak RSS, GB, at most ${peak.sessions} sessions held at once (of ${sessionCount}; ${sessionCount - answered} not alive after ${holdMs / 1000} s idle, keepalive ${KEEPALIVE_MS / 1000} s)`,
        value: round(peakRss / 1e9, 3),
        target: '<= 1.5 with all alive',
        pass: peakRss <= RSS_TARGET_BYTES && allAlive,
      },
    ],
    json: {
      quick,
      sessionCount,
      clientProcs,
      sessionsPerSocket: SESSIONS_PER_SOCKET,
      sessionConfig: SESSION_CONFIG,
      holdMs,
      setupMs: Math.round(setupMs),
      establishMs: Math.round(establishMs),
      establishServerCpuSeconds: cpuSeconds(beforeConnect, established),
      holdServerCpuSeconds: holdCpuSeconds,
      holdServerCpuUserSeconds: (holdEnd.cpuUserUs - holdStart.cpuUserUs) / 1e6,
      holdServerCpuSystemSeconds: (holdEnd.cpuSystemUs - holdStart.cpuSystemUs) / 1e6,
      holdDatagramsReceived: holdEnd.io.datagramsReceived - holdStart.io.datagramsReceived,
      holdDatagramsSent: holdEnd.io.datagramsSent - holdStart.io.datagramsSent,
      loadAverageAtEnd: loadavg(),
      progress,
      timeline,
      heapSnapshot,
      profiles,
      connect,
      clientsAfterHold,
      probeConcurrency: intEnv('PIGEON_BENCH_CAPACITY_PROBE_CONCURRENCY', PROBE_CONCURRENCY),
      probe,
      server: { idle, established, held, afterProbe: serverAfterProbe },
    },
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const report = await run({ quick: process.argv.includes('--quick') })
  console.table(report.table)
  console.log(JSON.stringify(report.targets, null, 2))
}
