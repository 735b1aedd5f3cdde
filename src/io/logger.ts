/**
 * Structured logs: pino. JSON lines by default (what scripts and log shippers read);
 * human-readable through pino-pretty when `pretty` is set (the server sets it when
 * stdout is a terminal).
 */
import { pino, type Logger } from 'pino'
import { PinoPretty } from 'pino-pretty'

export type { Logger }

export const createLogger = (options: { name: string; level?: string; pretty?: boolean }): Logger => {
  const level = options.level ?? 'info'
  if (options.pretty === true) {
    return pino({ name: options.name, level }, PinoPretty({ colorize: true, sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }))
  }
  return pino({ name: options.name, level }, pino.destination({ dest: 1, sync: true }))
}

/** For library use and tests: logs nothing. */
export const silentLogger = (): Logger => pino({ level: 'silent' })
