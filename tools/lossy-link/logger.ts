/** Structured logs (pino, JSON lines on stdout by default). */
import { pino, type DestinationStream, type Logger } from 'pino'

export type { Logger }

export const createLogger = (options: { level?: string; destination?: DestinationStream } = {}): Logger =>
  pino({ name: 'lossy-link', level: options.level ?? 'info', base: { pid: process.pid } }, options.destination ?? pino.destination({ dest: 1, sync: true }))

/** For library use and tests: logs nothing. */
export const silentLogger = (): Logger => pino({ level: 'silent' })
