/**
 * Profiles: what a tester writes (JSON file, CLI flags, HTTP body) and how it resolves
 * into one ImpairmentConfig per direction plus the tool's own link features (UDP
 * blocking, NAT behaviour, TCP relay impairments, timed scripts).
 *
 * Layering: preset -> `both` -> `up` / `down`, then the next layer (CLI over file).
 * Values may carry units ("5%", "250ms", "750kbit", "64kb"); `null` removes a key set
 * by a lower layer. Unknown keys are errors, so a typo never silently does nothing.
 */
import { ConfigError, LinkImpairment } from '../../src/sim/models/index.js'
import type { DelayConfig, ImpairmentConfig, LossConfig } from '../../src/sim/models/index.js'
import { SeededRng } from '../../src/core/rng.js'
import { LossyLinkConfigError } from './errors.js'
import { getPreset, presetNames } from './presets.js'
import { parseBytes, parseDurationMs, parseProbability, parseRateBitsPerSecond } from './units.js'
import { checkKeys, inPeriodic, isObject, parseBool, parsePeriodicValue, parseWindows, type Json, type Periodic, type Window } from './schema.js'

export type { Periodic, Window }
import { parseTcpLayer, resolveTcp, type TcpConfig, type TcpLayer } from './tcp-config.js'

export type Direction = 'up' | 'down'
export const DIRECTIONS: readonly Direction[] = ['up', 'down']


/** UDP blocked entirely: on demand (`blocked`), periodically, or in fixed windows. */
export interface UdpBlockConfig { blocked?: boolean; every?: Periodic; windows?: Window[] }

export interface NatConfig {
  /** The client's apparent source port changes this often (per client mapping). */
  rebindEveryMs?: number
  /** Inbound datagrams are dropped after this much outbound silence; the next outbound gets a new port. */
  bindingTimeoutMs?: number
}

/** The link state one moment of a script (or a whole run) asks for. */
export interface LinkState {
  up: ImpairmentConfig
  down: ImpairmentConfig
  udpBlock: UdpBlockConfig
  /** Total loss in both directions, counted as `blackout` (a script step "tunnel"). */
  blackout: boolean
}

export interface ScriptStep extends LinkState { label: string; durationMs: number }
export interface Script { loop: boolean; steps: ScriptStep[] }

export interface ResolvedProfile extends LinkState {
  preset?: string
  nat: NatConfig
  tcp: TcpConfig
  script?: Script
}

/** One parsed layer (a file, the CLI flags...), values already normalised. */
export interface ProfileLayer {
  preset?: string
  both?: Partial<Record<keyof ImpairmentConfig, unknown>>
  up?: Partial<Record<keyof ImpairmentConfig, unknown>>
  down?: Partial<Record<keyof ImpairmentConfig, unknown>>
  udpBlock?: UdpBlockConfig
  blackout?: boolean
  nat?: NatConfig
  tcp?: TcpLayer
  script?: Script
}


const IMPAIRMENT_KEYS = [
  'loss', 'delay', 'duplicateProbability', 'corruptProbability', 'rateBitsPerSecond', 'queueBytes',
  'mtuBytes', 'blackouts', 'blackoutEvery', 'blocked',
] as const
const LOSS_FIELDS: Record<string, readonly string[]> = {
  bernoulli: ['probability'],
  'gilbert-elliott': ['p', 'r', 'lossInBad', 'lossInGood'],
  markov4: ['p13', 'p31', 'p32', 'p23', 'p14'],
}
const DISTRIBUTIONS = ['uniform', 'normal', 'pareto', 'paretonormal']

const parseLoss = (path: string, raw: unknown): LossConfig => {
  if (typeof raw === 'string' || typeof raw === 'number') return { model: 'bernoulli', probability: parseProbability(path, raw) }
  if (!isObject(raw)) throw new LossyLinkConfigError(path, 'expected "5%" or an object with a "model"')
  const model = raw.model ?? 'bernoulli'
  const fields = typeof model === 'string' ? LOSS_FIELDS[model] : undefined
  if (!fields) throw new LossyLinkConfigError(`${path}.model`, `unknown loss model ${JSON.stringify(model)}; expected ${Object.keys(LOSS_FIELDS).join(', ')}`)
  checkKeys(path, raw, ['model', ...fields])
  const out: Json = { model }
  for (const f of fields) if (raw[f] !== undefined) out[f] = parseProbability(`${path}.${f}`, raw[f] as string | number)
  for (const f of fields.slice(0, model === 'bernoulli' ? 1 : 2)) {
    if (out[f] === undefined) throw new LossyLinkConfigError(`${path}.${f}`, `required by the ${model} model`)
  }
  return out as unknown as LossConfig
}

const parseDelay = (path: string, raw: unknown): Partial<DelayConfig> => {
  if (typeof raw === 'string' || typeof raw === 'number') return { baseMs: parseDurationMs(path, raw) }
  if (!isObject(raw)) throw new LossyLinkConfigError(path, 'expected "100ms" or an object {baseMs, jitterMs, distribution, reorder}')
  checkKeys(path, raw, ['baseMs', 'jitterMs', 'distribution', 'reorder'])
  const out: Partial<DelayConfig> = {}
  if (raw.baseMs !== undefined) out.baseMs = parseDurationMs(`${path}.baseMs`, raw.baseMs as string | number)
  if (raw.jitterMs !== undefined) out.jitterMs = parseDurationMs(`${path}.jitterMs`, raw.jitterMs as string | number)
  if (raw.distribution !== undefined) {
    if (!DISTRIBUTIONS.includes(raw.distribution as string)) {
      throw new LossyLinkConfigError(`${path}.distribution`, `unknown distribution ${JSON.stringify(raw.distribution)}; expected ${DISTRIBUTIONS.join(', ')}`)
    }
    out.distribution = raw.distribution as DelayConfig['distribution']
  }
  if (raw.reorder !== undefined) out.reorder = parseBool(`${path}.reorder`, raw.reorder)
  return out
}

/** Normalise one direction's overrides; `null` values survive (they delete on merge). */
export const parseImpairmentLayer = (path: string, raw: unknown): Json => {
  if (!isObject(raw)) throw new LossyLinkConfigError(path, 'expected an object of impairments')
  checkKeys(path, raw, IMPAIRMENT_KEYS)
  const out: Json = {}
  for (const [key, value] of Object.entries(raw)) {
    const p = `${path}.${key}`
    if (value === null) {
      out[key] = null
      continue
    }
    switch (key as (typeof IMPAIRMENT_KEYS)[number]) {
      case 'loss': out.loss = parseLoss(p, value); break
      case 'delay': out.delay = parseDelay(p, value); break
      case 'duplicateProbability':
      case 'corruptProbability': out[key] = parseProbability(p, value as string); break
      case 'rateBitsPerSecond': out[key] = parseRateBitsPerSecond(p, value as string); break
      case 'queueBytes':
      case 'mtuBytes': out[key] = parseBytes(p, value as string); break
      case 'blackouts': out.blackouts = parseWindows(p, value); break
      case 'blackoutEvery': out.blackoutEvery = parsePeriodicValue(p, value); break
      case 'blocked': out.blocked = parseBool(p, value); break
    }
  }
  return out
}

/** Layer `overlay` over `base`: delay merges field by field, `null` deletes, the rest replaces. */
export const mergeImpairment = (base: ImpairmentConfig, overlay: Json | undefined): ImpairmentConfig => {
  if (!overlay) return base
  const out: Json = { ...structuredClone(base) }
  for (const [key, value] of Object.entries(overlay)) {
    if (value === null) delete out[key]
    else if (key === 'delay' && isObject(out.delay)) out.delay = { ...out.delay, ...(value as Json) }
    else out[key] = structuredClone(value)
  }
  return out as ImpairmentConfig
}

/** Check a full direction config against the shared models; errors name the field. */
export const validateImpairment = (path: string, config: ImpairmentConfig): ImpairmentConfig => {
  if (config.delay && config.delay.baseMs === undefined) {
    throw new LossyLinkConfigError(`${path}.delay.baseMs`, 'required when a delay is set (jitter needs a base delay, 0 is fine)')
  }
  try {
    new LinkImpairment(config, new SeededRng(1))
  } catch (err) {
    if (err instanceof ConfigError) {
      // The model's message starts with its own field path; ours replaces it with the full one.
      const message = err.message.startsWith(`${err.field} `) ? err.message.slice(err.field.length + 1) : err.message
      throw new LossyLinkConfigError(`${path}.${err.field}`, message)
    }
    throw err
  }
  return config
}

const parseUdpBlock = (path: string, raw: unknown): UdpBlockConfig => {
  if (typeof raw === 'boolean') return { blocked: raw }
  if (!isObject(raw)) throw new LossyLinkConfigError(path, 'expected true/false or {blocked, every, windows}')
  checkKeys(path, raw, ['blocked', 'every', 'windows'])
  const out: UdpBlockConfig = {}
  if (raw.blocked !== undefined) out.blocked = parseBool(`${path}.blocked`, raw.blocked)
  if (raw.every !== undefined) out.every = parsePeriodicValue(`${path}.every`, raw.every)
  if (raw.windows !== undefined) out.windows = parseWindows(`${path}.windows`, raw.windows)
  return out
}

const parseNat = (path: string, raw: unknown): NatConfig => {
  if (!isObject(raw)) throw new LossyLinkConfigError(path, 'expected {rebindEveryMs, bindingTimeoutMs}')
  checkKeys(path, raw, ['rebindEveryMs', 'bindingTimeoutMs'])
  const out: NatConfig = {}
  for (const key of ['rebindEveryMs', 'bindingTimeoutMs'] as const) {
    if (raw[key] === undefined || raw[key] === null) continue
    const ms = parseDurationMs(`${path}.${key}`, raw[key] as string)
    if (ms <= 0) throw new LossyLinkConfigError(`${path}.${key}`, 'must be positive')
    out[key] = ms
  }
  return out
}

const LINK_KEYS = ['preset', 'both', 'up', 'down', 'udpBlock', 'blackout'] as const

const parseLinkKeys = (path: string, raw: Json, layer: ProfileLayer): void => {
  const at = (k: string) => (path ? `${path}.${k}` : k)
  if (raw.preset !== undefined) {
    if (typeof raw.preset !== 'string' || !getPreset(raw.preset)) {
      throw new LossyLinkConfigError(at('preset'), `unknown preset ${JSON.stringify(raw.preset)}; expected one of ${presetNames().join(', ')}`)
    }
    layer.preset = raw.preset.toLowerCase()
  }
  for (const key of ['both', 'up', 'down'] as const) {
    if (raw[key] !== undefined) layer[key] = parseImpairmentLayer(at(key), raw[key])
  }
  if (raw.udpBlock !== undefined) layer.udpBlock = parseUdpBlock(at('udpBlock'), raw.udpBlock)
  if (raw.blackout !== undefined) layer.blackout = parseBool(at('blackout'), raw.blackout)
}

/** The state one layer stack describes, starting from a clean link (or a preset). */
const resolveLinkState = (path: string, layers: ProfileLayer[]): LinkState & { preset?: string } => {
  let preset: string | undefined
  for (const l of layers) if (l.preset) preset = l.preset
  const base = preset ? getPreset(preset)! : { up: {}, down: {} }
  let up: ImpairmentConfig = base.up
  let down: ImpairmentConfig = base.down
  const udpBlock: UdpBlockConfig = {}
  let blackout = false
  for (const l of layers) {
    up = mergeImpairment(mergeImpairment(up, l.both), l.up)
    down = mergeImpairment(mergeImpairment(down, l.both), l.down)
    Object.assign(udpBlock, l.udpBlock)
    if (l.blackout !== undefined) blackout = l.blackout
  }
  validateImpairment(path ? `${path}.up` : 'up', up)
  validateImpairment(path ? `${path}.down` : 'down', down)
  return { preset, up, down, udpBlock, blackout }
}

const parseScript = (path: string, raw: unknown): Script => {
  const obj = Array.isArray(raw) ? { steps: raw } : raw
  if (!isObject(obj)) throw new LossyLinkConfigError(path, 'expected {loop, steps: [...]} or an array of steps')
  checkKeys(path, obj, ['loop', 'steps'])
  if (!Array.isArray(obj.steps) || obj.steps.length === 0) throw new LossyLinkConfigError(`${path}.steps`, 'expected a non-empty array of steps')
  const steps = obj.steps.map((s, i): ScriptStep => {
    const p = `${path}.steps[${i}]`
    if (!isObject(s)) throw new LossyLinkConfigError(p, 'expected an object {durationMs, preset?, both?, up?, down?, udpBlock?, blackout?}')
    checkKeys(p, s, ['durationMs', 'label', ...LINK_KEYS])
    if (s.durationMs === undefined) throw new LossyLinkConfigError(`${p}.durationMs`, 'required')
    const durationMs = parseDurationMs(`${p}.durationMs`, s.durationMs as string)
    if (durationMs <= 0) throw new LossyLinkConfigError(`${p}.durationMs`, 'must be positive')
    const layer: ProfileLayer = {}
    parseLinkKeys(p, s, layer)
    const state = resolveLinkState(p, [layer])
    const label = typeof s.label === 'string' ? s.label : state.blackout ? 'blackout' : (state.preset ?? `step ${i}`)
    return { label, durationMs, up: state.up, down: state.down, udpBlock: state.udpBlock, blackout: state.blackout }
  })
  const loop = obj.loop === undefined ? false : parseBool(`${path}.loop`, obj.loop)
  return { loop, steps }
}

/** Parse one JSON document (profile file, HTTP body) into a layer. */
export const parseProfileLayer = (raw: unknown, path = ''): ProfileLayer => {
  if (Array.isArray(raw)) return { script: parseScript(path || 'script', raw) }
  if (!isObject(raw)) throw new LossyLinkConfigError(path, 'a profile must be a JSON object')
  const at = (k: string) => (path ? `${path}.${k}` : k)
  if (raw.steps !== undefined && raw.script === undefined) {
    checkKeys(path, raw, ['loop', 'steps'])
    return { script: parseScript(path || 'script', raw) }
  }
  checkKeys(path, raw, [...LINK_KEYS, 'nat', 'tcp', 'script', 'name', 'description'])
  const layer: ProfileLayer = {}
  parseLinkKeys(path, raw, layer)
  if (raw.nat !== undefined) layer.nat = parseNat(at('nat'), raw.nat)
  if (raw.tcp !== undefined) layer.tcp = parseTcpLayer(at('tcp'), raw.tcp)
  if (raw.script !== undefined) layer.script = parseScript(at('script'), raw.script)
  return layer
}

/** Resolve a stack of layers (lowest first) into what the link runs. */
export const resolveProfile = (layers: ProfileLayer[]): ResolvedProfile => {
  const state = resolveLinkState('', layers)
  const nat: NatConfig = {}
  let script: Script | undefined
  for (const l of layers) {
    Object.assign(nat, l.nat)
    if (l.script) script = l.script
  }
  const tcp = resolveTcp(layers.map((l) => l.tcp).filter((t): t is TcpLayer => t !== undefined))
  const out: ResolvedProfile = { ...state, nat, tcp }
  if (script) out.script = script
  return out
}

/** Convenience for library users and tests: a profile from one plain object. */
export const profileFrom = (raw: unknown): ResolvedProfile => resolveProfile([parseProfileLayer(raw)])

export const isBlockedAt = (block: UdpBlockConfig, nowMs: number): boolean => {
  if (block.blocked) return true
  if (block.every && inPeriodic(block.every, nowMs)) return true
  if (block.windows) for (const w of block.windows) if (nowMs >= w.startMs && nowMs < w.startMs + w.durationMs) return true
  return false
}

