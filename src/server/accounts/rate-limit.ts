/**
 * Token-bucket rate limiting keyed by string (client address, username), with bounded
 * state: an LRU evicts the least recently used keys past `maxKeys`. Eviction forgets a
 * key's debt, which an attacker cycling through more than maxKeys addresses could use;
 * the per-user bucket is the backstop for password guessing. Time is injected.
 */
import { LRUCache } from 'lru-cache'

export interface TokenBucketOptions {
  /** Burst size: attempts allowed at once from a full bucket. */
  capacity: number
  /** One attempt is credited back every refillIntervalMs. */
  refillIntervalMs: number
  /** Bound on tracked keys (memory). */
  maxKeys: number
}

interface Bucket {
  tokens: number
  updatedMs: number
}

export type LimitDecision = { ok: true } | { ok: false; retryAfterMs: number }

export class TokenBucketLimiter {
  private readonly buckets: LRUCache<string, Bucket>
  readonly options: Readonly<TokenBucketOptions>

  constructor(options: TokenBucketOptions) {
    if (!(options.capacity >= 1 && options.refillIntervalMs > 0 && options.maxKeys >= 1)) throw new RangeError('bad token bucket options')
    this.options = { ...options }
    this.buckets = new LRUCache({ max: options.maxKeys })
  }

  /** Would one attempt be allowed now? Does not consume. */
  check(key: string, nowMs: number): LimitDecision {
    return this.decide(this.refill(key, nowMs))
  }

  /** Consume one attempt if allowed. */
  take(key: string, nowMs: number): LimitDecision {
    const bucket = this.refill(key, nowMs)
    const decision = this.decide(bucket)
    if (decision.ok) {
      bucket.tokens -= 1
      this.buckets.set(key, bucket)
    }
    return decision
  }

  /** Consume one attempt even when empty (debt is capped at -capacity). */
  charge(key: string, nowMs: number): void {
    const bucket = this.refill(key, nowMs)
    bucket.tokens = Math.max(bucket.tokens - 1, -this.options.capacity)
    this.buckets.set(key, bucket)
  }

  /** Return one attempt taken earlier that turned out not to count (capped at capacity). */
  giveBack(key: string, nowMs: number): void {
    const bucket = this.refill(key, nowMs)
    bucket.tokens = Math.min(bucket.tokens + 1, this.options.capacity)
    this.buckets.set(key, bucket)
  }

  get trackedKeys(): number {
    return this.buckets.size
  }

  private refill(key: string, nowMs: number): Bucket {
    const { capacity, refillIntervalMs } = this.options
    const b = this.buckets.get(key)
    if (!b) return { tokens: capacity, updatedMs: nowMs }
    const elapsedMs = Math.max(0, nowMs - b.updatedMs)
    return { tokens: Math.min(capacity, b.tokens + elapsedMs / refillIntervalMs), updatedMs: Math.max(nowMs, b.updatedMs) }
  }

  private decide(b: Bucket): LimitDecision {
    if (b.tokens >= 1) return { ok: true }
    return { ok: false, retryAfterMs: Math.ceil((1 - b.tokens) * this.options.refillIntervalMs) }
  }
}

/**
 * The rate-limit key of a client address: IPv4 as is, IPv6 by its /64 (one subscriber
 * usually owns a whole /64), IPv4-mapped IPv6 as IPv4. A trailing port is not expected.
 */
export const addressKey = (address: string): string => {
  const a = address.trim().toLowerCase().replace(/^\[|\]$/g, '').replace(/%.*$/, '')
  if (!a.includes(':')) return a
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a)
  if (mapped) return mapped[1]
  const [head, tail] = a.includes('::') ? a.split('::', 2) : [a, undefined]
  const headGroups = head ? head.split(':') : []
  const tailGroups = tail ? tail.split(':') : []
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array(Math.max(0, 8 - headGroups.length - tailGroups.length)).fill('0'), ...tailGroups]
  return `${groups.slice(0, 4).map((g) => (g === '' ? '0' : g.replace(/^0+(?=.)/, ''))).join(':')}::/64`
}
