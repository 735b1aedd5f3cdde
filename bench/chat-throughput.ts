/**
 * Chat throughput: small encrypted 1:1 messages delivered and acknowledged end to end
 * through ONE chat server process.
 *
 * Layout: the server (startChatServer, durable SQLite store in a temp directory, WAL +
 * synchronous FULL, encryption on, handshake and send-rate limits raised for the bench)
 * runs in one child process (bench/chat-server-child.ts); the client sessions run in one
 * other child process (bench/chat-client-child.ts; more with PIGEON_BENCH_CLIENT_PROCS),
 * several sessions per UdpEndpoint. Users, devices and session tokens are written
 * straight through the stores before the server starts; every session logs in with
 * RESUME. Sessions are paired, sender -> receiver; the receiver gets each message through
 * ChatClientCore's PUSH -> SYNC -> SYNC_BATCH -> FIN flow, and a message counts when the
 * sender has its SEND_OK and the receiver has it.
 *
 *  - peak: closed loop, each sender keeps `window` messages in flight (several windows;
 *    the best rate is the peak);
 *  - latency: open loop at 70 % of the peak, paced every millisecond; p50/p99 of
 *    send -> delivery (ChatClientCore.enqueue to the receiver's 'message' event); for
 *    information also at 70 % of the 1-in-flight rate and at a light load (10 % of it);
 *  - reference, same run: plain node:dgram echo, server in one child process, clients in
 *    another, many datagrams in flight (bench/chat-echo-child.ts); the best of two
 *    configurations is the reference.
 *
 * Targets (the issue): peak >= 30 % of the echo round trips/s; p99 <= 50 ms at 70 % of
 * the peak.
 *
 * Environment knobs (for investigation; the defaults are what `npm run bench` measures):
 *   PIGEON_BENCH_CHAT_SESSIONS=1000   PIGEON_BENCH_CHAT_WINDOWS=1,4,16,64
 *   PIGEON_BENCH_CLIENT_PROCS=1       PIGEON_BENCH_CHAT_PROFILE=1 (CPU profile of the server in every
 *   measure window, into bench/out/profiles; summarise with bench/chat-profile.ts)
 *   PIGEON_BENCH_CHAT_SYNCHRONOUS=NORMAL (NOT durable: shows what the per-commit fsync costs)
 *   PIGEON_BENCH_CHAT_OPEN_LOOP=0 (closed-loop windows only: no latency target measured)
 *   PIGEON_BENCH_CHAT_OPEN_RATES=2000,4000 (extra open-loop phases at these offered rates, msg/s)
 *   PIGEON_BENCH_SERVER_NODE_FLAGS='--max-semi-space-size=64' (node flags for the server child)
 *   PIGEON_BENCH_CLIENT_NODE_FLAGS='--cpu-prof --cpu-prof-dir=/tmp/p' (node flags for the client children)
 *   PIGEON_BENCH_CHAT_COMMIT_WINDOW_MS=1 (the group commit window; default: the server's, 1 ms)
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ClientConnectArgs, ConnectResult, LoopResult } from './chat-client-child.js'
import { Child, clientNodeFlags, serverNodeFlags, type ServerStats, createBenchUsers, cpuSeconds, fsyncLatencyUs, machineCpu, round, sleep } from './chat-common.js'
import type { EchoRunArgs, EchoRunResult } from './chat-echo-child.js'
import type { ServerStartArgs } from './chat-server-child.js'
import { type BenchReport, percentile } from './report.js'
import { CHAT_SESSION_DEFAULTS } from '../src/client/chat-client.js'

const env = (name: string): string | undefined => process.env[name]
const intEnv = (name: string, fallback: number): number => (env(name) === undefined ? fallback : Number.parseInt(env(name)!, 10))


interface PhaseMeasure {
  results: LoopResult[]
  serverCpuSeconds: number
  serverDelta: Record<string, number>
  /** Whole machine, measure window. */
  machineBusySeconds: number
  stealSeconds: number
  /** This (orchestrating) process, measure window. */
  parentCpuSeconds: number
}

interface Phase extends PhaseMeasure {
  kind: 'closed' | 'open'
  label: string
  window?: number
  offeredPerSecond?: number
}

/** A latency for the table and JSON: more than 1 % of the messages never arrived shows as "not delivered". */
const ms = (v: number): number | string => (Number.isFinite(v) ? round(v, 2) : 'not delivered')

const merged = (results: LoopResult[]) => {
  const sum = (f: (r: LoopResult) => number): number => results.reduce((n, r) => n + f(r), 0)
  // Open loop: a message due in the window without a latency (failed, skipped, undelivered)
  // counts as infinitely late, so the percentiles cannot leave the worst ones out.
  const missed = results.reduce((n, r) => n + r.missedInWindow, 0)
  const latencies = Float64Array.from([...results.flatMap((r) => r.latenciesMs), ...new Array<number>(missed).fill(Infinity)]).sort()
  const sendOk = Float64Array.from(results.flatMap((r) => r.sendOkMs)).sort()
  const elapsedMs = Math.max(...results.map((r) => r.elapsedMs))
  return {
    completed: sum((r) => r.completed),
    issued: sum((r) => r.issued),
    elapsedMs,
    perSecond: (sum((r) => r.completed) * 1000) / elapsedMs,
    leftOver: sum((r) => r.leftOver),
    failedSends: sum((r) => r.failedSends),
    missedInWindow: missed,
    readySessions: sum((r) => r.readySessions),
    firstSendError: results.find((r) => r.firstSendError !== undefined)?.firstSendError,
    clientCpuMs: sum((r) => r.clientCpuMs),
    protocolErrors: sum((r) => r.protocolErrors),
    p50Ms: percentile(Array.from(latencies), 50),
    p99Ms: percentile(Array.from(latencies), 99),
    maxMs: latencies.length === 0 ? NaN : latencies[latencies.length - 1],
    sendOkP50Ms: percentile(Array.from(sendOk), 50),
    sendOkP99Ms: percentile(Array.from(sendOk), 99),
    samples: latencies.length,
    /** Closed loop, Little's law per message in flight per sender: multiply by the window (not quantised by waves). */
    littlePerSecondPerInFlight: results.reduce((n, r) => n + (r.meanCompletionMs > 0 ? (r.pairs * 1000) / r.meanCompletionMs : 0), 0),
  }
}

const delta = (a: ServerStats, b: ServerStats): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const group of ['messaging', 'commit', 'io'] as const) {
    for (const [k, v] of Object.entries(b[group])) {
      const d = v - (a[group][k] ?? 0)
      if (d !== 0 && k !== 'maxBatchSize') out[`${group}.${k}`] = d
    }
  }
  return out
}

/**
 * Wait (at most 60 s) until the server is quiet: less than 10 % CPU over one second. An
 * overloaded phase leaves queued work behind, which would otherwise count against the next.
 */
const settle = async (server: Child): Promise<number> => {
  const started = performance.now()
  let a = await server.call<ServerStats>('stats')
  while (performance.now() - started < 60_000) {
    await sleep(1000)
    const b = await server.call<ServerStats>('stats')
    if (cpuSeconds(a, b) < 0.1) break
    a = b
  }
  return performance.now() - started
}

/** Run one load phase on every client; read the server's counters at the edges of the measure window. */
const runPhase = async (
  server: Child,
  clients: Child[],
  call: string,
  args: { warmupMs: number; measureMs: number } & Record<string, number>,
  profile?: { dir: string; name: string; files: string[] },
): Promise<PhaseMeasure> => {
  await Promise.all(clients.map((c) => c.call('reconnectClosed'))) // every pair takes part
  await settle(server)
  const resultsP = Promise.all(clients.map((c) => c.call<LoopResult>(call, args)))
  await sleep(args.warmupMs)
  if (profile !== undefined) await server.call('profileStart')
  const m0 = machineCpu()
  const p0 = process.cpuUsage()
  const before = await server.call<ServerStats>('stats')
  await sleep(args.measureMs)
  const after = await server.call<ServerStats>('stats')
  if (profile !== undefined) profile.files.push(await server.call<string>('profileStop', { dir: profile.dir, name: `throughput-${profile.name}` }))
  const p1 = process.cpuUsage(p0)
  const m1 = machineCpu()
  const results = await resultsP
  return {
    results,
    serverCpuSeconds: cpuSeconds(before, after),
    serverDelta: delta(before, after),
    machineBusySeconds: m1.busySeconds - m0.busySeconds,
    stealSeconds: m1.stealSeconds - m0.stealSeconds,
    parentCpuSeconds: (p1.user + p1.system) / 1e6,
  }
}

interface EchoRow extends EchoRunArgs, EchoRunResult {
  perSecond: number
  serverCpuSeconds: number
  machineBusySeconds: number
  stealSeconds: number
}

const echoReference = async (quick: boolean): Promise<EchoRow[]> => {
  const server = new Child('chat-echo-child', { label: 'echo-server' })
  const client = new Child('chat-echo-child', { label: 'echo-client' })
  const rows: EchoRow[] = []
  try {
    const { port } = await server.call<{ port: number }>('serve')
    for (const [sockets, window] of [[1, 32], [16, 32]] as const) {
      const args: EchoRunArgs = { port, sockets, window, sizeBytes: 64, warmupMs: quick ? 300 : 1000, measureMs: quick ? 1000 : 4000 }
      const runP = client.call<EchoRunResult>('run', args)
      await sleep(args.warmupMs)
      const m0 = machineCpu()
      const before = await server.call<{ cpuUserUs: number; cpuSystemUs: number }>('cpu')
      const r = await runP
      const after = await server.call<{ cpuUserUs: number; cpuSystemUs: number }>('cpu')
      const m1 = machineCpu()
      rows.push({
        ...args,
        ...r,
        perSecond: (r.roundTrips * 1000) / r.elapsedMs,
        serverCpuSeconds: cpuSeconds(before, after),
        machineBusySeconds: m1.busySeconds - m0.busySeconds,
        stealSeconds: m1.stealSeconds - m0.stealSeconds,
      })
    }
  } finally {
    await Promise.all([server.stop(), client.stop()])
  }
  return rows
}

export async function run(opts: { quick?: boolean } = {}): Promise<BenchReport> {
  const quick = opts.quick === true
  const sessionCount = intEnv('PIGEON_BENCH_CHAT_SESSIONS', quick ? 200 : 1000) & ~1
  const clientProcs = Math.max(1, intEnv('PIGEON_BENCH_CLIENT_PROCS', 1))
  const windows = (env('PIGEON_BENCH_CHAT_WINDOWS') ?? (quick ? '4' : '1,4,16,64')).split(',').map(Number)
  // With large windows messages complete in waves a few seconds apart (latency is seconds):
  // the window must span many waves or the count is quantised.
  const warmupMs = quick ? 500 : 5000
  const measureMs = quick ? 1500 : 15_000
  const synchronous = env('PIGEON_BENCH_CHAT_SYNCHRONOUS') === 'NORMAL' ? 'NORMAL' : 'FULL'
  const profileDir = env('PIGEON_BENCH_CHAT_PROFILE') === '1' ? join(process.cwd(), 'bench', 'out', 'profiles') : undefined

  const echo = await echoReference(quick)
  const echoBest = echo.reduce((a, b) => (b.perSecond > a.perSecond ? b : a))

  const dataDir = mkdtempSync(join(tmpdir(), 'pigeon-bench-chat-'))
  const fsyncUs = fsyncLatencyUs(dataDir)
  const setupStarted = performance.now()
  const users = await createBenchUsers(dataDir, sessionCount)
  const setupMs = performance.now() - setupStarted
  const server = new Child('chat-server-child', { label: 'chat-server', execArgv: serverNodeFlags() })
  const clients: Child[] = []
  const phases: Phase[] = []
  const profiles: string[] = []
  const prof = (name: string) => (profileDir === undefined ? undefined : { dir: profileDir, name, files: profiles })
  let connect: ConnectResult[] = []
  let synced = 0
  let finalServer: ServerStats | undefined
  try {
    const startArgs: ServerStartArgs = {
      dataDir,
      handshakeLimit: { ratePerSecond: 100_000, burst: 100_000, maxAddresses: 100_000 },
      limits: { sendRatePerSecond: 1_000_000, sendBurst: 1_000_000 },
      synchronous,
      commitWindowMs: env('PIGEON_BENCH_CHAT_COMMIT_WINDOW_MS') === undefined ? undefined : intEnv('PIGEON_BENCH_CHAT_COMMIT_WINDOW_MS', 1),
    }
    const { port, publicKeyHex } = await server.call<{ port: number; publicKeyHex: string }>('start', startArgs)
    // Whole pairs per client process.
    const perProc = Math.ceil(sessionCount / 2 / clientProcs) * 2
    for (let i = 0; i < clientProcs; i++) clients.push(new Child('chat-client-child', { label: `chat-clients-${i}`, execArgv: clientNodeFlags() }))
    connect = await Promise.all(
      clients.map((c, i) =>
        c.call<ConnectResult>('connect', {
          port,
          serverKeyHex: publicKeyHex,
          users: users.slice(i * perProc, (i + 1) * perProc),
          sessionsPerSocket: 250,
          concurrency: 100,
          sessionConfig: CHAT_SESSION_DEFAULTS,
        } satisfies ClientConnectArgs),
      ),
    )
    synced = (await Promise.all(clients.map((c) => c.call<{ synced: number }>('chatStart')))).reduce((n, r) => n + r.synced, 0)

    for (const window of windows) {
      // Messages complete in waves about one latency apart: measure for several of them.
      const phaseMeasureMs = quick ? measureMs : Math.max(measureMs, window * 600)
      const r = await runPhase(server, clients, 'closedLoop', { window, warmupMs, measureMs: phaseMeasureMs, drainMs: 5000 }, prof(`window-${window}`))
      phases.push({ kind: 'closed', label: 'chat closed loop', window, ...r })
    }
    const rateOf = (p: Phase): number => merged(p.results).perSecond
    const peakPhase = phases.reduce((a, b) => (rateOf(b) > rateOf(a) ? b : a))
    const openLoop = async (label: string, offered: number): Promise<void> => {
      const r = await runPhase(server, clients, 'openLoop', {
        ratePerSecond: offered / clientProcs,
        warmupMs,
        measureMs: quick ? 2000 : 15_000,
        drainMs: 10_000,
        maxInFlightPerPair: 10_000,
      }, prof(`open-${offered}`))
      phases.push({ kind: 'open', label, offeredPerSecond: offered, ...r })
    }
    const fixedRates = env('PIGEON_BENCH_CHAT_OPEN_RATES')
    if (fixedRates !== undefined) for (const rate of fixedRates.split(',').map(Number)) await openLoop(`chat open loop, ${rate}/s`, rate)
    if (env('PIGEON_BENCH_CHAT_OPEN_LOOP') !== '0') await openLoop('chat open loop, 70 % of peak', Math.max(1, Math.round(rateOf(peakPhase) * 0.7)))
    // Informational: the peak comes from the largest window, where one SYNC / FIN covers
    // several messages; paced traffic spread over all pairs gets less of that batching.
    const windowOne = phases.find((p) => p.kind === 'closed' && p.window === 1)
    if (windowOne !== undefined && windowOne !== peakPhase && phases.some((p) => p.kind === 'open')) {
      await openLoop('chat open loop, 70 % of the 1-in-flight rate', Math.max(1, Math.round(rateOf(windowOne) * 0.7)))
    }
    // Informational: the latency floor, at a light load.
    if (!quick && phases.some((p) => p.kind === 'open')) await openLoop('chat open loop, light load', Math.max(1, Math.round(rateOf(windowOne ?? peakPhase) * 0.1)))
    finalServer = await server.call<ServerStats>('stats')
  } finally {
    await Promise.all(clients.map((c) => c.stop()))
    await server.stop()
    rmSync(dataDir, { recursive: true, force: true })
  }

  const rows = phases.map((p) => ({ p, m: merged(p.results) }))
  const closedRows = rows.filter((r) => r.p.kind === 'closed')
  const peakRow = closedRows.reduce((a, b) => (b.m.perSecond > a.m.perSecond ? b : a))
  const openRow = rows.find((r) => r.p.label === 'chat open loop, 70 % of peak')
  const otherCpuPct = (p: PhaseMeasure, m: ReturnType<typeof merged>): number =>
    round(((p.machineBusySeconds - p.serverCpuSeconds - m.clientCpuMs / 1000 - p.parentCpuSeconds) * 100 * 1000) / m.elapsedMs, 0)
  const ratio = peakRow.m.perSecond / echoBest.perSecond

  const table: Array<Record<string, string | number>> = [
    ...echo.map((e) => ({
      phase: 'reference: dgram echo',
      load: `${e.sockets} sockets x ${e.window} in flight`,
      perSecond: Math.round(e.perSecond),
      vsEcho: round(e.perSecond / echoBest.perSecond, 2),
      serverCpuUsPerMsg: round((e.serverCpuSeconds * 1e6) / Math.max(1, e.roundTrips), 1),
      serverCpuPct: round((e.serverCpuSeconds * 100 * 1000) / e.elapsedMs, 0),
      clientCpuPct: round((e.clientCpuMs * 100) / e.elapsedMs, 0),
      otherCpuPct: round(((e.machineBusySeconds - e.serverCpuSeconds - e.clientCpuMs / 1000) * 100 * 1000) / e.elapsedMs, 0),
      lost: e.lost,
    })),
    { phase: 'reference: write 4 KiB + fsync in the data directory', load: 'one at a time', perSecond: Math.round(1e6 / fsyncUs) },
    ...rows.map(({ p, m }) => ({
      phase: p.label,
      load: p.kind === 'closed' ? `${sessionCount / 2} senders x ${p.window} in flight` : `${p.offeredPerSecond} msg/s offered`,
      perSecond: Math.round(m.perSecond),
      littlesLaw: p.kind === 'closed' ? Math.round(m.littlePerSecondPerInFlight * p.window!) : '',
      vsEcho: round(m.perSecond / echoBest.perSecond, 3),
      deliveryP50Ms: ms(m.p50Ms),
      deliveryP99Ms: ms(m.p99Ms),
      sendOkP99Ms: round(m.sendOkP99Ms, 2),
      serverCpuUsPerMsg: round((p.serverCpuSeconds * 1e6) / Math.max(1, m.completed), 1),
      // Datagrams the server received / sent per message delivered (ACK-only ones included).
      serverDgInPerMsg: round((p.serverDelta['io.datagramsReceived'] ?? 0) / Math.max(1, m.completed), 2),
      serverDgOutPerMsg: round((p.serverDelta['io.datagramsSent'] ?? 0) / Math.max(1, m.completed), 2),
      serverCpuPct: round((p.serverCpuSeconds * 100 * 1000) / m.elapsedMs, 0),
      clientCpuPct: round((m.clientCpuMs * 100) / m.elapsedMs, 0),
      otherCpuPct: otherCpuPct(p, m),
      unfinished: m.leftOver + m.failedSends,
      // due in the measure window with no latency: counted as infinitely late above
      missedInWindow: p.kind === 'open' ? m.missedInWindow : '',
      // every session should still be logged in: the bench client does not reconnect
      sessionsReady: m.readySessions,
    })),
  ]
  return {
    name: 'chat-throughput',
    table,
    targets: [
      {
        metric: `chat messages/s delivered + SEND_OK (peak, ${sessionCount} sessions${synchronous === 'FULL' ? '' : ', NOT DURABLE: synchronous=NORMAL'}) vs dgram echo round trips/s`,
        value: round(ratio, 3),
        target: '>= 0.3',
        pass: ratio >= 0.3,
      },
      {
        metric: `p99 send -> delivery at 70 % of peak (${openRow === undefined ? 'not measured' : `${openRow.p.offeredPerSecond} msg/s offered`}), ms`,
        // Infinity (printed as such) when more than 1 % of the window's messages never arrived.
        value: openRow === undefined ? NaN : round(openRow.m.p99Ms, 2),
        target: '<= 50',
        pass: openRow !== undefined && openRow.m.p99Ms <= 50 && openRow.m.samples > 0,
      },
    ],
    json: {
      quick,
      sessionCount,
      clientProcs,
      synchronous,
      loadAverageAtEnd: loadavg(),
      setupMs: Math.round(setupMs),
      fsyncLatencyUs: fsyncUs,
      connect,
      synced,
      echo,
      echoBestPerSecond: echoBest.perSecond,
      peakPerSecond: peakRow.m.perSecond,
      peakWindow: peakRow.p.window,
      phases: rows.map(({ p, m }) => ({ kind: p.kind, label: p.label, machineBusySeconds: p.machineBusySeconds, stealSeconds: p.stealSeconds, window: p.window, offeredPerSecond: p.offeredPerSecond, serverCpuSeconds: p.serverCpuSeconds, serverDelta: p.serverDelta, ...m })),
      finalServer,
      profiles,
    },
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const report = await run({ quick: process.argv.includes('--quick') })
  console.table(report.table)
  console.log(JSON.stringify(report.targets, null, 2))
  // Run alone (not through run.ts): keep the figures too.
  mkdirSync(join(process.cwd(), 'bench', 'out'), { recursive: true })
  writeFileSync(join(process.cwd(), 'bench', 'out', 'chat-throughput.json'), JSON.stringify(report.json, null, 2))
}
