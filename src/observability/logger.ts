/**
 * The process logger: pino, JSON lines on stdout. Client events (src/session/client-events.ts:
 * connects, disconnects, subscribes, ...) at info, authentication failures and protocol errors
 * at warn with the client id and reason; tokens and passwords are never logged.
 */
import { type Logger, pino } from 'pino';

export function createLogger(level: string): Logger {
  return pino({ level, base: { name: 'pubsub' }, timestamp: pino.stdTimeFunctions.isoTime });
}

/** A logger that drops everything, for tests and embedding. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
