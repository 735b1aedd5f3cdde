/**
 * Wires the pieces together: clock + scheduler, decision engine, UDP proxy, TCP relay,
 * timed script, pcapng capture and HTTP API. The CLI is a thin layer over this, and
 * tests call it directly (with a ManualClock when they need virtual time).
 */
import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { SeededRng } from '../../src/core/rng.js'
import { ProxyCapture } from './capture.js'
import type { ResolvedProfile } from './config.js'
import { HttpApi } from './http-api.js'
import type { Endpoint } from './ip.js'
import { LossyLink } from './link.js'
import { silentLogger, type Logger } from './logger.js'
import { RealClock, Scheduler, type Clock } from './scheduler.js'
import { ScriptRunner } from './script.js'
import { TcpProxy } from './tcp-proxy.js'
import { UdpProxy } from './udp-proxy.js'
import type { HostPort } from './units.js'

export interface LossyLinkAppOptions {
  profile: ResolvedProfile
  seed: number
  udp?: { listen: HostPort; upstream: HostPort }
  tcp?: { listen: HostPort; upstream: HostPort }
  http?: HostPort
  pcapPath?: string
  logger?: Logger
  /** Defaults to the real clock; tests pass a ManualClock. */
  clock?: Clock & { originEpochMs?: number }
  idleTimeoutMs?: number
  socketBufferBytes?: number
}

export interface LossyLinkApp {
  seed: number
  link: LossyLink
  scheduler: Scheduler
  udp?: UdpProxy
  tcp?: TcpProxy
  script?: ScriptRunner
  capture?: ProxyCapture
  addresses: { udp?: Endpoint; tcp?: Endpoint; http?: Endpoint }
  state(): unknown
  stats(): unknown
  resetStats(): void
  close(): Promise<void>
}

const resolveHost = async (hp: HostPort): Promise<HostPort> =>
  isIP(hp.host) ? hp : { host: (await lookup(hp.host)).address, port: hp.port }

export const startLossyLink = async (options: LossyLinkAppOptions): Promise<LossyLinkApp> => {
  const log = options.logger ?? silentLogger()
  const clock = options.clock ?? new RealClock()
  const scheduler = new Scheduler(clock)
  const { profile } = options
  const link = new LossyLink({ seed: options.seed, profile })
  const closers: Array<() => Promise<void> | void> = [() => scheduler.close()]
  const app: LossyLinkApp = {
    seed: link.seed,
    link,
    scheduler,
    addresses: {},
    state: () => ({
      seed: link.seed,
      uptimeMs: Math.round(clock.now()),
      link: link.state(clock.now()),
      nat: app.udp?.natConfig ?? null,
      clients: app.udp?.clients() ?? [],
      tcp: app.tcp?.state() ?? null,
      script: app.script?.state() ?? null,
      capture: app.capture ? { packets: app.capture.packets } : null,
      addresses: app.addresses,
    }),
    stats: () => ({
      uptimeMs: Math.round(clock.now()),
      up: link.stats.up.toJSON(),
      down: link.stats.down.toJSON(),
      tcp: app.tcp?.state().stats ?? null,
    }),
    resetStats: () => {
      link.resetStats()
      app.tcp?.resetStats()
    },
    close: async () => {
      // Last opened, first closed; each closer runs once even if close() is called twice.
      while (closers.length > 0) await closers.pop()!()
    },
  }
  try {
    if (options.pcapPath) {
      const capture = new ProxyCapture({ path: options.pcapPath, originEpochMs: clock.originEpochMs ?? Date.now(), now: () => clock.now() })
      app.capture = capture
      closers.push(() => capture.close())
    }
    if (options.udp) {
      const udp = new UdpProxy({
        listen: options.udp.listen,
        upstream: await resolveHost(options.udp.upstream),
        link,
        scheduler,
        logger: log,
        nat: profile.nat,
        capture: app.capture,
        idleTimeoutMs: options.idleTimeoutMs,
        socketBufferBytes: options.socketBufferBytes,
      })
      app.addresses.udp = await udp.start()
      app.udp = udp
      closers.push(() => udp.close())
    }
    if (options.tcp) {
      const tcp = new TcpProxy({
        listen: options.tcp.listen,
        upstream: await resolveHost(options.tcp.upstream),
        scheduler,
        logger: log,
        config: profile.tcp,
        // A generator of its own, so TCP jitter never shifts the UDP decisions.
        rng: new SeededRng((options.seed ^ 0x7c9) >>> 0),
      })
      app.addresses.tcp = await tcp.start()
      app.tcp = tcp
      closers.push(() => tcp.close())
    }
    if (profile.script) {
      const script = new ScriptRunner({ script: profile.script, link, scheduler, logger: log })
      app.script = script
      script.start()
      closers.push(() => script.stop())
    }
    if (options.http) {
      const api = new HttpApi(app, log)
      app.addresses.http = await api.start(options.http)
      closers.push(() => api.close())
    }
  } catch (err) {
    await app.close()
    throw err
  }
  return app
}
