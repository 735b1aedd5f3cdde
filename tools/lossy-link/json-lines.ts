import type { ChildProcess } from 'node:child_process'

/**
 * A child process's stdout as a queue of JSON lines (own buffering: nothing is missed
 * between reads). Returns a function resolving with the next parsed line.
 */
export const jsonLines = <T = unknown>(child: ChildProcess): (() => Promise<T>) => {
  const lines: string[] = []
  const waiters: Array<(line: string) => void> = []
  let partial = ''
  child.stdout!.setEncoding('utf8')
  child.stdout!.on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n')
    partial = parts.pop()!
    for (const line of parts) {
      const w = waiters.shift()
      if (w) w(line)
      else lines.push(line)
    }
  })
  return async (): Promise<T> => JSON.parse(lines.length ? lines.shift()! : await new Promise<string>((resolve) => waiters.push(resolve))) as T
}
