/** Shared helpers for the wire tests. */
export const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')
export const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'))

/**
 * fast-check settings: a fixed seed so runs are reproducible; PIGEON_FC_SEED=<n> explores
 * others. fast-check prints the seed and counterexample path on failure.
 */
export const fcSeed = (): number => {
  const envSeed = process.env.PIGEON_FC_SEED
  return envSeed !== undefined ? Number(envSeed) : 0x50470001
}
export const fcParams = (numRuns: number): { numRuns: number; seed: number } => ({ numRuns, seed: fcSeed() })
