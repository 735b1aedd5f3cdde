/**
 * Command-line flags -> configuration layers. Every flag is checked here, and a bad
 * one raises LossyLinkConfigError naming it (the CLI prints it and exits 2).
 */
import { randomInt } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { parseProfileLayer, type ProfileLayer } from './config.js'
import { LossyLinkConfigError } from './errors.js'
import { PRESETS } from './presets.js'
import type { Json } from './schema.js'
import type { TcpLayer } from './tcp-config.js'
import {
  parseBytes, parseDurationMs, parseHostPort, parsePeriodic, parseProbability, parseRateBitsPerSecond, type HostPort,
} from './units.js'

const IMPAIRMENT_FLAGS = [
  'loss', 'gemodel', 'markov4', 'delay', 'jitter', 'distribution', 'duplicate', 'corrupt', 'rate', 'queue', 'mtu',
  'blackout-every',
] as const

type Spec = { type: 'string' | 'boolean'; multiple?: boolean; short?: string }
const optionSpecs = (): Record<string, Spec> => {
  const specs: Record<string, Spec> = {
    listen: { type: 'string', short: 'l' },
    upstream: { type: 'string', short: 'u' },
    preset: { type: 'string', short: 'p' },
    profile: { type: 'string' },
    script: { type: 'string' },
    seed: { type: 'string' },
    http: { type: 'string' },
    pcap: { type: 'string' },
    'block-udp': { type: 'boolean' },
    'block-every': { type: 'string' },
    'nat-rebind': { type: 'string' },
    'nat-timeout': { type: 'string' },
    'idle-timeout': { type: 'string' },
    'tcp-listen': { type: 'string' },
    'tcp-upstream': { type: 'string' },
    'tcp-delay': { type: 'string' },
    'tcp-jitter': { type: 'string' },
    'tcp-rate': { type: 'string' },
    'tcp-stall-every': { type: 'string' },
    'tcp-reset-after': { type: 'string' },
    'tcp-reset-after-bytes': { type: 'string' },
    'tcp-blackhole': { type: 'boolean' },
    'log-level': { type: 'string' },
    'list-presets': { type: 'boolean' },
    'print-config': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  }
  for (const f of IMPAIRMENT_FLAGS) for (const prefix of ['', 'up-', 'down-']) specs[prefix + f] = { type: 'string' }
  for (const prefix of ['', 'up-', 'down-']) {
    specs[`${prefix}reorder`] = { type: 'boolean' }
    specs[`${prefix}blackout`] = { type: 'string', multiple: true }
  }
  return specs
}

export const USAGE = `usage: pigeon-lossy-link --listen HOST:PORT --upstream HOST:PORT [options]

Between clients and a UDP server (and/or a TCP relay), with repeatable impairments.

  -l, --listen HOST:PORT        UDP address clients send to
  -u, --upstream HOST:PORT      the real UDP server
  -p, --preset NAME             ${[...PRESETS.keys()].join(', ')}
      --profile FILE.json       profile file (preset, both, up, down, udpBlock, nat, tcp, script)
      --script FILE.json        timed script {loop, steps: [{durationMs, preset, ...}]}
      --seed N                  random seed (printed at start; default: random)
      --http HOST:PORT          HTTP control API (e.g. 127.0.0.1:8900)
      --pcap FILE.pcapng        capture both sides of the proxy

Impairments (both directions; prefix with up- or down- for one direction):
      --loss 5%                 Bernoulli loss
      --gemodel P,R[,H,K]       Gilbert-Elliott: P good->bad, R bad->good, loss in bad (1), in good (0)
      --markov4 P13,P31[,P32,P23,P14]   netem 4-state Markov loss
      --delay 100ms  --jitter 20ms  --distribution uniform|normal|pareto|paretonormal  --reorder
      --duplicate 1%  --corrupt 0.1%  --rate 750kbit  --queue 64kb  --mtu 1200
      --blackout-every 60s/12s[@30s]    periodic total loss
      --blackout 10s+5s         one blackout window (start+duration), repeatable
      --block-udp               start with UDP blocked (unblock via POST /unblock)
      --block-every 60s/10s[@5s]        UDP blocked on a schedule
      --nat-rebind 30s          client's apparent source port changes this often
      --nat-timeout 30s         inbound dropped after this much outbound silence
      --idle-timeout 5m         forget client mappings idle this long

TCP relay (toxiproxy-like):
      --tcp-listen HOST:PORT --tcp-upstream HOST:PORT
      --tcp-delay 200ms --tcp-jitter 50ms --tcp-rate 1mbit --tcp-stall-every 30s/12s
      --tcp-reset-after 60s --tcp-reset-after-bytes 1mb --tcp-blackhole

      --log-level info          pino level (trace logs every datagram)
      --list-presets            print the presets and exit
      --print-config            print the resolved configuration and exit
`

const setDelayField = (layer: Json, field: string, value: unknown): void => {
  layer.delay = { ...(layer.delay as Json | undefined), [field]: value }
}

const parseProbabilityList = (flag: string, text: string, names: string[], required: number): Json => {
  const parts = text.split(',').map((s) => s.trim())
  if (parts.length < required || parts.length > names.length) {
    throw new LossyLinkConfigError(flag, `expected ${required === names.length ? names.length : `${required} to ${names.length}`} comma-separated values (${names.join(',')})`)
  }
  const out: Json = {}
  parts.forEach((p, i) => { out[names[i]] = parseProbability(`${flag} ${names[i]}`, p) })
  return out
}

const applyImpairmentFlag = (layer: Json, flag: string, name: string, value: string | boolean | string[]): void => {
  const v = value as string
  switch (name) {
    case 'loss': layer.loss = { model: 'bernoulli', probability: parseProbability(flag, v) }; break
    case 'gemodel': layer.loss = { model: 'gilbert-elliott', ...parseProbabilityList(flag, v, ['p', 'r', 'lossInBad', 'lossInGood'], 2) }; break
    case 'markov4': layer.loss = { model: 'markov4', ...parseProbabilityList(flag, v, ['p13', 'p31', 'p32', 'p23', 'p14'], 2) }; break
    case 'delay': setDelayField(layer, 'baseMs', parseDurationMs(flag, v)); break
    case 'jitter': setDelayField(layer, 'jitterMs', parseDurationMs(flag, v)); break
    case 'distribution': setDelayField(layer, 'distribution', v); break
    case 'reorder': setDelayField(layer, 'reorder', value === true); break
    case 'duplicate': layer.duplicateProbability = parseProbability(flag, v); break
    case 'corrupt': layer.corruptProbability = parseProbability(flag, v); break
    case 'rate': layer.rateBitsPerSecond = parseRateBitsPerSecond(flag, v); break
    case 'queue': layer.queueBytes = parseBytes(flag, v); break
    case 'mtu': layer.mtuBytes = parseBytes(flag, v); break
    case 'blackout-every': layer.blackoutEvery = parsePeriodic(flag, v); break
    case 'blackout':
      layer.blackouts = (value as string[]).map((w) => {
        const m = /^([^+]+)\+(.+)$/.exec(w)
        if (!m) throw new LossyLinkConfigError(flag, `"${w}" should be START+DURATION, e.g. 10s+5s`)
        return { startMs: parseDurationMs(flag, m[1]), durationMs: parseDurationMs(flag, m[2]) }
      })
      break
  }
}

const readJsonFile = (flag: string, path: string): unknown => {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new LossyLinkConfigError(flag, `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new LossyLinkConfigError(flag, `${path} is not valid JSON: ${(err as Error).message}`)
  }
}

const inFile = (path: string, fn: () => ProfileLayer): ProfileLayer => {
  try {
    return fn()
  } catch (err) {
    if (err instanceof LossyLinkConfigError) throw new LossyLinkConfigError(err.field ? `${path}: ${err.field}` : path, err.field ? err.message.slice(err.field.length + 2) : err.message)
    throw err
  }
}

export interface CliConfig {
  seed: number
  seedGiven: boolean
  layers: ProfileLayer[]
  udp?: { listen: HostPort; upstream: HostPort }
  tcp?: { listen: HostPort; upstream: HostPort }
  http?: HostPort
  pcapPath?: string
  blockUdp: boolean
  logLevel: string
  idleTimeoutMs?: number
  mode: 'run' | 'help' | 'list-presets' | 'print-config'
}

/** Turn argv into a configuration; throws LossyLinkConfigError with the flag named. */
export const parseCli = (argv: string[]): CliConfig => {
  let parsed
  try {
    parsed = parseArgs({ args: argv, options: optionSpecs(), strict: true, allowPositionals: false })
  } catch (err) {
    throw new LossyLinkConfigError('', (err as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, ''))
  }
  const v = parsed.values as Record<string, string | boolean | string[] | undefined>
  const str = (k: string) => v[k] as string | undefined
  const mode = v.help ? 'help' : v['list-presets'] ? 'list-presets' : v['print-config'] ? 'print-config' : 'run'

  const layers: ProfileLayer[] = []
  if (str('profile')) {
    const raw = readJsonFile('--profile', str('profile')!)
    layers.push(inFile(str('profile')!, () => parseProfileLayer(raw)))
  }
  if (str('script')) {
    const raw = readJsonFile('--script', str('script')!)
    layers.push(inFile(str('script')!, () => parseProfileLayer(Array.isArray(raw) ? raw : { script: raw })))
  }
  const cli: ProfileLayer = {}
  if (str('preset')) Object.assign(cli, parseProfileLayer({ preset: str('preset') }, ''))
  const both: Json = {}
  const up: Json = {}
  const down: Json = {}
  for (const [key, value] of Object.entries(v)) {
    if (value === undefined) continue
    const m = /^(up-|down-)?(.+)$/.exec(key)!
    const name = m[2]
    if (!(IMPAIRMENT_FLAGS as readonly string[]).includes(name) && name !== 'reorder' && name !== 'blackout') continue
    applyImpairmentFlag(m[1] === 'up-' ? up : m[1] === 'down-' ? down : both, `--${key}`, name, value)
  }
  if (Object.keys(both).length) cli.both = both
  if (Object.keys(up).length) cli.up = up
  if (Object.keys(down).length) cli.down = down
  if (str('block-every')) cli.udpBlock = { every: parsePeriodic('--block-every', str('block-every')!) }
  const nat: Json = {}
  if (str('nat-rebind')) nat.rebindEveryMs = parseDurationMs('--nat-rebind', str('nat-rebind')!)
  if (str('nat-timeout')) nat.bindingTimeoutMs = parseDurationMs('--nat-timeout', str('nat-timeout')!)
  for (const [k, flag] of [['rebindEveryMs', '--nat-rebind'], ['bindingTimeoutMs', '--nat-timeout']] as const) {
    if (nat[k] === 0) throw new LossyLinkConfigError(flag, 'must be positive')
  }
  if (Object.keys(nat).length) cli.nat = nat
  const tcpDir: Json = {}
  if (str('tcp-delay')) tcpDir.delayMs = parseDurationMs('--tcp-delay', str('tcp-delay')!)
  if (str('tcp-jitter')) tcpDir.jitterMs = parseDurationMs('--tcp-jitter', str('tcp-jitter')!)
  if (str('tcp-rate')) tcpDir.rateBitsPerSecond = parseRateBitsPerSecond('--tcp-rate', str('tcp-rate')!)
  if (str('tcp-stall-every')) tcpDir.stallEvery = parsePeriodic('--tcp-stall-every', str('tcp-stall-every')!)
  const tcp: TcpLayer = {}
  if (Object.keys(tcpDir).length) tcp.both = tcpDir
  if (str('tcp-reset-after')) tcp.resetAfterMs = parseDurationMs('--tcp-reset-after', str('tcp-reset-after')!)
  if (str('tcp-reset-after-bytes')) tcp.resetAfterBytes = parseBytes('--tcp-reset-after-bytes', str('tcp-reset-after-bytes')!)
  if (v['tcp-blackhole']) tcp.blackhole = true
  if (Object.keys(tcp).length) cli.tcp = tcp
  layers.push(cli)

  let seed: number
  const seedGiven = str('seed') !== undefined
  if (seedGiven) {
    const text = str('seed')!.trim()
    if (!/^\d+$/.test(text) || Number(text) > 0xffffffff) throw new LossyLinkConfigError('--seed', `"${text}" is not an integer in 0..4294967295`)
    seed = Number(text)
  } else seed = randomInt(0, 2 ** 32 - 1)

  const pair = (listenFlag: string, upstreamFlag: string) => {
    const l = str(listenFlag)
    const u = str(upstreamFlag)
    if (!l && !u) return undefined
    if (!l || !u) throw new LossyLinkConfigError(`--${l ? upstreamFlag : listenFlag}`, `required together with --${l ? listenFlag : upstreamFlag}`)
    const upstream = parseHostPort(`--${upstreamFlag}`, u, '127.0.0.1')
    if (upstream.port === 0) throw new LossyLinkConfigError(`--${upstreamFlag}`, 'port 0 is not a server port')
    return { listen: parseHostPort(`--${listenFlag}`, l), upstream }
  }
  const config: CliConfig = {
    seed,
    seedGiven,
    layers,
    udp: pair('listen', 'upstream'),
    tcp: pair('tcp-listen', 'tcp-upstream'),
    blockUdp: v['block-udp'] === true,
    logLevel: str('log-level') ?? 'info',
    mode,
  }
  if (str('http')) config.http = parseHostPort('--http', str('http')!, '127.0.0.1')
  if (str('pcap')) config.pcapPath = str('pcap')
  if (str('idle-timeout')) config.idleTimeoutMs = parseDurationMs('--idle-timeout', str('idle-timeout')!)
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']
  if (!levels.includes(config.logLevel)) throw new LossyLinkConfigError('--log-level', `expected one of ${levels.join(', ')}`)
  if (mode === 'run' && !config.udp && !config.tcp) {
    throw new LossyLinkConfigError('--listen', 'nothing to do: give --listen and --upstream (UDP) and/or --tcp-listen and --tcp-upstream')
  }
  return config
}

