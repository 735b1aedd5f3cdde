/**
 * pigeon-lossy-link: put a bad network between a client and a server.
 *
 *   pigeon-lossy-link --listen 0.0.0.0:9000 --upstream 127.0.0.1:7000 --preset 3g --loss 5% --seed 42
 *
 * Exit codes: 0 normal stop (SIGINT/SIGTERM), 1 runtime failure, 2 bad configuration.
 */
import { pathToFileURL } from 'node:url'
import { startLossyLink, type LossyLinkApp } from './app.js'
import { parseCli, USAGE, type CliConfig } from './cli-args.js'
import { resolveProfile } from './config.js'
import { LossyLinkConfigError } from './errors.js'
import { createLogger } from './logger.js'
import { PRESETS } from './presets.js'

export { parseCli, USAGE, type CliConfig }

const presetTable = (): string =>
  [...PRESETS.values()].map((p) => `${p.name.padEnd(17)} ${p.description}\n${''.padEnd(17)} source: ${p.source}`).join('\n') + '\n'

export const main = async (argv: string[]): Promise<number> => {
  let config: CliConfig
  let profile
  try {
    config = parseCli(argv)
    profile = resolveProfile(config.layers)
  } catch (err) {
    if (err instanceof LossyLinkConfigError) {
      process.stderr.write(`lossy-link: configuration error: ${err.message}\n(run with --help for usage)\n`)
      return 2
    }
    throw err
  }
  if (config.mode === 'help') {
    process.stdout.write(USAGE)
    return 0
  }
  if (config.mode === 'list-presets') {
    process.stdout.write(presetTable())
    return 0
  }
  if (config.mode === 'print-config') {
    process.stdout.write(JSON.stringify({ seed: config.seed, ...profile }, null, 2) + '\n')
    return 0
  }
  const log = createLogger({ level: config.logLevel })
  process.stderr.write(`lossy-link: seed ${config.seed} (replay with --seed ${config.seed})\n`)
  log.info({ seed: config.seed, seedGiven: config.seedGiven, preset: profile.preset ?? null }, 'seed')
  let app: LossyLinkApp
  try {
    app = await startLossyLink({
      profile,
      seed: config.seed,
      udp: config.udp,
      tcp: config.tcp,
      http: config.http,
      pcapPath: config.pcapPath,
      logger: log,
      idleTimeoutMs: config.idleTimeoutMs,
    })
  } catch (err) {
    if (err instanceof LossyLinkConfigError) {
      process.stderr.write(`lossy-link: configuration error: ${err.message}\n`)
      return 2
    }
    process.stderr.write(`lossy-link: cannot start: ${(err as Error).message}\n`)
    log.error({ err }, 'cannot start')
    return 1
  }
  if (config.blockUdp) app.link.setBlocked(['up', 'down'], true)
  const a = app.addresses
  const fmt = (e?: { address: string; port: number }) => (e ? `${e.address.includes(':') ? `[${e.address}]` : e.address}:${e.port}` : null)
  log.info({ udp: fmt(a.udp), udpUpstream: config.udp ? fmt({ address: config.udp.upstream.host, port: config.udp.upstream.port }) : null, tcp: fmt(a.tcp), http: fmt(a.http), pcap: config.pcapPath ?? null, up: profile.up, down: profile.down }, 'listening')
  process.stderr.write(
    `lossy-link: ${a.udp ? `udp ${fmt(a.udp)} -> ${config.udp!.upstream.host}:${config.udp!.upstream.port}` : ''}` +
      `${a.tcp ? ` tcp ${fmt(a.tcp)} -> ${config.tcp!.upstream.host}:${config.tcp!.upstream.port}` : ''}` +
      `${a.http ? ` api http://${fmt(a.http)}/` : ''}\n`,
  )
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal, stats: app.stats() }, 'stopping')
      resolve()
    }
    process.once('SIGINT', () => stop('SIGINT'))
    process.once('SIGTERM', () => stop('SIGTERM'))
  })
  await app.close()
  return 0
}

const isEntry = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href
if (isEntry) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`lossy-link: ${(err as Error).stack ?? String(err)}\n`)
      process.exit(1)
    },
  )
}
