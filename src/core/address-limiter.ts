import { LRUCache } from 'lru-cache'
import { ErrorCode, UsageError } from './errors.js'

/**
 * Per-address rate limit for expensive requests (handshakes, login attempts), sans-IO:
 * one token bucket per address key, refilled from the `nowMs` the caller passes in.
 *
 * Memory is bounded by `maxAddresses`: the buckets live in an LRU, and the least
 * recently seen address is forgotten first. A forgotten address comes back with a full
 * bucket, so an attacker cycling through more than `maxAddresses` source addresses gets
 * `burst` attempts per address; the optional `global` bucket caps the sum over all
 * addresses for that case.
 *
 * lru-cache is used WITHOUT its ttl feature: with no ttl it never reads a clock nor
 * starts a timer (and `perf` below throws if it ever tried).
 */
export interface AddressLimiterOptions {
  /** Sustained rate per address. */
  ratePerSecond: number
  /** Requests an address may make at once (bucket size, >= 1). */
  burst: number
  /** Addresses tracked at most; the least recently seen is evicted beyond it. */
  maxAddresses: number
  /** Optional bucket shared by every address (checked after the address's own). */
  global?: { ratePerSecond: number; burst: number }
}

export interface AddressLimiterStats {
  allowed: number
  /** Refused because the address's own bucket was empty. */
  deniedAddress: number
  /** Refused because the global bucket was empty. */
  deniedGlobal: number
  /** Addresses forgotten to stay within maxAddresses. */
  evictions: number
}

/** A token bucket; `tokens` is fractional, refilled lazily on each use. */
class Bucket {
  constructor(
    public tokens: number,
    public lastMs: number,
  ) {}
}

/** Refill `b` up to `nowMs` (time never runs backwards for a bucket), then report whether a token is there. */
const refill = (b: Bucket, nowMs: number, ratePerMs: number, burst: number): boolean => {
  if (nowMs > b.lastMs) {
    b.tokens = Math.min(burst, b.tokens + (nowMs - b.lastMs) * ratePerMs)
    b.lastMs = nowMs
  }
  return b.tokens >= 1
}

const noClock = {
  now: (): number => {
    throw new UsageError(ErrorCode.INTERNAL_ERROR, 'AddressLimiter must not read a clock')
  },
}

export class AddressLimiter {
  readonly stats: AddressLimiterStats = { allowed: 0, deniedAddress: 0, deniedGlobal: 0, evictions: 0 }
  private readonly buckets: LRUCache<string, Bucket>
  private readonly ratePerMs: number
  private readonly burst: number
  private readonly maxAddresses: number
  private readonly global: { bucket: Bucket; ratePerMs: number; burst: number } | undefined

  constructor(opts: AddressLimiterOptions) {
    checkRate('ratePerSecond', opts.ratePerSecond, opts.burst)
    if (!Number.isSafeInteger(opts.maxAddresses) || opts.maxAddresses < 1) {
      throw new UsageError(ErrorCode.INTERNAL_ERROR, `maxAddresses must be a positive integer, got ${opts.maxAddresses}`)
    }
    this.ratePerMs = opts.ratePerSecond / 1000
    this.burst = opts.burst
    this.maxAddresses = opts.maxAddresses
    this.buckets = new LRUCache<string, Bucket>({ max: opts.maxAddresses, perf: noClock })
    if (opts.global !== undefined) {
      checkRate('global.ratePerSecond', opts.global.ratePerSecond, opts.global.burst)
      // Starts full; lastMs -Infinity means "refill from the first call's time".
      this.global = { bucket: new Bucket(opts.global.burst, -Infinity), ratePerMs: opts.global.ratePerSecond / 1000, burst: opts.global.burst }
    }
  }

  /** Addresses currently tracked (never more than maxAddresses). */
  get size(): number {
    return this.buckets.size
  }

  /**
   * May `addressKey` make one more request at `nowMs`? Takes a token when it may.
   * A refused request costs the address nothing (so refusals do not extend a lockout).
   */
  allow(addressKey: string, nowMs: number): boolean {
    let b = this.buckets.get(addressKey)
    if (b === undefined) {
      if (this.buckets.size >= this.maxAddresses) this.stats.evictions++
      b = new Bucket(this.burst, nowMs)
      this.buckets.set(addressKey, b)
    } else if (!refill(b, nowMs, this.ratePerMs, this.burst)) {
      this.stats.deniedAddress++
      return false
    }
    const g = this.global
    if (g !== undefined) {
      if (g.bucket.lastMs === -Infinity) g.bucket.lastMs = nowMs
      if (!refill(g.bucket, nowMs, g.ratePerMs, g.burst)) {
        this.stats.deniedGlobal++
        return false
      }
      g.bucket.tokens -= 1
    }
    b.tokens -= 1
    this.stats.allowed++
    return true
  }

  /** Forget an address (e.g. after a successful login, to reset its failures). */
  forget(addressKey: string): void {
    this.buckets.delete(addressKey)
  }
}

const checkRate = (name: string, ratePerSecond: number, burst: number): void => {
  if (!(Number.isFinite(ratePerSecond) && ratePerSecond > 0)) {
    throw new UsageError(ErrorCode.INTERNAL_ERROR, `${name} must be a positive finite number, got ${ratePerSecond}`)
  }
  if (!(Number.isFinite(burst) && burst >= 1)) {
    throw new UsageError(ErrorCode.INTERNAL_ERROR, `burst must be >= 1, got ${burst}`)
  }
}
