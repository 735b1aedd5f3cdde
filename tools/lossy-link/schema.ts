/** Small validators shared by the profile parsers; errors name the offending field. */
import { LossyLinkConfigError } from './errors.js'
import { parseDurationMs, parsePeriodic } from './units.js'

export type Json = Record<string, unknown>
export interface Periodic { periodMs: number; durationMs: number; offsetMs?: number }
export interface Window { startMs: number; durationMs: number }

export const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)

export const checkKeys = (path: string, obj: Json, allowed: readonly string[]): void => {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      throw new LossyLinkConfigError(path ? `${path}.${key}` : key, `unknown key; expected one of ${allowed.join(', ')}`)
    }
  }
}

export const parseBool = (path: string, raw: unknown): boolean => {
  if (typeof raw !== 'boolean') throw new LossyLinkConfigError(path, `expected true or false, got ${JSON.stringify(raw)}`)
  return raw
}

export const parseWindows = (path: string, raw: unknown): Window[] => {
  if (!Array.isArray(raw)) throw new LossyLinkConfigError(path, 'expected an array of {startMs, durationMs}')
  return raw.map((w, i) => {
    if (!isObject(w)) throw new LossyLinkConfigError(`${path}[${i}]`, 'expected {startMs, durationMs}')
    checkKeys(`${path}[${i}]`, w, ['startMs', 'durationMs'])
    if (w.startMs === undefined || w.durationMs === undefined) throw new LossyLinkConfigError(`${path}[${i}]`, 'needs startMs and durationMs')
    return { startMs: parseDurationMs(`${path}[${i}].startMs`, w.startMs as string), durationMs: parseDurationMs(`${path}[${i}].durationMs`, w.durationMs as string) }
  })
}

export const parsePeriodicValue = (path: string, raw: unknown): Periodic => {
  if (typeof raw === 'string') return parsePeriodic(path, raw)
  if (!isObject(raw)) throw new LossyLinkConfigError(path, 'expected "60s/12s" or {periodMs, durationMs, offsetMs}')
  checkKeys(path, raw, ['periodMs', 'durationMs', 'offsetMs'])
  if (raw.periodMs === undefined || raw.durationMs === undefined) throw new LossyLinkConfigError(path, 'needs periodMs and durationMs')
  const out: Periodic = {
    periodMs: parseDurationMs(`${path}.periodMs`, raw.periodMs as string),
    durationMs: parseDurationMs(`${path}.durationMs`, raw.durationMs as string),
  }
  if (raw.offsetMs !== undefined) out.offsetMs = parseDurationMs(`${path}.offsetMs`, raw.offsetMs as string)
  if (out.periodMs <= 0 || out.durationMs > out.periodMs) throw new LossyLinkConfigError(path, 'the duration must fit inside a positive period')
  return out
}

export const inPeriodic = (p: Periodic, nowMs: number): boolean => {
  const offset = p.offsetMs ?? 0
  if (nowMs < offset) return false
  return (nowMs - offset) % p.periodMs < p.durationMs
}
