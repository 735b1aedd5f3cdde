import { randomFillSync } from 'node:crypto'
import type { Rng } from '../core/rng.js'

const DEFAULT_POOL_BYTES = 4096

/**
 * Rng backed by the OS CSPRNG. One randomFillSync call fills a pool that serves many
 * draws, so a connection id or a loss-model coin costs a few array reads, not a syscall.
 * Every pool byte is handed out at most once.
 */
export class CryptoRng implements Rng {
  private readonly pool: Uint8Array
  private readonly words: Uint32Array
  /** Next unused byte of the pool. */
  private offset: number

  constructor(poolBytes = DEFAULT_POOL_BYTES) {
    if (!Number.isInteger(poolBytes) || poolBytes < 64 || poolBytes % 4 !== 0) {
      throw new RangeError(`poolBytes must be a multiple of 4 and >= 64, got ${poolBytes}`)
    }
    this.pool = new Uint8Array(poolBytes)
    this.words = new Uint32Array(this.pool.buffer)
    this.offset = poolBytes // empty: filled on first use
  }

  nextU32(): number {
    let o = (this.offset + 3) & ~3
    if (o + 4 > this.pool.length) {
      this.refill()
      o = 0
    }
    this.offset = o + 4
    return this.words[o >>> 2]
  }

  /** Uniform in [0, 1) with 53 random bits (every double of that grid is reachable). */
  nextFloat(): number {
    const high = this.nextU32() >>> 5 // 27 bits
    const low = this.nextU32() >>> 6 // 26 bits
    return (high * 67108864 + low) / 9007199254740992
  }

  /** n fresh random bytes (a new array). */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n)
    this.fillBytes(out)
    return out
  }

  fillBytes(out: Uint8Array): void {
    const n = out.length
    if (n > this.pool.length >>> 2) {
      randomFillSync(out) // large requests straight from the OS
      return
    }
    if (this.offset + n > this.pool.length) this.refill()
    out.set(this.pool.subarray(this.offset, this.offset + n))
    this.offset += n
  }

  private refill(): void {
    randomFillSync(this.pool)
    this.offset = 0
  }
}
