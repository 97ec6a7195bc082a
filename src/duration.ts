/**
 * Human durations (the CLI's `--expiration`, the server's `--audit-retention`), after
 * wrangler's `parseHumanDuration`: a bare number is seconds; otherwise a number followed by a unit (`s`, `m`, `h`, `d`, `w`, `mo`/`month`,
 * `y`/`year`, and their long forms), case-insensitive, spaces allowed. Unlike wrangler we also
 * accept a sum of parts (`1h30m`) and use calendar-sane constants: a month is 30 days and a year
 * 365 days (wrangler's are 210 and 2555 days: 18,144,000 s and 220,752,000 s). Results are whole
 * seconds, because the API stores expirations as integer seconds; a fractional part is allowed
 * only where the total is whole (`1.5h` is 5400 s, `0.5s` is refused).
 */

const SECOND = 1;
const MINUTE = 60;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const WEEK = 7 * DAY;
const MONTH = 30 * DAY;
const YEAR = 365 * DAY;

const UNITS: ReadonlyMap<string, number> = new Map([
  ...['s', 'sec', 'secs', 'second', 'seconds'].map((u) => [u, SECOND] as const),
  ...['m', 'min', 'mins', 'minute', 'minutes'].map((u) => [u, MINUTE] as const),
  ...['h', 'hr', 'hrs', 'hour', 'hours'].map((u) => [u, HOUR] as const),
  ...['d', 'day', 'days'].map((u) => [u, DAY] as const),
  ...['w', 'wk', 'wks', 'week', 'weeks'].map((u) => [u, WEEK] as const),
  ...['mo', 'month', 'months'].map((u) => [u, MONTH] as const),
  ...['y', 'yr', 'yrs', 'year', 'years'].map((u) => [u, YEAR] as const),
]);

/** One `<number><unit>` part; the unit may be empty only when the whole input is one bare number. */
const PART = /(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)\s*/y;

/** Thrown for input that is not a duration; the message is wrangler's. */
export class DurationError extends Error {
  override name = 'DurationError';
  constructor(input: string, why?: string) {
    super(why === undefined ? `${input} is not a time duration` : `${input} is not a time duration: ${why}`);
  }
}

/** Whole seconds of a human duration (`90`, `90s`, `15m`, `1h30m`, `2 weeks`, `1.5h`). */
export function parseHumanDuration(input: string): number {
  const text = input.trim().toLowerCase();
  if (text === '') throw new DurationError(JSON.stringify(input));
  let total = 0;
  let parts = 0;
  let bare = false;
  PART.lastIndex = 0;
  while (PART.lastIndex < text.length) {
    const match = PART.exec(text);
    if (match === null) throw new DurationError(input);
    const [, amount, unit] = match as unknown as [string, string, string];
    parts++;
    if (unit === '') bare = true;
    const factor = unit === '' ? SECOND : UNITS.get(unit);
    if (factor === undefined) throw new DurationError(input, `unknown unit "${unit}"`);
    total += Number(amount) * factor;
  }
  if (bare && parts > 1) throw new DurationError(input, 'when there are several parts, each needs a unit');
  // Sums of parts with fractions can pick up binary rounding noise (0.1h is 359.99999...).
  const rounded = Math.round(total * 1e6) / 1e6;
  if (!Number.isInteger(rounded)) throw new DurationError(input, 'not a whole number of seconds');
  if (!Number.isSafeInteger(rounded)) throw new DurationError(input, 'too long');
  return rounded;
}

const DISPLAY_UNITS: readonly [number, string][] = [
  [YEAR, 'y'],
  [MONTH, 'mo'],
  [WEEK, 'w'],
  [DAY, 'd'],
  [HOUR, 'h'],
  [MINUTE, 'm'],
  [SECOND, 's'],
];

/** Seconds as the shortest exact human duration that parseHumanDuration reads back (`5400` → `1h30m`). */
export function formatDuration(seconds: number): string {
  if (seconds === 0) return '0s';
  let rest = seconds;
  let out = '';
  for (const [size, unit] of DISPLAY_UNITS) {
    if (rest < size) continue;
    const count = Math.floor(rest / size);
    out += `${count}${unit}`;
    rest -= count * size;
  }
  return out;
}
