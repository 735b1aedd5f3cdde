/**
 * Parsing of human-friendly values used on the command line and in profile files:
 * "5%" / "0.05", "250ms" / "2s", "750kbit" / "1.5Mbit/s", "64kb" / "1500".
 * Every parser throws LossyLinkConfigError naming the field, so the CLI can print a
 * clear message and exit non-zero.
 */
import { LossyLinkConfigError } from './errors.js'

const NUMBER = /^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e[-+]?[0-9]+)?$/i

const parseNumber = (field: string, text: string): number => {
  const trimmed = text.trim()
  if (!NUMBER.test(trimmed)) throw new LossyLinkConfigError(field, `"${text}" is not a number`)
  return Number(trimmed)
}

/** A probability: "5%" -> 0.05, "0.05" -> 0.05. A bare number above 1 is refused (ambiguous). */
export const parseProbability = (field: string, value: string | number): number => {
  let p: number
  if (typeof value === 'number') p = value
  else if (value.trim().endsWith('%')) p = parseNumber(field, value.trim().slice(0, -1)) / 100
  else p = parseNumber(field, value)
  if (!Number.isFinite(p) || p < 0 || p > 1) {
    throw new LossyLinkConfigError(field, `${JSON.stringify(value)} is not a probability; write a percentage like 5% or a fraction like 0.05`)
  }
  return p
}

const DURATION_UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, sec: 1000, m: 60_000, min: 60_000, h: 3_600_000 }

/** A duration in milliseconds: "250ms", "2s", "1.5m"; a bare number is milliseconds. */
export const parseDurationMs = (field: string, value: string | number): number => {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new LossyLinkConfigError(field, `${value} is not a duration (milliseconds >= 0)`)
    return value
  }
  const m = /^\s*([0-9.e+-]+)\s*([a-z]*)\s*$/i.exec(value)
  const unit = (m?.[2] ?? '').toLowerCase()
  const factor = unit === '' ? 1 : DURATION_UNITS[unit]
  if (!m || factor === undefined) throw new LossyLinkConfigError(field, `"${value}" is not a duration; write e.g. 250ms, 2s or 1.5m`)
  const ms = parseNumber(field, m[1]) * factor
  if (ms < 0) throw new LossyLinkConfigError(field, `"${value}" is negative`)
  return ms
}

const RATE_UNITS: Record<string, number> = {
  bit: 1, bps: 1, b: 1,
  kbit: 1e3, kbps: 1e3, k: 1e3, kb: 1e3,
  mbit: 1e6, mbps: 1e6, m: 1e6, mb: 1e6,
  gbit: 1e9, gbps: 1e9, g: 1e9, gb: 1e9,
}

/** A rate in bits per second: "750kbit", "1.5Mbit/s", "30mbps"; decimal prefixes (k = 1000). */
export const parseRateBitsPerSecond = (field: string, value: string | number): number => {
  let bps: number
  if (typeof value === 'number') bps = value
  else {
    const m = /^\s*([0-9.e+-]+)\s*([a-z]*)(?:\/s)?\s*$/i.exec(value)
    const unit = (m?.[2] ?? '').toLowerCase()
    const factor = unit === '' ? 1 : RATE_UNITS[unit]
    if (!m || factor === undefined) throw new LossyLinkConfigError(field, `"${value}" is not a rate; write e.g. 750kbit, 1.5mbit or 30mbps`)
    bps = parseNumber(field, m[1]) * factor
  }
  if (!Number.isFinite(bps) || bps <= 0) throw new LossyLinkConfigError(field, `${JSON.stringify(value)} is not a positive rate`)
  return bps
}

const SIZE_UNITS: Record<string, number> = { b: 1, '': 1, k: 1024, kb: 1024, kib: 1024, m: 1 << 20, mb: 1 << 20, mib: 1 << 20 }

/** A size in bytes: "1500", "64kb" (binary prefixes: k = 1024). */
export const parseBytes = (field: string, value: string | number): number => {
  let bytes: number
  if (typeof value === 'number') bytes = value
  else {
    const m = /^\s*([0-9.e+-]+)\s*([a-z]*)\s*$/i.exec(value)
    const factor = SIZE_UNITS[(m?.[2] ?? 'x').toLowerCase()]
    if (!m || factor === undefined) throw new LossyLinkConfigError(field, `"${value}" is not a size; write e.g. 1500 or 64kb`)
    bytes = parseNumber(field, m[1]) * factor
  }
  if (!Number.isInteger(bytes) || bytes <= 0) throw new LossyLinkConfigError(field, `${JSON.stringify(value)} is not a positive whole number of bytes`)
  return bytes
}

/** "60s/12s" or "60s/12s@30s": a period, a duration inside it, an optional offset. */
export const parsePeriodic = (field: string, value: string): { periodMs: number; durationMs: number; offsetMs?: number } => {
  const m = /^([^/@]+)\/([^/@]+)(?:@(.+))?$/.exec(value.trim())
  if (!m) throw new LossyLinkConfigError(field, `"${value}" should look like PERIOD/DURATION[@OFFSET], e.g. 60s/12s or 60s/12s@30s`)
  const periodMs = parseDurationMs(field, m[1])
  const durationMs = parseDurationMs(field, m[2])
  if (periodMs <= 0 || durationMs > periodMs) throw new LossyLinkConfigError(field, `"${value}": the duration must fit inside a positive period`)
  return m[3] === undefined ? { periodMs, durationMs } : { periodMs, durationMs, offsetMs: parseDurationMs(field, m[3]) }
}

export interface HostPort { host: string; port: number }

/** "127.0.0.1:9000", "[::1]:9000", ":9000" (all interfaces), "9000". */
export const parseHostPort = (field: string, value: string, defaultHost = '0.0.0.0'): HostPort => {
  const text = value.trim()
  let host: string
  let portText: string
  const v6 = /^\[([^\]]+)\]:(\d+)$/.exec(text)
  if (v6) {
    host = v6[1]
    portText = v6[2]
  } else if (/^\d+$/.test(text)) {
    host = defaultHost
    portText = text
  } else {
    const i = text.lastIndexOf(':')
    if (i < 0) throw new LossyLinkConfigError(field, `"${value}" should be HOST:PORT, e.g. 127.0.0.1:9000`)
    host = text.slice(0, i) || defaultHost
    portText = text.slice(i + 1)
  }
  const port = Number(portText)
  if (!/^\d+$/.test(portText) || port > 65535) throw new LossyLinkConfigError(field, `"${value}": port must be 0..65535`)
  return { host, port }
}
