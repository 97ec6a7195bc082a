/**
 * A pino logger whose lines a test can read: `lines` holds every record (parsed JSON) at or
 * above `level`, for asserting that a refusal was logged, and logged once.
 */
import { Writable } from 'node:stream';
import { type Logger, pino } from 'pino';

export interface CapturedLog {
  logger: Logger;
  lines: Record<string, unknown>[];
  /** Records whose msg equals `msg`. */
  withMessage(msg: string): Record<string, unknown>[];
}

export function captureLog(level = 'warn'): CapturedLog {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line));
      callback();
    },
  });
  return { logger: pino({ level }, sink), lines, withMessage: (msg) => lines.filter((l) => l.msg === msg) };
}
