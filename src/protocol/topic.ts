/**
 * Topic name and topic filter rules (section 4.7), and the `$share/{ShareName}/{filter}`
 * form of shared subscriptions (section 4.8.2). UTF-8 validity is the parser's job; these
 * checks are about levels and wildcards.
 */

/** A topic name for PUBLISH: at least one character, no wildcards. */
export function isValidTopicName(topic: string): boolean {
  if (topic.length === 0) return false; // [MQTT-4.7.3-1]
  // [MQTT-3.3.2-2] wildcards are not allowed in topic names.
  return !topic.includes('+') && !topic.includes('#');
}

/** A topic filter for SUBSCRIBE/UNSUBSCRIBE: `#` only last and alone, `+` alone in its level. */
export function isValidTopicFilter(filter: string): boolean {
  if (filter.length === 0) return false; // [MQTT-4.7.3-1]
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!;
    if (level.includes('#')) {
      if (level !== '#' || i !== levels.length - 1) return false; // [MQTT-4.7.1-2]
    } else if (level.includes('+') && level !== '+') {
      return false; // [MQTT-4.7.1-3]
    }
  }
  return true;
}

/**
 * More than `maxLevels` levels in a topic name or filter (levels = `/` count + 1)? The server's
 * `--max-topic-levels` bound, checked where topic names and filters are validated. A string of
 * L characters has at most L + 1 levels, so an ordinary topic costs one comparison, no scan.
 */
export function exceedsTopicLevels(topic: string, maxLevels: number): boolean {
  if (topic.length < maxLevels) return false;
  let levels = 1;
  for (let at = topic.indexOf('/'); at !== -1; at = topic.indexOf('/', at + 1)) {
    if (++levels > maxLevels) return true;
  }
  return false;
}

/**
 * More than `maxBytes` UTF-8 bytes in a topic name or filter? The server's `--max-topic-length`.
 * A string of L UTF-16 units has between L and 3L bytes, so a topic whose length settles it
 * either way costs one or two comparisons; only one in between is measured.
 */
export function exceedsTopicLength(topic: string, maxBytes: number): boolean {
  if (topic.length * 3 <= maxBytes) return false;
  if (topic.length > maxBytes) return true;
  return Buffer.byteLength(topic) > maxBytes;
}

/**
 * `exceedsTopicLevels` for a SUBSCRIBE/UNSUBSCRIBE filter: a `$share/{ShareName}/` prefix is
 * not counted, since the levels that are matched (and held in the index) are the inner filter's.
 */
export function exceedsFilterLevels(filter: string, maxLevels: number): boolean {
  if (isSharedFilter(filter)) {
    const slash = filter.indexOf('/', SHARE_PREFIX.length);
    if (slash !== -1) return exceedsTopicLevels(filter.slice(slash + 1), maxLevels);
  }
  return exceedsTopicLevels(filter, maxLevels);
}

export interface SharedFilter {
  shareName: string;
  filter: string;
}

const SHARE_PREFIX = '$share/';

export const isSharedFilter = (filter: string): boolean => filter.startsWith(SHARE_PREFIX);

/**
 * Splits `$share/{ShareName}/{filter}`. Returns undefined when the form is invalid: an empty
 * share name, one holding `+` or `#` [MQTT-4.8.2-2], or a missing or invalid filter [MQTT-4.8.2-1].
 */
export function parseSharedFilter(filter: string): SharedFilter | undefined {
  if (!isSharedFilter(filter)) return undefined;
  const rest = filter.slice(SHARE_PREFIX.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) return undefined;
  const shareName = rest.slice(0, slash);
  if (shareName.includes('+') || shareName.includes('#')) return undefined;
  const inner = rest.slice(slash + 1);
  if (!isValidTopicFilter(inner)) return undefined;
  return { shareName, filter: inner };
}
