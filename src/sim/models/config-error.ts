/**
 * ConfigError and the small validators shared by the impairment models.
 * Messages name the field with its path and the offending value, e.g.
 * "loss.probability must be in [0,1], got 1.5", so a preset file typo is obvious.
 */
export class ConfigError extends Error {
  /** Dotted path of the offending field, e.g. `loss.probability`, `blackouts[2].durationMs`. */
  readonly field: string
  constructor(field: string, message: string) {
    super(message)
    this.name = 'ConfigError'
    this.field = field
  }
}

const show = (value: unknown): string => {
  if (typeof value === 'string') return JSON.stringify(value)
  if (value === undefined) return 'undefined'
  try {
    return typeof value === 'object' ? JSON.stringify(value) : String(value)
  } catch {
    return String(value)
  }
}

export const isFiniteNumber = (value: unknown): value is number =>
  typeof value === 'number' && Number.isFinite(value)

export function checkProbability(field: string, value: unknown): number {
  if (!isFiniteNumber(value) || value < 0 || value > 1) {
    throw new ConfigError(field, `${field} must be in [0,1], got ${show(value)}`)
  }
  return value
}

export function checkNonNegative(field: string, value: unknown): number {
  if (!isFiniteNumber(value) || value < 0) {
    throw new ConfigError(field, `${field} must be a finite number >= 0, got ${show(value)}`)
  }
  return value
}

export function checkPositive(field: string, value: unknown): number {
  if (!isFiniteNumber(value) || value <= 0) {
    throw new ConfigError(field, `${field} must be a finite number > 0, got ${show(value)}`)
  }
  return value
}

export function checkFinite(field: string, value: unknown): number {
  if (!isFiniteNumber(value)) {
    throw new ConfigError(field, `${field} must be a finite number, got ${show(value)}`)
  }
  return value
}

export function checkBoolean(field: string, value: unknown): boolean {
  if (typeof value !== 'boolean') {
    throw new ConfigError(field, `${field} must be true or false, got ${show(value)}`)
  }
  return value
}

export function checkOneOf<T extends string>(field: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new ConfigError(field, `${field} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${show(value)}`)
  }
  return value as T
}

export function checkObject(field: string, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(field, `${field} must be an object, got ${show(value)}`)
  }
  return value as Record<string, unknown>
}
