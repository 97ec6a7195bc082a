/**
 * TopicIndex: the subscription trie. A filter × topic table of the section 4.7 rules, the
 * grouping of one subscriber's overlapping filters, add/remove bookkeeping and pruning, shared
 * groups and their round-robin `pick`, the match cache's generation flush, and a seeded
 * differential run against a naive matcher written from the spec text.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { queryObjects } from 'node:v8';
import { type MatchResult, SharedGroup, TopicIndex } from '../../src/router/index.ts';
import { Rng } from '../helpers/rng.ts';
import { naiveMatches, randomFilter, randomTopic } from '../helpers/topic-oracle.ts';

/** A match result as plain sorted data, so results compare with deepEqual. */
function normalize(result: MatchResult<string, string>): { subscribers: string[]; groups: string[] } {
  return {
    subscribers: result.subscribers.map((s) => `${s.key}=${[...s.values].sort().join(',')}`).sort(),
    groups: result.groups.map((g) => `${g.shareName}|${g.filter}`).sort(),
  };
}

const matchedKeys = (index: TopicIndex<string, string>, topic: string): string[] =>
  index
    .match(topic)
    .subscribers.map((s) => s.key)
    .sort();

/** [filter, topic, matches] */
const TABLE: [string, string, boolean][] = [
  // Exact levels.
  ['a', 'a', true],
  ['a', 'b', false],
  ['a/b', 'a/b', true],
  ['a/b', 'a', false],
  ['a', 'a/b', false],
  ['a/b', 'a/b/c', false],
  // `+`: exactly one level, which may be empty.
  ['+', 'a', true],
  ['+', 'a/b', false],
  ['a/+', 'a/b', true],
  ['a/+', 'a', false],
  ['a/+', 'a/', true],
  ['a/+', 'a/b/c', false],
  ['+/b', 'a/b', true],
  ['+/b', 'a/c', false],
  ['+/+', 'a/b', true],
  ['+/+', '/finance', true],
  ['/+', '/finance', true],
  ['+', '/finance', false],
  ['a/+/c', 'a/b/c', true],
  ['a/+/c', 'a//c', true],
  ['a/+/c', 'a/b/d', false],
  ['sport/tennis/+', 'sport/tennis/player1', true],
  ['sport/tennis/+', 'sport/tennis/player1/ranking', false],
  ['sport/+', 'sport', false],
  ['sport/+', 'sport/', true],
  // `#`: this level and every level below; `a/#` includes `a` itself [MQTT-4.7.1-2].
  ['#', 'a', true],
  ['#', 'a/b/c', true],
  ['#', '/', true],
  ['#', '/a', true],
  ['a/#', 'a', true],
  ['a/#', 'a/', true],
  ['a/#', 'a/b', true],
  ['a/#', 'a/b/c/d', true],
  ['a/#', 'b', false],
  ['a/#', 'ab', false],
  ['a/b/#', 'a', false],
  ['sport/tennis/player1/#', 'sport/tennis/player1', true],
  ['sport/tennis/player1/#', 'sport/tennis/player1/ranking', true],
  ['sport/tennis/player1/#', 'sport/tennis/player1/score/wimbledon', true],
  ['sport/#', 'sport', true],
  ['+/#', 'a', true],
  ['+/#', 'a/b/c', true],
  ['a/+/#', 'a', false],
  ['a/+/#', 'a/b', true],
  ['a/+/#', 'a/b/c', true],
  // Empty levels are levels: `a//b` has three, a leading `/` makes an empty first one.
  ['a//b', 'a//b', true],
  ['a//b', 'a/b', false],
  ['a/b', 'a//b', false],
  ['a//b', 'a/x/b', false],
  ['/a', '/a', true],
  ['/a', 'a', false],
  ['a', '/a', false],
  ['+/a', '/a', true],
  ['/', '/', true],
  ['+/+', '/', true],
  ['+', '/', false],
  ['a/', 'a/', true],
  ['a/', 'a', false],
  ['//', '//', true],
  ['/+/', '//', true],
  // `$` topics: no leading wildcard reaches them; explicit `$` levels and later wildcards do [MQTT-4.7.2-1].
  ['#', '$SYS', false],
  ['#', '$SYS/broker/uptime', false],
  ['+', '$SYS', false],
  ['+/broker/uptime', '$SYS/broker/uptime', false],
  ['+/#', '$SYS/broker', false],
  ['+', '$', false],
  ['#', '$', false],
  ['$', '$', true],
  ['$SYS/#', '$SYS', true],
  ['$SYS/#', '$SYS/broker/uptime', true],
  ['$SYS/+/uptime', '$SYS/broker/uptime', true],
  ['$SYS/broker/+', '$SYS/broker/uptime', true],
  ['$SYS/broker/uptime', '$SYS/broker/uptime', true],
  ['$SYS/#', '$SYSTEM', false],
  ['a/+', 'a/$x', true],
  ['a/#', 'a/$x/y', true],
  ['+/+', 'a/$x', true],
  ['#', 'a/$x', true],
  ['#', 'x$', true],
  ['$share/g/a', '$share/g/a', true],
  // Literal levels are map keys, wildcards are slots: names that look like either never collide.
  ['a/plus', 'a/x', false],
  ['a/hash', 'a/x/y', false],
  ['a/+', 'a/plus', true],
  ['a/__proto__', 'a/__proto__', true],
  ['a/__proto__', 'a/constructor', false],
  ['constructor', 'constructor', true],
  ['toString/+', 'toString/x', true],
  ['children', 'x', false],
];

describe('TopicIndex matching table', () => {
  for (const [filter, topic, expected] of TABLE) {
    test(`${JSON.stringify(filter)} ${expected ? 'matches' : 'does not match'} ${JSON.stringify(topic)}`, () => {
      // Alone in the index, and among decoys that must not change its answer.
      const alone = new TopicIndex<string, string>();
      alone.add(filter, 'sub', filter);
      assert.deepEqual(matchedKeys(alone, topic), expected ? ['sub'] : []);

      const crowded = new TopicIndex<string, string>();
      crowded.add(filter, 'sub', filter);
      for (const [other] of TABLE) if (other !== filter) crowded.add(other, `decoy:${other}`, other);
      const keys = matchedKeys(crowded, topic);
      assert.equal(keys.includes('sub'), expected);
      for (const key of keys) {
        if (key !== 'sub') assert.ok(naiveMatches(key.slice('decoy:'.length), topic), key);
      }
      // The oracle agrees with the table too, so the differential test below checks a trusted rule.
      assert.equal(naiveMatches(filter, topic), expected);
    });
  }
});

describe('TopicIndex subscriptions', () => {
  test("a subscriber's overlapping filters give one MatchedSubscriber with every matching value", () => {
    const index = new TopicIndex<string, string>();
    index.add('a/b', 'k', 'exact');
    index.add('a/+', 'k', 'plus');
    index.add('a/#', 'k', 'hash');
    index.add('#', 'k', 'root-hash');
    index.add('x/y', 'k', 'other');
    index.add('a/b', 'j', 'j-exact');
    const result = index.match('a/b');
    assert.equal(result.subscribers.length, 2);
    assert.deepEqual(normalize(result).subscribers, ['j=j-exact', 'k=exact,hash,plus,root-hash']);
    assert.deepEqual(result.groups, []);
  });

  test('add returns true for a new (filter, key) and false when it replaces the value', () => {
    const index = new TopicIndex<string, number>();
    assert.equal(index.add('a/+', 'k', 1), true);
    assert.equal(index.add('a/+', 'j', 1), true);
    assert.equal(index.add('a/#', 'k', 1), true);
    assert.equal(index.size, 3);
    assert.equal(index.add('a/+', 'k', 2), false);
    assert.equal(index.size, 3);
    const k = index.match('a/b').subscribers.find((s) => s.key === 'k')!;
    assert.deepEqual([...k.values].sort(), [1, 2]);
  });

  test('remove returns false for an unknown filter, an unknown key, or a prefix of a filter', () => {
    const index = new TopicIndex<string, string>();
    index.add('a/b/c', 'k', 'v');
    const generation = index.generation;
    assert.equal(index.remove('x', 'k'), false);
    assert.equal(index.remove('a/b/c', 'other'), false);
    assert.equal(index.remove('a/b', 'k'), false);
    assert.equal(index.remove('a/b/c/d', 'k'), false);
    assert.equal(index.remove('a/b/+', 'k'), false);
    assert.equal(index.remove('a/b/#', 'k'), false);
    assert.equal(index.size, 1);
    assert.equal(index.generation, generation, 'a failed removal is not a change');
    assert.equal(index.remove('a/b/c', 'k'), true);
    assert.equal(index.remove('a/b/c', 'k'), false);
    assert.equal(index.size, 0);
  });

  test('removing one filter keeps its neighbours, prefixes and extensions', () => {
    const index = new TopicIndex<string, string>();
    index.add('a', 'p', 'prefix');
    index.add('a/b', 'k', 'mid');
    index.add('a/b/c', 'e', 'extension');
    index.add('a/+', 'w', 'plus');
    index.add('a/#', 'h', 'hash');
    index.addShared('g', 'a/b', 's', 'shared');
    assert.equal(index.remove('a/b', 'k'), true);
    assert.deepEqual(matchedKeys(index, 'a'), ['h', 'p']);
    assert.deepEqual(matchedKeys(index, 'a/b'), ['h', 'w']);
    assert.deepEqual(normalize(index.match('a/b')).groups, ['g|a/b']);
    assert.deepEqual(matchedKeys(index, 'a/b/c'), ['e', 'h']);
    assert.equal(index.remove('a/b/c', 'e'), true);
    assert.equal(index.remove('a/+', 'w'), true);
    assert.deepEqual(matchedKeys(index, 'a/b'), ['h']);
    assert.equal(index.remove('a/#', 'h'), true);
    assert.deepEqual(matchedKeys(index, 'a'), ['p']);
    assert.deepEqual(matchedKeys(index, 'a/b'), []);
    assert.deepEqual(normalize(index.match('a/b')).groups, ['g|a/b']);
  });

  test('after removing everything the index is empty: size 0, no matches, and reusable', () => {
    const index = new TopicIndex<string, string>();
    const filters = ['a', 'a/b', 'a/+', 'a/#', '+/b', '#', '/', 'a//b', '$SYS/#', '+/+/+'];
    for (const f of filters) {
      index.add(f, 'k1', f);
      index.add(f, 'k2', f);
      index.addShared('g', f, 'k1', f);
    }
    const topics = ['a', 'a/b', 'x/b', '/', 'a//b', '$SYS/x', 'q/r/s'];
    for (const t of topics) assert.notEqual(index.match(t).subscribers.length, 0, t);
    for (const f of filters) {
      assert.equal(index.remove(f, 'k1'), true);
      assert.equal(index.remove(f, 'k2'), true);
      assert.equal(index.removeShared('g', f, 'k1'), true);
    }
    assert.equal(index.size, 0);
    for (const t of topics) assert.deepEqual(index.match(t), { subscribers: [], groups: [] }, t);
    for (const f of filters) assert.equal(index.remove(f, 'k1'), false);
    // Re-adding after the trie was pruned behaves like a fresh index.
    assert.equal(index.add('a/+', 'k3', 'again'), true);
    assert.equal(index.size, 1);
    assert.deepEqual(matchedKeys(index, 'a/b'), ['k3']);
    assert.deepEqual(matchedKeys(index, 'a'), []);
  });
  test('removal prunes the trie: the nodes of removed filters are garbage', () => {
    // Every trie node with literal children or subscribers owns a Map, so live Maps count nodes.
    // queryObjects runs a full GC first and counts what is still reachable.
    const liveMaps = () => queryObjects(Map, { format: 'count' }) as number;
    const index = new TopicIndex<string, number>();
    const filters = Array.from({ length: 3000 }, (_, i) => `site/${i}/device/${i % 7}/+/#`);
    const before = liveMaps();
    for (const [i, f] of filters.entries()) {
      index.add(f, 'k', i);
      index.addShared('g', f, 'k', i);
    }
    assert.ok(liveMaps() - before > 3 * filters.length);
    for (const f of filters) {
      assert.equal(index.remove(f, 'k'), true);
      assert.equal(index.removeShared('g', f, 'k'), true);
    }
    assert.ok(liveMaps() - before < 10, 'removed filters left nodes behind');
    assert.equal(index.size, 0);
  });
});

describe('TopicIndex shared groups', () => {
  test('addShared returns true for a new member, false when replacing; size counts members', () => {
    const index = new TopicIndex<string, string>();
    assert.equal(index.addShared('g', 'a/+', 'k1', 'v1'), true);
    assert.equal(index.addShared('g', 'a/+', 'k2', 'v2'), true);
    assert.equal(index.addShared('g', 'a/+', 'k1', 'v1b'), false);
    assert.equal(index.size, 2);
    const [group] = index.match('a/b').groups;
    assert.ok(group instanceof SharedGroup);
    assert.equal(group.shareName, 'g');
    assert.equal(group.filter, 'a/+');
    assert.equal(group.size, 2);
    assert.equal(group.has('k1'), true);
    assert.deepEqual(group.pick(), ['k1', 'v1b']);
  });

  test('each (share name, filter) is its own group; shared subscriptions are not plain subscribers', () => {
    const index = new TopicIndex<string, string>();
    index.addShared('g1', 'a/+', 'k', 'v');
    index.addShared('g2', 'a/+', 'k', 'v');
    index.addShared('g1', 'a/#', 'k', 'v');
    index.addShared('g1', 'b/+', 'k', 'v');
    const result = index.match('a/b');
    assert.deepEqual(result.subscribers, []);
    assert.deepEqual(normalize(result).groups, ['g1|a/#', 'g1|a/+', 'g2|a/+']);
    assert.deepEqual(normalize(index.match('$x/b')).groups, []); // [MQTT-4.7.2-1] holds for groups too
  });

  test('removeShared removes a member, drops an empty group, and returns false for unknowns', () => {
    const index = new TopicIndex<string, string>();
    index.addShared('g', 'a/+', 'k1', 'v');
    index.addShared('g', 'a/+', 'k2', 'v');
    assert.equal(index.removeShared('h', 'a/+', 'k1'), false);
    assert.equal(index.removeShared('g', 'a/#', 'k1'), false);
    assert.equal(index.removeShared('g', 'a/+', 'k3'), false);
    assert.equal(index.removeShared('g', 'x/y/z', 'k1'), false);
    assert.equal(index.remove('a/+', 'k1'), false, 'a member is not a plain subscription');
    assert.equal(index.removeShared('g', 'a/+', 'k1'), true);
    assert.equal(index.size, 1);
    const [group] = index.match('a/b').groups;
    assert.equal(group!.size, 1);
    assert.equal(group!.has('k1'), false);
    assert.equal(index.removeShared('g', 'a/+', 'k2'), true);
    assert.equal(index.size, 0);
    assert.deepEqual(index.match('a/b').groups, []);
    assert.equal(index.removeShared('g', 'a/+', 'k2'), false);
  });

  test('watchGroups hears every member gained or lost (count after the change); groups() lists the groups with members', () => {
    const index = new TopicIndex<string, string>();
    const heard: string[] = [];
    index.addShared('g', '#', 'early', 'v'); // before the watcher: listed by groups()
    index.watchGroups((shareName, filter, members) => heard.push(`${shareName}|${filter}=${members}`));
    index.addShared('g', 'a/+', 'k1', 'v');
    index.addShared('g', 'a/+', 'k1', 'v2'); // a replacement: no change in members
    index.addShared('g', 'a/+', 'k2', 'v');
    index.addShared('h', 'a/+', 'k1', 'v');
    index.add('a/+', 'plain', 'v'); // plain subscriptions are not groups
    index.removeShared('g', 'a/+', 'k1');
    index.removeShared('g', 'a/+', 'nobody');
    index.removeShared('g', 'a/+', 'k2');
    assert.deepEqual(heard, ['g|a/+=1', 'g|a/+=2', 'h|a/+=1', 'g|a/+=1', 'g|a/+=0']);
    assert.deepEqual(
      index
        .groups()
        .map((g) => `${g.shareName}|${g.filter}=${g.size}`)
        .sort(),
      ['g|#=1', 'h|a/+=1'],
    );
    index.watchGroups(undefined);
    index.removeShared('h', 'a/+', 'k1');
    assert.equal(heard.length, 5, 'a cleared watcher hears nothing');
  });

  test('members marked away (no connection) leave `connected`, and the watcher hears each change', () => {
    const index = new TopicIndex<string, string>();
    const heard: string[] = [];
    index.watchGroups((_share, _filter, members, connected) => heard.push(`${members}/${connected}`));
    index.addShared('g', 'a/+', 'on', 'v');
    index.addShared('g', 'a/+', 'off', 'v', true); // a restored session: away from the start
    assert.equal(index.setSharedAway('g', 'a/+', 'on', true), true);
    assert.equal(index.setSharedAway('g', 'a/+', 'on', true), false, 'already away: nothing heard');
    assert.equal(index.setSharedAway('g', 'a/+', 'nobody', true), false);
    assert.equal(index.setSharedAway('h', 'a/+', 'on', false), false, 'not a member of h');
    assert.equal(index.setSharedAway('g', 'a/+', 'off', false), true);
    index.addShared('g', 'a/+', 'on', 'v2'); // subscribing again while connected: back
    index.removeShared('g', 'a/+', 'off');
    const group = index.match('a/b').groups[0]!;
    assert.deepEqual([group.size, group.connected], [1, 1]);
    assert.deepEqual(heard, ['1/1', '2/1', '2/0', '2/1', '2/2', '1/1']);
    assert.equal(index.groupCount, 1);
    index.removeShared('g', 'a/+', 'on');
    assert.equal(index.groupCount, 0, 'the group went with its last member');
  });

  test('pick rotates round-robin in joining order', () => {
    const group = new SharedGroup<string, number>('g', 'a');
    assert.equal(group.pick(), undefined);
    group.set('A', 1);
    group.set('B', 2);
    group.set('C', 3);
    const order = Array.from({ length: 7 }, () => group.pick()![0]);
    assert.deepEqual(order, ['A', 'B', 'C', 'A', 'B', 'C', 'A']);
    // Replacing a member's value keeps its turn.
    group.set('B', 20);
    assert.deepEqual(group.pick(), ['B', 20]);
    assert.deepEqual(group.pick(), ['C', 3]);
  });

  test('pick skips members the predicate rejects, and returns undefined when it rejects all', () => {
    const group = new SharedGroup<string, number>('g', 'a');
    for (const [k, v] of [
      ['A', 1],
      ['B', 2],
      ['C', 3],
      ['D', 4],
    ] as const)
      group.set(k, v);
    const online = new Set(['A', 'C']);
    const picks = Array.from({ length: 5 }, () => group.pick((k) => online.has(k))![0]);
    assert.deepEqual(picks, ['A', 'C', 'A', 'C', 'A']);
    // The rotation continues after the last member picked, whatever the predicate.
    assert.equal(group.pick()![0], 'B');
    assert.equal(
      group.pick(() => false),
      undefined,
    );
    assert.equal(group.pick()![0], 'C', 'a failed pick does not move the rotation');
    online.add('B');
    online.delete('A');
    assert.deepEqual(
      Array.from({ length: 4 }, () => group.pick((k) => online.has(k))![0]),
      ['B', 'C', 'B', 'C'],
    );
  });

  test('removing members keeps the rotation on the member that was next', () => {
    const make = () => {
      const g = new SharedGroup<string, string>('g', 'a');
      for (const k of ['A', 'B', 'C', 'D']) g.set(k, k);
      return g;
    };
    // Removing a member already served this round.
    let g = make();
    assert.equal(g.pick()![0], 'A');
    assert.equal(g.pick()![0], 'B');
    assert.equal(g.delete('A'), true);
    assert.deepEqual(
      Array.from({ length: 4 }, () => g.pick()![0]),
      ['C', 'D', 'B', 'C'],
    );
    // Removing the member that was next: its successor goes next.
    g = make();
    assert.equal(g.pick()![0], 'A');
    assert.equal(g.delete('B'), true);
    assert.deepEqual(
      Array.from({ length: 4 }, () => g.pick()![0]),
      ['C', 'D', 'A', 'C'],
    );
    // Removing a member later in the round.
    g = make();
    assert.equal(g.pick()![0], 'A');
    assert.equal(g.delete('D'), true);
    assert.deepEqual(
      Array.from({ length: 4 }, () => g.pick()![0]),
      ['B', 'C', 'A', 'B'],
    );
    // Removing the last member when it was next wraps to the first.
    g = make();
    for (let i = 0; i < 3; i++) g.pick();
    assert.equal(g.delete('D'), true);
    assert.deepEqual(
      Array.from({ length: 3 }, () => g.pick()![0]),
      ['A', 'B', 'C'],
    );
    // Emptied and refilled: the new member is picked.
    g = make();
    g.pick();
    g.pick();
    g.pick();
    for (const k of ['A', 'B', 'C', 'D']) assert.equal(g.delete(k), true);
    assert.equal(g.delete('A'), false);
    assert.equal(g.size, 0);
    assert.equal(g.pick(), undefined);
    g.set('E', 'E');
    assert.deepEqual(g.pick(), ['E', 'E']);
    assert.deepEqual(g.pick(), ['E', 'E']);
  });

  test('every member is picked equally often while members come and go', () => {
    const g = new SharedGroup<number, number>('g', 'a');
    const rng = new Rng(7);
    const members = new Set<number>();
    for (let step = 0; step < 2000; step++) {
      const k = rng.int(6);
      if (rng.int(4) === 0) {
        if (members.has(k)) {
          assert.equal(g.delete(k), true);
          members.delete(k);
        } else {
          assert.equal(g.set(k, k), true);
          members.add(k);
        }
      }
      assert.equal(g.size, members.size);
      if (members.size === 0) {
        assert.equal(g.pick(), undefined);
        continue;
      }
      // A full round over a stable membership serves each member exactly once.
      const round = Array.from({ length: members.size }, () => g.pick()![0]).sort();
      assert.deepEqual(round, [...members].sort());
    }
  });
});

describe('TopicIndex match cache', () => {
  test('a repeated match returns the cached result until the index changes', () => {
    const index = new TopicIndex<string, string>();
    index.add('a/+', 'k', 'v');
    const first = index.match('a/b');
    assert.equal(index.match('a/b'), first);
    const generation = index.generation;
    index.add('a/b', 'j', 'w');
    assert.ok(index.generation > generation);
    const second = index.match('a/b');
    assert.notEqual(second, first);
    assert.deepEqual(normalize(second).subscribers, ['j=w', 'k=v']);
  });

  for (const cacheSize of [0, 1, 3, 10_000]) {
    test(`results follow add, replace, remove and shared changes (cacheSize ${cacheSize})`, () => {
      const index = new TopicIndex<string, string>({ cacheSize });
      const topics = ['a/b', 'a/c', 'a', 'x/y', '$SYS/a'];
      const look = () => topics.map((t) => normalize(index.match(t)));
      const empty = { subscribers: [], groups: [] };
      assert.deepEqual(look(), [empty, empty, empty, empty, empty]); // caches the empty results
      index.add('a/+', 'k', 'v1');
      assert.deepEqual(
        look().map((r) => r.subscribers),
        [['k=v1'], ['k=v1'], [], [], []],
      );
      index.add('a/+', 'k', 'v2');
      assert.deepEqual(
        look().map((r) => r.subscribers),
        [['k=v2'], ['k=v2'], [], [], []],
      );
      index.add('#', 'h', 'all');
      assert.deepEqual(
        look().map((r) => r.subscribers),
        [['h=all', 'k=v2'], ['h=all', 'k=v2'], ['h=all'], ['h=all'], []],
      );
      index.addShared('g', '$SYS/#', 'm1', 'x');
      index.addShared('g', '$SYS/#', 'm2', 'x');
      assert.deepEqual(
        look().map((r) => r.groups),
        [[], [], [], [], ['g|$SYS/#']],
      );
      index.removeShared('g', '$SYS/#', 'm1');
      assert.equal(index.match('$SYS/a').groups[0]!.size, 1);
      index.removeShared('g', '$SYS/#', 'm2');
      index.remove('a/+', 'k');
      assert.deepEqual(
        look().map((r) => r.subscribers),
        [['h=all'], ['h=all'], ['h=all'], ['h=all'], []],
      );
      index.remove('#', 'h');
      assert.deepEqual(look(), [empty, empty, empty, empty, empty]);
    });
  }

  test('a full cache is flushed, not trusted: many distinct topics stay correct', () => {
    const index = new TopicIndex<string, string>({ cacheSize: 16 });
    index.add('t/+', 'k', 'v');
    index.add('t/7', 'j', 'w');
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 100; i++) {
        assert.deepEqual(matchedKeys(index, `t/${i}`), i === 7 ? ['j', 'k'] : ['k']);
      }
    }
  });
});

/** The deepest topic name there is: 65,535 bytes of `/`, 65,536 empty levels. */
const DEEPEST = '/'.repeat(65_535);
/** The deepest `+` filter: 32,767 `+/` and a last `+`, 65,535 bytes, 32,768 levels. */
const DEEP_PLUS = `${'+/'.repeat(32_767)}+`;

describe('TopicIndex deep topics: no walk recurses', () => {
  test('a topic of 65,536 levels matches #, its exact filter and a deep .../#; the filters are removed cleanly', () => {
    const index = new TopicIndex<string, string>();
    index.add('#', 'hash', 'v');
    index.add(DEEPEST, 'exact', 'v');
    index.add(`${'/'.repeat(65_534)}#`, 'deep-hash', 'v');
    index.addShared('g', DEEPEST, 'member', 'v');
    index.add(`${DEEPEST.slice(1)}x`, 'other', 'v'); // as deep, last level differs
    const result = index.match(DEEPEST);
    assert.deepEqual(normalize(result), {
      subscribers: ['deep-hash=v', 'exact=v', 'hash=v'],
      groups: [`g|${DEEPEST}`],
    });
    assert.ok(index.remove(DEEPEST, 'exact'));
    assert.ok(index.removeShared('g', DEEPEST, 'member'));
    assert.ok(index.remove(`${'/'.repeat(65_534)}#`, 'deep-hash'));
    assert.deepEqual(matchedKeys(index, DEEPEST), ['hash']);
    assert.deepEqual(matchedKeys(index, `${DEEPEST.slice(1)}x`), ['hash', 'other']);
  });

  test('a filter of 32,768 + levels and an exact filter beside it both match a topic of 32,768 levels', () => {
    const index = new TopicIndex<string, string>({ cacheSize: 0 });
    const topic = '/'.repeat(32_767);
    index.add(DEEP_PLUS, 'plus', 'v');
    index.add(topic, 'exact', 'v');
    index.add(`${'+/'.repeat(32_767)}#`, 'plus-hash', 'v');
    assert.deepEqual(matchedKeys(index, topic), ['exact', 'plus', 'plus-hash']);
    assert.deepEqual(matchedKeys(index, `${'x/'.repeat(32_767)}x`), ['plus', 'plus-hash']);
    assert.deepEqual(matchedKeys(index, DEEPEST), ['plus-hash']);
  });
});

describe('TopicIndex differential against a naive matcher', () => {
  for (const [seed, cacheSize] of [
    [0x5eed, 10_000],
    [0xc0ffee, 0],
    [0xbadcafe, 7],
  ] as const) {
    test(`random subscriptions, removals and topics (seed ${seed.toString(16)}, cacheSize ${cacheSize})`, () => {
      const rng = new Rng(seed);
      const index = new TopicIndex<string, string>({ cacheSize });
      /** filter → key → value */
      const plain = new Map<string, Map<string, string>>();
      /** `${shareName}|${filter}` → member keys */
      const shared = new Map<string, Set<string>>();
      let count = 0;
      let checks = 0;

      const expected = (topic: string) => {
        const byKey = new Map<string, string[]>();
        for (const [filter, subs] of plain) {
          if (!naiveMatches(filter, topic)) continue;
          for (const [key, value] of subs) {
            const values = byKey.get(key) ?? [];
            values.push(value);
            byKey.set(key, values);
          }
        }
        const groups: string[] = [];
        for (const [id, members] of shared) {
          if (members.size > 0 && naiveMatches(id.slice(id.indexOf('|') + 1), topic)) groups.push(id);
        }
        return {
          subscribers: [...byKey].map(([k, vs]) => `${k}=${vs.sort().join(',')}`).sort(),
          groups: groups.sort(),
        };
      };

      for (let round = 0; round < 40; round++) {
        for (let op = 0; op < 75; op++) {
          const filter = randomFilter(rng);
          const key = `k${rng.int(12)}`;
          const r = rng.int(10);
          if (r < 5) {
            const value = `${filter}#${rng.int(3)}`;
            const subs = plain.get(filter) ?? new Map<string, string>();
            const isNew = !subs.has(key);
            subs.set(key, value);
            plain.set(filter, subs);
            if (isNew) count++;
            assert.equal(index.add(filter, key, value), isNew);
          } else if (r < 8) {
            // Mostly remove something that exists, so that pruning is exercised.
            const filters = [...plain.keys()];
            const f = filters.length > 0 && rng.int(4) !== 0 ? rng.pick(filters) : filter;
            const subs = plain.get(f);
            const k =
              subs !== undefined && subs.size > 0 && rng.int(4) !== 0 ? rng.pick([...subs.keys()]) : key;
            const existed = subs?.delete(k) ?? false;
            if (subs?.size === 0) plain.delete(f);
            if (existed) count--;
            assert.equal(index.remove(f, k), existed, `remove ${f} ${k}`);
          } else {
            const shareName = rng.pick(['g1', 'g2']);
            const id = `${shareName}|${filter}`;
            const members = shared.get(id) ?? new Set<string>();
            shared.set(id, members);
            if (r === 8) {
              const isNew = !members.has(key);
              members.add(key);
              if (isNew) count++;
              assert.equal(index.addShared(shareName, filter, key, key), isNew);
            } else {
              const existed = members.delete(key);
              if (existed) count--;
              assert.equal(index.removeShared(shareName, filter, key), existed);
            }
          }
        }
        assert.equal(index.size, count);
        for (let i = 0; i < 50; i++) {
          const topic = randomTopic(rng);
          const want = expected(topic);
          assert.deepEqual(normalize(index.match(topic)), want, `topic ${JSON.stringify(topic)}`);
          assert.deepEqual(normalize(index.match(topic)), want, `again ${JSON.stringify(topic)}`);
          for (const g of index.match(topic).groups) {
            assert.equal(g.size, shared.get(`${g.shareName}|${g.filter}`)!.size);
          }
          checks++;
        }
      }
      assert.equal(checks, 2000);

      // Drain everything: the pruned index must come back empty.
      for (const [filter, subs] of plain)
        for (const key of subs.keys()) assert.equal(index.remove(filter, key), true);
      for (const [id, members] of shared) {
        const [shareName, filter] = [id.slice(0, id.indexOf('|')), id.slice(id.indexOf('|') + 1)];
        for (const key of members) assert.equal(index.removeShared(shareName, filter, key), true);
      }
      assert.equal(index.size, 0);
      for (let i = 0; i < 100; i++)
        assert.deepEqual(normalize(index.match(randomTopic(rng))), { subscribers: [], groups: [] });
    });
  }
});
