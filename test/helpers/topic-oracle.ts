/**
 * The oracle of the randomized topic-matching tests (TopicIndex, RetainedStore): the spec's
 * matching rule written level by level with no trie, and seeded random topics and filters over a
 * small alphabet of levels (empty and `$` levels included) so that they collide often.
 */
import type { Rng } from './rng.ts';

/** The spec's matching rule, level by level, with no trie. */
export function naiveMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false; // [MQTT-4.7.2-1]
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true; // also zero levels: `a/#` matches `a` [MQTT-4.7.1-2]
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/** A small alphabet of levels so that random filters and topics collide often. */
const LEVELS = ['a', 'b', 'c', '', '$s'];

/** A topic name of 1 to 4 levels, never the empty string [MQTT-4.7.3-1]. */
export function randomTopic(rng: Rng): string {
  for (;;) {
    const n = 1 + rng.int(4);
    const topic = Array.from({ length: n }, () => rng.pick(LEVELS)).join('/');
    if (topic !== '') return topic;
  }
}

/** A filter of 1 to 4 levels, some `+`, sometimes ending in `#`. */
export function randomFilter(rng: Rng): string {
  const n = 1 + rng.int(4);
  const levels = Array.from({ length: n }, () => (rng.int(3) === 0 ? '+' : rng.pick(LEVELS)));
  if (rng.int(4) === 0) levels[n - 1] = '#';
  const filter = levels.join('/');
  return filter === '' ? '+' : filter;
}
