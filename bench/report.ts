/** What every bench module returns; bench/run.ts prints them as JSON and as a table. */
export interface BenchTarget {
  metric: string
  value: number
  /** Human-readable target, e.g. ">= 50000". */
  target: string
  pass: boolean
}

export interface BenchReport {
  name: string
  table: Array<Record<string, string | number>>
  targets: BenchTarget[]
  json: unknown
}
