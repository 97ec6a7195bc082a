/**
 * MQTT topics and filters as NATS subjects.
 *
 * A NATS subject is tokens joined by `.`; a token may not be empty nor hold `.`, `*`, `>` or
 * white space, while an MQTT level may be anything but `/` (and may be empty). So each level is
 * escaped to a token: a level of only `A-Z a-z 0-9 _ -` stays as it is; any other byte of its
 * UTF-8 (`~` included) becomes `~` and two upper-case hex digits; the empty level is `~` alone
 * (which no escaped level is, since every other `~` has two digits after it). The escaping is
 * one-to-one, so every legal MQTT topic (`.`, `*`, `>`, spaces, empty levels, `$` topics, any
 * UTF-8) has its own subject, and a literal `*` or `>` level can never act as a NATS wildcard.
 *
 * Data subjects: `pubsub.m.<broker>.<level>...` (the broker's id escaped the same way: the
 * tenant prefix that keeps brokers apart on the bus). A filter maps level by level, `+` to `*`
 * and a trailing `#` to `>` plus the parent subject itself (`a/#` matches `a` [MQTT-4.7.1-2];
 * NATS `>` wants at least one more token); `#` alone is `>`.
 */

/** Every subject this broker uses starts with it. */
export const ROOT = 'pubsub';

const PLAIN = /^[A-Za-z0-9_-]+$/;

/** One MQTT level (or a broker id, or a node name) as a NATS token. */
export function escapeLevel(level: string): string {
  if (level === '') return '~';
  if (PLAIN.test(level)) return level;
  let out = '';
  const bytes = Buffer.from(level, 'utf8');
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    const plain =
      (b >= 0x30 && b <= 0x39) ||
      (b >= 0x41 && b <= 0x5a) ||
      (b >= 0x61 && b <= 0x7a) ||
      b === 0x5f ||
      b === 0x2d;
    out += plain ? String.fromCharCode(b) : `~${b < 16 ? '0' : ''}${b.toString(16).toUpperCase()}`;
  }
  return out;
}

/** The inverse of `escapeLevel` (for tests and tools; the data plane carries topics itself). */
export function unescapeLevel(token: string): string {
  if (token === '~') return '';
  if (!token.includes('~')) return token;
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    if (token[i] === '~') {
      bytes.push(Number.parseInt(token.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(token.charCodeAt(i));
  }
  return Buffer.from(bytes).toString('utf8');
}

/** `pubsub.m.<broker>`: the prefix of one broker's data subjects. */
export function brokerPrefix(brokerId: string): string {
  return `${ROOT}.m.${escapeLevel(brokerId)}`;
}

/** The subject a message to `topic` crosses on. */
export function topicSubject(prefix: string, topic: string): string {
  let out = prefix;
  let start = 0;
  for (;;) {
    const end = topic.indexOf('/', start);
    out += `.${escapeLevel(end === -1 ? topic.slice(start) : topic.slice(start, end))}`;
    if (end === -1) return out;
    start = end + 1;
  }
}

/** The subjects a node subscribes to for a (valid, non-shared) MQTT filter: one, or two for `#`. */
export function filterSubjects(prefix: string, filter: string): string[] {
  const levels = filter.split('/');
  const last = levels[levels.length - 1];
  const tokens = levels.map((l) => (l === '+' ? '*' : l === '#' ? '>' : escapeLevel(l)));
  const subject = `${prefix}.${tokens.join('.')}`;
  if (last !== '#' || levels.length === 1) return [subject];
  return [subject, `${prefix}.${tokens.slice(0, -1).join('.')}`];
}
