import { createWriteStream } from 'node:fs'
import { once } from 'node:events'
import { type TraceEvent, type TraceSink, traceLine } from '../core/trace.js'
import { epochOffsetMs } from './clock.js'

export interface QlogFile {
  sink: TraceSink
  /** Flush and close the file. */
  close(): Promise<void>
}

/**
 * Trace events as JSON lines (one qlog-like event per line) in `path`. Times are turned
 * from the monotonic clock into Unix-epoch milliseconds so traces taken by a client and
 * a server on different machines can be lined up.
 */
export const openQlogFile = async (path: string): Promise<QlogFile> => {
  const out = createWriteStream(path, { flags: 'w' })
  await once(out, 'open')
  const offsetMs = epochOffsetMs()
  let failed: Error | undefined
  out.on('error', (err) => {
    failed = err
  })
  const sink = (event: TraceEvent): void => {
    if (failed === undefined) out.write(traceLine({ ...event, time: event.time + offsetMs }))
  }
  const close = async (): Promise<void> => {
    if (out.closed) return
    const closed = once(out, 'close')
    out.end()
    await closed
    if (failed !== undefined) throw failed
  }
  return { sink, close }
}
