/** Structured logs: pino, JSON lines. Pipe through `pino-pretty` to read them by eye. */
import { pino, type Logger } from 'pino'

export type { Logger }

export const createLogger = (options: { name: string; level?: string }): Logger =>
  pino({ name: options.name, level: options.level ?? 'info' }, pino.destination({ dest: 1, sync: true }))

/** For library use and tests: logs nothing. */
export const silentLogger = (): Logger => pino({ level: 'silent' })
