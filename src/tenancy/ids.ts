/**
 * Identifiers and timestamps in Cloudflare's shapes: ids are 32 lower-case hex characters, and
 * timestamps are RFC 3339 in UTC with microseconds (`2022-05-11T23:13:08.383232Z`).
 */
import { randomUUID } from 'node:crypto';

export const newId = (): string => randomUUID().replaceAll('-', '');

/** Now, as RFC 3339 UTC with microsecond precision. */
export function timestamp(): string {
  const micros = Math.floor((performance.timeOrigin + performance.now()) * 1000);
  const ms = Math.floor(micros / 1000);
  const iso = new Date(ms).toISOString(); // ...T23:13:08.383Z
  return `${iso.slice(0, -1)}${String(micros % 1000).padStart(3, '0')}Z`;
}
