/**
 * What the management verbs print on stdout. Two modes: human (aligned tables and
 * `field  value` blocks, meant for eyes and allowed to change) and `--json` (exactly the API's
 * `result`, pretty-printed, meant for scripts and stable as the API is). Status lines and
 * prompts go to stderr so that stdout holds only data in either mode.
 */
import { formatDuration } from '../duration.ts';

/** Columns padded to their widest cell, two spaces apart; the last column is not padded. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return `${[line(headers), ...rows.map(line)].join('\n')}\n`;
}

/** `label  value` lines with the labels aligned (a describe view). */
export function fields(pairs: readonly (readonly [string, string])[]): string {
  const width = Math.max(...pairs.map(([label]) => label.length));
  const lines = pairs.map(([label, value]) => `${`${label}:`.padEnd(width + 1)}  ${value}`.trimEnd());
  return `${lines.join('\n')}\n`;
}

export function printJson(result: unknown): void {
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

export function print(text: string): void {
  process.stdout.write(text);
}

/** A status line for humans (stderr: stdout stays data). */
export function status(text: string): void {
  process.stderr.write(`${text}\n`);
}

/** An RFC 3339 timestamp without its fraction of a second, or `-`. */
export function when(timestamp: unknown): string {
  if (typeof timestamp !== 'string' || timestamp === '') return '-';
  return timestamp.replace(/\.\d+Z$/, 'Z');
}

/** A broker expiration (seconds or null) for humans: `1h (3600 s)` or `none`. */
export function expiration(seconds: unknown): string {
  if (typeof seconds !== 'number') return 'none';
  return `${formatDuration(seconds)} (${seconds} s)`;
}

/** A possibly missing or empty text cell: `-` when there is nothing to show. */
export function text(value: unknown): string {
  if (value === undefined || value === null || value === '') return '-';
  return String(value);
}
