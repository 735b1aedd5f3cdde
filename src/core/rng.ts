/**
 * Randomness is injected into the core, which draws none of its own.
 * Production passes a crypto-backed Rng; tests and the simulator pass a seeded one.
 */
export interface Rng {
  /** Uniform integer in [0, 2^32). */
  nextU32(): number
  /** Uniform float in [0, 1). */
  nextFloat(): number
  /** Fill `out` with random bytes (connection ids, tokens). */
  fillBytes(out: Uint8Array): void
}

/**
 * Small, fast, seedable PRNG (sfc32 seeded through splitmix32), good enough for
 * simulation and property tests. Not for secrets.
 */
export class SeededRng implements Rng {
  private a: number
  private b: number
  private c: number
  private d: number
  readonly seed: number

  constructor(seed: number) {
    this.seed = seed >>> 0
    let s = this.seed
    const next = (): number => {
      s = (s + 0x9e3779b9) | 0
      let z = s
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
      return (z ^ (z >>> 16)) >>> 0
    }
    this.a = next()
    this.b = next()
    this.c = next()
    this.d = next()
    for (let i = 0; i < 12; i++) this.nextU32()
  }

  nextU32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0
    this.d = (this.d + 1) | 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) | 0
    this.c = (this.c << 21) | (this.c >>> 11)
    this.c = (this.c + t) | 0
    return t >>> 0
  }

  nextFloat(): number {
    return this.nextU32() / 4294967296
  }

  fillBytes(out: Uint8Array): void {
    for (let i = 0; i < out.length; i += 4) {
      let v = this.nextU32()
      for (let j = i; j < Math.min(i + 4, out.length); j++) {
        out[j] = v & 0xff
        v >>>= 8
      }
    }
  }

  /** An independent generator derived from this one (e.g. one per link direction). */
  fork(): SeededRng {
    return new SeededRng(this.nextU32())
  }
}
