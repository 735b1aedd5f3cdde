/** What every benchmark module returns; bench/run.ts prints the JSON and a table. */
export interface BenchReport {
  name: string
  table: Array<Record<string, string | number>>
  targets: Array<{ metric: string; value: number; target: string; pass: boolean }>
  json: unknown
}

export const percentile = (sorted: number[], p: number): number => {
  if (sorted.length === 0) return NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[i]
}

export const round = (v: number, digits = 2): number => {
  const f = 10 ** digits
  return Math.round(v * f) / f
}
