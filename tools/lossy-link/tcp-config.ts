/**
 * TCP relay impairments (toxiproxy-like). TCP segments cannot be dropped from user
 * space, so the relay path gets what a proxy can do to a byte stream: delay (with
 * jitter, order kept), a bandwidth limit, stalls (data held, connection open), resets
 * (RST after a time or a byte count, or on demand) and a black hole (half-open: data
 * swallowed, nothing closes).
 */
import { LossyLinkConfigError } from './errors.js'
import { checkKeys, isObject, parseBool, parsePeriodicValue, parseWindows, type Periodic, type Window } from './schema.js'
import { parseDurationMs, parseRateBitsPerSecond, parseBytes } from './units.js'

export interface TcpDirectionConfig {
  delayMs?: number
  /** Uniform in [-jitter, +jitter]; byte order is always kept. */
  jitterMs?: number
  rateBitsPerSecond?: number
  /** Forwarding pauses for durationMs every periodMs (data is held, not lost). */
  stallEvery?: Periodic
  stalls?: Window[]
}

export interface TcpConfig {
  up: TcpDirectionConfig
  down: TcpDirectionConfig
  /** Each connection is reset (RST both ways) this long after it opened. */
  resetAfterMs?: number
  /** Each connection is reset once this many bytes (both directions) went through. */
  resetAfterBytes?: number
  /** Half-open: bytes are swallowed in both directions, the connections stay up. */
  blackhole?: boolean
}

export interface TcpLayer {
  both?: TcpDirectionConfig
  up?: TcpDirectionConfig
  down?: TcpDirectionConfig
  resetAfterMs?: number | null
  resetAfterBytes?: number | null
  blackhole?: boolean
}

const DIRECTION_KEYS = ['delayMs', 'jitterMs', 'rateBitsPerSecond', 'stallEvery', 'stalls'] as const

export const parseTcpDirection = (path: string, raw: unknown): TcpDirectionConfig => {
  if (!isObject(raw)) throw new LossyLinkConfigError(path, `expected an object with ${DIRECTION_KEYS.join(', ')}`)
  checkKeys(path, raw, DIRECTION_KEYS)
  const out: TcpDirectionConfig = {}
  if (raw.delayMs != null) out.delayMs = parseDurationMs(`${path}.delayMs`, raw.delayMs as string)
  if (raw.jitterMs != null) out.jitterMs = parseDurationMs(`${path}.jitterMs`, raw.jitterMs as string)
  if (raw.rateBitsPerSecond != null) out.rateBitsPerSecond = parseRateBitsPerSecond(`${path}.rateBitsPerSecond`, raw.rateBitsPerSecond as string)
  if (raw.stallEvery != null) out.stallEvery = parsePeriodicValue(`${path}.stallEvery`, raw.stallEvery)
  if (raw.stalls != null) out.stalls = parseWindows(`${path}.stalls`, raw.stalls)
  return out
}

export const parseTcpLayer = (path: string, raw: unknown): TcpLayer => {
  if (!isObject(raw)) throw new LossyLinkConfigError(path, 'expected an object {both, up, down, resetAfterMs, resetAfterBytes, blackhole}')
  checkKeys(path, raw, ['both', 'up', 'down', 'resetAfterMs', 'resetAfterBytes', 'blackhole'])
  const out: TcpLayer = {}
  for (const d of ['both', 'up', 'down'] as const) if (raw[d] !== undefined) out[d] = parseTcpDirection(`${path}.${d}`, raw[d])
  if (raw.resetAfterMs !== undefined) {
    out.resetAfterMs = raw.resetAfterMs === null ? null : parseDurationMs(`${path}.resetAfterMs`, raw.resetAfterMs as string)
  }
  if (raw.resetAfterBytes !== undefined) {
    out.resetAfterBytes = raw.resetAfterBytes === null ? null : parseBytes(`${path}.resetAfterBytes`, raw.resetAfterBytes as string)
  }
  if (raw.blackhole !== undefined) out.blackhole = parseBool(`${path}.blackhole`, raw.blackhole)
  return out
}

export const resolveTcp = (layers: TcpLayer[], base: TcpConfig = { up: {}, down: {} }): TcpConfig => {
  const out: TcpConfig = structuredClone(base)
  for (const l of layers) {
    out.up = { ...out.up, ...l.both, ...l.up }
    out.down = { ...out.down, ...l.both, ...l.down }
    if (l.resetAfterMs !== undefined) {
      if (l.resetAfterMs === null) delete out.resetAfterMs
      else out.resetAfterMs = l.resetAfterMs
    }
    if (l.resetAfterBytes !== undefined) {
      if (l.resetAfterBytes === null) delete out.resetAfterBytes
      else out.resetAfterBytes = l.resetAfterBytes
    }
    if (l.blackhole !== undefined) out.blackhole = l.blackhole
  }
  return out
}
