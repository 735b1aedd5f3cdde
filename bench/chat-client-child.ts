/**
 * Client side of the chat benchmarks, in its own process: many encrypted sessions to the
 * chat server, several per UdpEndpoint (one socket per `sessionsPerSocket` sessions),
 * each logged in by RESUME with a pre-issued token (no password, no scrypt).
 *
 * Requests from the parent (bench/chat-throughput.ts, bench/chat-capacity.ts):
 *   connect     open and log in every session (bounded number of handshakes at once)
 *   chatStart   (throughput) a ChatClientCore per session; wait until each synced once
 *   reconnectClosed (throughput) sessions closed since (dead links) RESUME and sync again
 *   closedLoop  (throughput) every sender keeps `window` messages in flight
 *   openLoop    (throughput) messages at a fixed total rate, paced every millisecond
 *   probe       (capacity) every session sends SYNC and must get its SYNC_BATCH
 *   status      sessions connected, closed, ...
 *
 * Throughput: users come in pairs (sender, receiver); the sender's messages go to its
 * receiver only, which gets them through the real PUSH -> SYNC -> SYNC_BATCH -> FIN flow
 * of ChatClientCore (the sender's core also syncs its own copies and the delivered
 * receipts, as a real client does). A message is complete when the sender has its
 * SEND_OK and the receiver has emitted it; send-to-delivery latency runs from
 * ChatClientCore.enqueue() to the receiver's 'message' event.
 */
import type { SessionConfig } from '../src/core/session/config.js'
import type { Session } from '../src/core/session/session.js'
import type { EndpointEvent } from '../src/core/endpoint.js'
import { ChatClientCore } from '../src/client/chat-core.js'
import { MemoryClientState } from '../src/client/client-state.js'
import type { UdpAddress } from '../src/io/address.js'
import { UdpEndpoint } from '../src/io/udp-endpoint.js'
import { ChatMessageType, decodeChatMessage, encodeChatMessage } from '../src/protocol/chat-codec.js'
import { decodeLoginMessage, encodeLoginMessage, isLoginMessage } from '../src/protocol/login-messages.js'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { type BenchUser, emitEvent, serve, sleep, udpDrops } from './chat-common.js'
import { CryptoRng } from '../src/io/crypto-rng.js'

/** Client message ids: one OS call per 4 KiB of them, not one per message. */
const messageIdRng = new CryptoRng()

export interface ClientConnectArgs {
  port: number
  serverKeyHex: string
  users: BenchUser[]
  sessionsPerSocket: number
  /** Handshakes + RESUMEs outstanding at once in this process. */
  concurrency: number
  sessionConfig: Partial<SessionConfig>
  /** Emit a progress event every this many logged-in sessions (0: never). */
  progressEvery?: number
}

export interface ConnectResult {
  ready: number
  failed: number
  retries: number
  elapsedMs: number
  /** CPU time of this client process while connecting. */
  clientCpuMs: number
  firstError?: string
}

export interface LoopResult {
  /** Messages completed (SEND_OK at the sender and delivered at the receiver) inside the measure window. */
  completed: number
  elapsedMs: number
  /** Messages issued inside the measure window (open loop: the offered load). */
  issued: number
  /** Send -> delivery, ms, of messages issued inside the measure window (open loop) or completed in it (closed loop). */
  latenciesMs: number[]
  /** Send -> SEND_OK, ms, same messages. */
  sendOkMs: number[]
  /** Mean send -> completion (SEND_OK and delivery), ms, of the messages completed in the measure window. */
  meanCompletionMs: number
  /** Sender pairs in this process. */
  pairs: number
  /** CPU time of this process inside the measure window. */
  clientCpuMs: number
  /** Still incomplete when the phase ended (drain included). */
  leftOver: number
  failedSends: number
  /**
   * Messages issued (open loop: due) inside the measure window that have no latency:
   * failed, skipped (the pair's session not ready or its in-flight cap reached) or still
   * incomplete after the drain. Their latency counts as infinite in the percentiles.
   */
  missedInWindow: number
  /** Sessions of this process still ready (logged in, synced) when the phase ended. */
  readySessions: number
  firstSendError?: string
  protocolErrors: number
}

interface Sess {
  index: number
  user: BenchUser
  ep: UdpEndpoint
  session: Session | undefined
  attempts: number
  ready: boolean
  closed: boolean
  onReady?: (ok: boolean, why?: string) => void
  core?: ChatClientCore
  /** capacity probe: SYNC_BATCH received */
  probed?: () => void
}

const endpoints: UdpEndpoint[] = []
const sessions: Sess[] = []
const bySession = new Map<Session, Sess>()
let server: UdpAddress | undefined
let serverKey: Uint8Array | undefined
let connectArgs: ClientConnectArgs | undefined
let closedCount = 0
let deadLinks = 0
const closeReasons = new Map<string, number>()

const onEvent = (e: EndpointEvent<UdpAddress>): void => {
  const s = bySession.get(e.session)
  if (s === undefined) return
  const ev = e.event
  switch (ev.type) {
    case 'connected':
      try {
        s.ep.send(e.session, 0, encodeLoginMessage({ type: 'RESUME', token: new Uint8Array(Buffer.from(s.user.tokenHex, 'hex')) }))
      } catch (err) {
        s.onReady?.(false, `RESUME not queued: ${(err as Error).message}`)
      }
      break
    case 'message':
      if (ev.streamId !== 0) break
      if (isLoginMessage(ev.data)) {
        const m = decodeLoginMessage(ev.data)
        if (m.type === 'RESUME_OK') {
          s.ready = true
          s.onReady?.(true)
        } else s.onReady?.(false, m.type === 'LOGIN_FAILED' ? `LOGIN_FAILED ${m.code}` : m.type)
        break
      }
      if (s.core !== undefined) s.core.handleMessage(ev.data)
      else if (s.probed !== undefined && ev.data[0] === ChatMessageType.SYNC_BATCH) {
        decodeChatMessage(ev.data)
        s.probed()
      }
      break
    case 'dead_link':
      deadLinks++
      break
    case 'closed': {
      bySession.delete(e.session)
      if (s.session !== e.session) break
      const why = `${ev.code}:${ev.reason}`
      closeReasons.set(why, (closeReasons.get(why) ?? 0) + 1)
      if (s.ready) {
        closedCount++
        s.closed = true
        s.ready = false
        s.core?.onDisconnected()
      } else s.onReady?.(false, `closed before RESUME_OK: ${why}`)
      break
    }
    default:
      break
  }
}

/** One attempt: open the session, RESUME; resolves true once RESUME_OK arrived. */
const attempt = (s: Sess): Promise<{ ok: boolean; why?: string }> =>
  new Promise((resolve) => {
    s.attempts++
    s.onReady = (ok, why) => {
      s.onReady = undefined
      resolve({ ok, why })
    }
    // No per-session config: the endpoint's sessionConfig object is shared by all.
    s.session = s.ep.connect(server!, undefined, { serverStaticPublicKey: serverKey! })
    bySession.set(s.session, s)
  })

const connect = async (a: ClientConnectArgs): Promise<ConnectResult> => {
  connectArgs = a
  server = { address: '127.0.0.1', port: a.port, family: 'IPv4' }
  serverKey = new Uint8Array(Buffer.from(a.serverKeyHex, 'hex'))
  const socketCount = Math.ceil(a.users.length / a.sessionsPerSocket)
  for (let i = endpoints.length; i < socketCount; i++) {
    const ep = await UdpEndpoint.open({ host: '127.0.0.1', port: 0, server: false, sessionConfig: a.sessionConfig, socketBufferBytes: 8 << 20 })
    ep.on('event', onEvent)
    endpoints.push(ep)
  }
  a.users.forEach((user, index) => {
    sessions.push({ index, user, ep: endpoints[Math.floor(index / a.sessionsPerSocket)], session: undefined, attempts: 0, ready: false, closed: false })
  })
  const started = performance.now()
  const cpu0 = process.cpuUsage()
  let next = 0
  let ready = 0
  let failed = 0
  let retries = 0
  let firstError: string | undefined
  const worker = async (): Promise<void> => {
    while (next < sessions.length) {
      const s = sessions[next++]
      for (;;) {
        const r = await attempt(s)
        if (r.ok) {
          ready++
          if (a.progressEvery && ready % a.progressEvery === 0) emitEvent({ event: 'progress', ready, elapsedMs: performance.now() - started })
          break
        }
        firstError ??= r.why
        if (s.attempts >= 3) {
          failed++
          break
        }
        retries++
        if (s.session !== undefined && s.session.isActive()) s.ep.closeSession(s.session)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, a.concurrency) }, worker))
  const cpu = process.cpuUsage(cpu0)
  return { ready, failed, retries, elapsedMs: performance.now() - started, clientCpuMs: (cpu.user + cpu.system) / 1000, firstError }
}

const loopDelay = monitorEventLoopDelay({ resolution: 10 })
loopDelay.enable()

const status = () => ({
  loopDelayMaxMs: loopDelay.max / 1e6,
  socketDrops: endpoints.reduce((n, ep) => n + udpDrops(ep.localAddress.port), 0),
  datagramsSent: endpoints.reduce((n, ep) => n + ep.stats.datagramsSent, 0),
  datagramsReceived: endpoints.reduce((n, ep) => n + ep.stats.datagramsReceived, 0),
  sessions: sessions.length,
  ready: sessions.filter((s) => s.ready).length,
  closed: closedCount,
  deadLinks,
  closeReasons: Object.fromEntries(closeReasons),
  rssBytes: process.memoryUsage().rss,
})

// ---- throughput -------------------------------------------------------------------------

interface Pair {
  sender: Sess
  receiver: Sess
  inFlight: number
  seq: number
}

interface Pending {
  pair: Pair
  t0: number
  okAt: number
  deliveredAt: number
}

const pairs: Pair[] = []
/** By body (unique: pair index and sequence number). */
const pending = new Map<string, Pending>()

type Phase = {
  measureFrom: number
  measureTo: number
  issuing: boolean
  /** closed loop: messages in flight per sender */
  window: number
  completed: number
  completionMsSum: number
  issued: number
  latenciesMs: number[]
  sendOkMs: number[]
  failedSends: number
  /** See LoopResult.missedInWindow. */
  missedInWindow: number
  firstSendError?: string
  /** closed loop: latency counted by completion time; open loop: by issue time */
  byIssue: boolean
  /** process.cpuUsage() at the start of the measure window, and its difference at the end */
  cpuAtMeasure?: NodeJS.CpuUsage
  cpuInMeasure?: NodeJS.CpuUsage
}
let phase: Phase | undefined
const BODY_PAD = '.'.repeat(32)

const complete = (p: Pending, key: string): void => {
  pending.delete(key)
  p.pair.inFlight--
  const ph = phase
  if (ph === undefined) return
  const doneAt = Math.max(p.okAt, p.deliveredAt)
  const inWindow = ph.byIssue ? p.t0 >= ph.measureFrom && p.t0 < ph.measureTo : doneAt >= ph.measureFrom && doneAt < ph.measureTo
  if (doneAt >= ph.measureFrom && doneAt < ph.measureTo) {
    ph.completed++
    ph.completionMsSum += doneAt - p.t0
  }
  if (inWindow) {
    ph.latenciesMs.push(p.deliveredAt - p.t0)
    ph.sendOkMs.push(p.okAt - p.t0)
  }
  if (ph.issuing && ph.window > 0) pump(p.pair)
}

/** `scheduledAt`: the open loop's due time, so a late tick's own delay counts (no coordinated omission). */
const sendOne = (pair: Pair, scheduledAt?: number): void => {
  const ph = phase!
  // A short text message: "<pair>:<seq>" padded to 32 characters.
  const body = `${pair.sender.index}:${pair.seq++}${BODY_PAD}`.slice(0, 32)
  const p: Pending = { pair, t0: scheduledAt ?? performance.now(), okAt: 0, deliveredAt: 0 }
  if (p.t0 >= ph.measureFrom && p.t0 < ph.measureTo) ph.issued++
  pending.set(body, p)
  pair.inFlight++
  pair.sender.core!.send({ kind: 'user', userId: pair.receiver.user.userId }, body).then(
    () => {
      p.okAt = performance.now()
      if (p.deliveredAt > 0) complete(p, body)
    },
    (err: Error) => {
      phase!.failedSends++
      if (phase!.byIssue && p.t0 >= phase!.measureFrom && p.t0 < phase!.measureTo) phase!.missedInWindow++
      phase!.firstSendError ??= err.message
      if (pending.delete(body)) pair.inFlight--
    },
  )
}

const pump = (pair: Pair): void => {
  while (phase!.issuing && pair.inFlight < phase!.window && pair.sender.ready) sendOne(pair)
}

const chatStart = async (): Promise<{ synced: number; elapsedMs: number }> => {
  const started = performance.now()
  let synced = 0
  const all: Array<Promise<void>> = []
  for (const s of sessions) {
    if (!s.ready || s.session === undefined) continue
    const core = new ChatClientCore({
      send: (bytes) => {
        if (!s.ready || s.session === undefined) throw new Error('not connected')
        s.ep.send(s.session, 0, bytes) // the current session: reconnectClosed replaces it
      },
      state: new MemoryClientState(),
      randomBytes: (n) => messageIdRng.bytes(n),
      nowMs: () => Date.now(),
    })
    s.core = core
    all.push(new Promise<void>((resolve) => core.once('synced', () => {
      synced++
      resolve()
    })))
  }
  for (let i = 0; i + 1 < sessions.length; i += 2) {
    const sender = sessions[i]
    const receiver = sessions[i + 1]
    if (sender.core === undefined || receiver.core === undefined) continue
    const pair: Pair = { sender, receiver, inFlight: 0, seq: 0 }
    pairs.push(pair)
    receiver.core.on('message', (entry) => {
      if (entry.fromUserId !== sender.user.userId) return
      const p = pending.get(entry.body)
      if (p === undefined || p.deliveredAt > 0) return
      p.deliveredAt = performance.now()
      if (p.okAt > 0) complete(p, entry.body)
    })
  }
  for (const s of sessions) s.core?.onConnected({ userId: s.user.userId, deviceId: s.user.deviceId })
  await Promise.race([Promise.all(all), sleep(30_000)])
  return { synced, elapsedMs: performance.now() - started }
}

/**
 * Between phases: sessions the server closed (a dead link while overloaded) log in again
 * with RESUME and sync, as the chat client would, so that a later phase runs with every
 * pair. Returns how many came back and how many did not.
 */
const reconnectClosed = async (): Promise<{ reconnected: number; failed: number }> => {
  let reconnected = 0
  let failed = 0
  for (const s of sessions.filter((x) => x.closed && x.core !== undefined)) {
    s.closed = false
    s.attempts = 0
    let ok = false
    while (!ok && s.attempts < 3) ok = (await attempt(s)).ok
    if (!ok) {
      failed++
      s.closed = true
      continue
    }
    const synced = new Promise<void>((resolve) => s.core!.once('synced', () => resolve()))
    s.core!.onConnected({ userId: s.user.userId, deviceId: s.user.deviceId })
    await Promise.race([synced, sleep(10_000)])
    reconnected++
  }
  return { reconnected, failed }
}

const newPhase = (window: number, warmupMs: number, measureMs: number, byIssue: boolean): Phase => {
  const now = performance.now()
  const ph: Phase = {
    measureFrom: now + warmupMs,
    measureTo: now + warmupMs + measureMs,
    issuing: true,
    window,
    completed: 0,
    completionMsSum: 0,
    issued: 0,
    latenciesMs: [],
    sendOkMs: [],
    failedSends: 0,
    missedInWindow: 0,
    byIssue,
  }
  setTimeout(() => {
    ph.cpuAtMeasure = process.cpuUsage()
    setTimeout(() => {
      ph.cpuInMeasure = process.cpuUsage(ph.cpuAtMeasure)
    }, measureMs)
  }, warmupMs)
  return ph
}

/** Stop issuing, wait (bounded) for what is in flight, report. */
const finish = async (ph: Phase, drainMs: number): Promise<LoopResult> => {
  ph.issuing = false
  const until = performance.now() + drainMs
  while (pending.size > 0 && performance.now() < until) await sleep(20)
  const cpu = ph.cpuInMeasure ?? { user: NaN, system: NaN }
  const leftOver = pending.size
  // Forget stragglers so the next phase starts clean.
  for (const p of pending.values()) {
    p.pair.inFlight--
    if (ph.byIssue && p.t0 >= ph.measureFrom && p.t0 < ph.measureTo) ph.missedInWindow++
  }
  pending.clear()
  phase = undefined
  return {
    completed: ph.completed,
    meanCompletionMs: ph.completionMsSum / Math.max(1, ph.completed),
    pairs: pairs.length,
    elapsedMs: ph.measureTo - ph.measureFrom,
    issued: ph.issued,
    latenciesMs: ph.latenciesMs,
    sendOkMs: ph.sendOkMs,
    leftOver,
    failedSends: ph.failedSends,
    missedInWindow: ph.missedInWindow,
    readySessions: sessions.filter((x) => x.ready).length,
    firstSendError: ph.firstSendError,
    clientCpuMs: (cpu.user + cpu.system) / 1000,
    protocolErrors: sessions.reduce((n, s) => n + (s.core?.protocolErrors ?? 0), 0),
  }
}

const closedLoop = async (a: { window: number; warmupMs: number; measureMs: number; drainMs: number }): Promise<LoopResult> => {
  const ph = (phase = newPhase(a.window, a.warmupMs, a.measureMs, false))
  for (const pair of pairs) pump(pair)
  await sleep(a.warmupMs + a.measureMs)
  return finish(ph, a.drainMs)
}

const openLoop = async (a: { ratePerSecond: number; warmupMs: number; measureMs: number; drainMs: number; maxInFlightPerPair: number }): Promise<LoopResult> => {
  const ph = (phase = newPhase(0, a.warmupMs, a.measureMs, true))
  const start = performance.now()
  const end = ph.measureTo
  let issued = 0
  let next = 0
  let skipped = 0
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now()
      const due = Math.floor(((Math.min(now, end) - start) * a.ratePerSecond) / 1000) - issued
      for (let i = 0; i < due; i++) {
        const pair = pairs[next]
        next = (next + 1) % pairs.length
        const scheduledAt = start + (issued * 1000) / a.ratePerSecond
        issued++
        if (pair.inFlight >= a.maxInFlightPerPair || !pair.sender.ready) {
          skipped++
          if (scheduledAt >= ph.measureFrom && scheduledAt < ph.measureTo) {
            ph.issued++
            ph.missedInWindow++
          }
        } else sendOne(pair, scheduledAt)
      }
      if (now >= end) resolve()
      else setTimeout(tick, 1)
    }
    tick()
  })
  const r = await finish(ph, a.drainMs)
  if (skipped > 0) r.firstSendError ??= `${skipped} sends skipped (pair had ${a.maxInFlightPerPair} in flight)`
  return r
}

// ---- capacity ---------------------------------------------------------------------------

/** Every ready session sends SYNC(0) and must get a SYNC_BATCH back within timeoutMs. */
const probe = async (a: { timeoutMs: number; concurrency: number }): Promise<{ answered: number; asked: number; elapsedMs: number }> => {
  const started = performance.now()
  const targets = sessions.filter((s) => s.ready && s.session !== undefined)
  let answered = 0
  let next = 0
  const syncBytes = encodeChatMessage({ type: 'SYNC', afterVersion: 0, maxEntries: 1 })
  const worker = async (): Promise<void> => {
    while (next < targets.length) {
      const s = targets[next++]
      const ok = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), a.timeoutMs)
        s.probed = () => {
          clearTimeout(timer)
          resolve(true)
        }
        try {
          s.ep.send(s.session!, 0, syncBytes)
        } catch {
          clearTimeout(timer)
          resolve(false)
        }
      })
      s.probed = undefined
      if (ok) answered++
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, a.concurrency) }, worker))
  return { answered, asked: targets.length, elapsedMs: performance.now() - started }
}

serve(
  {
    connect,
    status,
    chatStart,
    reconnectClosed,
    closedLoop,
    openLoop,
    probe,
  },
  async () => {
    for (const s of sessions) s.core?.shutdown()
    // Closing 100k sessions gracefully is slow and not measured: just drop the sockets.
    await Promise.race([Promise.all(endpoints.map((ep) => ep.close())), sleep(2000)])
    void connectArgs
  },
)
