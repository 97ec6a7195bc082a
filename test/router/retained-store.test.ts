/**
 * RetainedStore: one message per topic, empty payload deletes [MQTT-3.3.1-6], [MQTT-3.3.1-7],
 * size/bytes accounting (topic, properties and payload: Message.heldBytes), filter matching with the subscription rules (section 4.7), expiry
 * [MQTT-3.3.2-5], payloads detached from the receive buffer, and a seeded differential run
 * against a naive matcher.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RetainedStore } from '../../src/retained/index.ts';
import { Message } from '../../src/router/index.ts';
import { Rng } from '../helpers/rng.ts';
import { naiveMatches, randomFilter, randomTopic } from '../helpers/topic-oracle.ts';

function retained(
  topic: string,
  payload: string | Buffer,
  init: { expiry?: number; at?: number } = {},
): Message {
  return new Message({
    topic,
    payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
    qos: 1,
    retain: true,
    receivedAt: init.at ?? 1_000_000,
    messageExpiryInterval: init.expiry,
  });
}

const NOW = 2_000_000;
const topicsOf = (store: RetainedStore, filter: string, now = NOW): string[] =>
  store
    .match(filter, now)
    .map((m) => m.topic)
    .sort();

describe('RetainedStore apply', () => {
  test('stores one message per topic; a later one replaces it', () => {
    const store = new RetainedStore();
    store.apply(retained('a/b', 'one'));
    store.apply(retained('a/c', 'two'));
    assert.equal(store.size, 2);
    assert.equal(store.get('a/b')!.payload.toString(), 'one');
    store.apply(retained('a/b', 'three!'));
    assert.equal(store.size, 2);
    assert.equal(store.get('a/b')!.payload.toString(), 'three!');
    assert.deepEqual(
      store.match('a/b', NOW).map((m) => m.payload.toString()),
      ['three!'],
    );
    assert.equal(store.get('a'), undefined);
    assert.equal(store.get('a/b/c'), undefined);
  });

  test('an empty payload deletes the topic and is not stored [MQTT-3.3.1-6] [MQTT-3.3.1-7]', () => {
    const store = new RetainedStore();
    store.apply(retained('a/b', 'x'));
    store.apply(retained('a/b', ''));
    assert.equal(store.size, 0);
    assert.equal(store.bytes, 0);
    assert.equal(store.get('a/b'), undefined);
    assert.deepEqual(store.match('#', NOW), []);
    // Deleting a topic that holds nothing is a no-op, not a stored empty message.
    store.apply(retained('never/set', ''));
    assert.equal(store.size, 0);
    assert.equal(store.get('never/set'), undefined);
    assert.deepEqual(store.match('never/#', NOW), []);
  });

  test('size and bytes follow add, replace and delete', () => {
    const store = new RetainedStore();
    assert.equal(store.size, 0);
    assert.equal(store.bytes, 0);
    // Each message counts its topic and payload bytes (Message.heldBytes).
    store.apply(retained('a', '12345'));
    store.apply(retained('a/b', '123'));
    assert.deepEqual([store.size, store.bytes], [2, 1 + 5 + 3 + 3]);
    store.apply(retained('a', '1'));
    assert.deepEqual([store.size, store.bytes], [2, 1 + 1 + 3 + 3]);
    store.apply(retained('a/b', Buffer.alloc(100)));
    assert.deepEqual([store.size, store.bytes], [2, 1 + 1 + 3 + 100]);
    assert.equal(store.delete('a'), true);
    assert.deepEqual([store.size, store.bytes], [1, 103]);
    assert.equal(store.delete('a'), false);
    assert.equal(store.delete('a/b/c'), false);
    assert.equal(store.delete('zzz'), false);
    assert.deepEqual([store.size, store.bytes], [1, 103]);
    store.apply(retained('a/b', ''));
    assert.deepEqual([store.size, store.bytes], [0, 0]);
  });

  test('deleting a topic keeps the topics above and below it', () => {
    const store = new RetainedStore();
    for (const t of ['a', 'a/b', 'a/b/c']) store.apply(retained(t, t));
    assert.equal(store.delete('a/b'), true);
    assert.deepEqual(topicsOf(store, '#'), ['a', 'a/b/c']);
    assert.equal(store.delete('a/b/c'), true);
    assert.deepEqual(topicsOf(store, '#'), ['a']);
    store.apply(retained('a/b', 'again'));
    assert.deepEqual(topicsOf(store, 'a/+'), ['a/b']);
    assert.equal(store.delete('a'), true);
    assert.equal(store.delete('a/b'), true);
    assert.deepEqual(topicsOf(store, '#'), []);
    assert.equal(store.size, 0);
  });

  test('detach: the stored payload no longer shares memory with the receive buffer', () => {
    // A socket chunk holding the PUBLISH; the payload and correlation data are views into it.
    const chunk = Buffer.alloc(64 * 1024, 0x2e);
    chunk.write('payload', 100);
    chunk.write('corr', 200);
    const message = new Message({
      topic: 'a/b',
      payload: chunk.subarray(100, 107),
      qos: 0,
      retain: true,
      properties: { correlationData: chunk.subarray(200, 204), contentType: 'text/plain' },
    });
    const store = new RetainedStore();
    store.apply(message);
    const stored = store.get('a/b')!;
    assert.notEqual(stored.payload.buffer, chunk.buffer);
    assert.notEqual(stored.properties!.correlationData!.buffer, chunk.buffer);
    chunk.fill(0); // the socket reuses its buffer
    assert.equal(stored.payload.toString(), 'payload');
    assert.equal(stored.properties!.correlationData!.toString(), 'corr');
    assert.equal(stored.properties!.contentType, 'text/plain');
    // Topic (3), payload (7), correlation data (1 + 2 + 4) and content type (1 + 2 + 10).
    assert.equal(store.bytes, 3 + 7 + 7 + 13);
    // Detaching is idempotent: a second apply of the same message copies nothing more.
    const payload = stored.payload;
    assert.equal(stored.detach(), stored);
    assert.equal(stored.payload, payload);
  });
});

describe('RetainedStore match', () => {
  const TOPICS = [
    'a',
    'a/b',
    'a/c',
    'a/b/c',
    'a/',
    'a//b',
    '/',
    '/a',
    'b',
    '$SYS',
    '$SYS/uptime',
    '$SYS/a/b',
    'a/$x',
    '$',
  ];
  const store = new RetainedStore();
  for (const t of TOPICS) store.apply(retained(t, `payload of ${t}`));

  /** [filter, topics it matches] */
  const TABLE: [string, string[]][] = [
    ['a', ['a']],
    ['a/b', ['a/b']],
    ['a/b/c/d', []],
    ['x', []],
    ['+', ['a', 'b']],
    ['a/+', ['a/', 'a/$x', 'a/b', 'a/c']],
    ['+/b', ['a/b']],
    ['+/+', ['/', '/a', 'a/', 'a/$x', 'a/b', 'a/c']],
    ['a/+/b', ['a//b']],
    ['a//b', ['a//b']],
    ['/+', ['/', '/a']],
    ['/a', ['/a']],
    ['+/+/+', ['a//b', 'a/b/c']],
    ['#', ['/', '/a', 'a', 'a/', 'a//b', 'a/$x', 'a/b', 'a/b/c', 'a/c', 'b']],
    ['a/#', ['a', 'a/', 'a//b', 'a/$x', 'a/b', 'a/b/c', 'a/c']],
    ['a/b/#', ['a/b', 'a/b/c']],
    ['a/b/c/#', ['a/b/c']],
    ['+/#', ['/', '/a', 'a', 'a/', 'a//b', 'a/$x', 'a/b', 'a/b/c', 'a/c', 'b']],
    ['a/+/#', ['a/', 'a//b', 'a/$x', 'a/b', 'a/b/c', 'a/c']],
    ['/#', ['/', '/a']],
    ['x/#', []],
    ['$SYS/#', ['$SYS', '$SYS/a/b', '$SYS/uptime']],
    ['$SYS/+', ['$SYS/uptime']],
    ['$SYS', ['$SYS']],
    ['$', ['$']],
    ['+/uptime', []],
    ['+/a/b', []],
  ];
  for (const [filter, expected] of TABLE) {
    test(`${JSON.stringify(filter)} finds ${expected.length === 0 ? 'nothing' : expected.join(' ')}`, () => {
      assert.deepEqual(topicsOf(store, filter), [...expected].sort());
      for (const t of TOPICS) assert.equal(naiveMatches(filter, t), expected.includes(t), `oracle: ${t}`);
    });
  }
  test('match returns each message at most once, with its payload', () => {
    for (const [filter] of TABLE) {
      const found = store.match(filter, NOW);
      assert.equal(new Set(found.map((m) => m.topic)).size, found.length, filter);
      for (const m of found) assert.equal(m.payload.toString(), `payload of ${m.topic}`);
    }
    assert.equal(store.size, TOPICS.length, 'matching removes nothing that has not expired');
  });
});

describe('RetainedStore deep topics: no walk recurses', () => {
  test('messages 65,536 and 32,768 levels deep are found by #, deep + filters and exact filters, and deleted', () => {
    const store = new RetainedStore();
    const deepest = '/'.repeat(65_535); // 65,535 bytes, the longest topic name
    const half = '/'.repeat(32_767);
    store.apply(retained(deepest, 'deepest'));
    store.apply(retained(half, 'half'));
    store.apply(retained('a', 'shallow'));
    assert.deepEqual(topicsOf(store, '#'), [half, deepest, 'a'].sort());
    assert.deepEqual(topicsOf(store, `${'+/'.repeat(32_767)}+`), [half]);
    assert.deepEqual(topicsOf(store, `${'+/'.repeat(32_767)}#`), [half, deepest].sort());
    assert.deepEqual(topicsOf(store, `${'/'.repeat(65_534)}#`), [deepest]);
    assert.deepEqual(topicsOf(store, deepest), [deepest]);
    assert.ok(store.delete(deepest));
    assert.deepEqual(topicsOf(store, '#'), [half, 'a'].sort());
  });

  test('+ over 20,000 siblings finds each once, in the order they were retained', () => {
    const store = new RetainedStore();
    const topics = Array.from({ length: 20_000 }, (_, i) => `w/${(i * 7919) % 20_000}`);
    for (const t of topics) store.apply(retained(t, t));
    assert.deepEqual(
      store.match('w/+', NOW).map((m) => m.topic),
      topics,
    );
    assert.deepEqual(
      store.match('#', NOW).map((m) => m.topic),
      topics,
    );
  });
});

describe('RetainedStore expiry [MQTT-3.3.2-5]', () => {
  test('expired messages are not returned and are removed; live ones stay', () => {
    const store = new RetainedStore();
    const at = 1_000_000;
    store.apply(retained('e/short', 'aa', { expiry: 10, at }));
    store.apply(retained('e/long', 'bbb', { expiry: 100, at }));
    store.apply(retained('e/never', 'c', { at }));
    assert.deepEqual([store.size, store.bytes], [3, 7 + 2 + 6 + 3 + 7 + 1]);
    assert.deepEqual(
      topicsOf(store, 'e/#', at + 10_000),
      ['e/long', 'e/never', 'e/short'],
      'alive at its last ms',
    );
    assert.deepEqual(topicsOf(store, 'e/#', at + 10_001), ['e/long', 'e/never']);
    assert.deepEqual([store.size, store.bytes], [2, 6 + 3 + 7 + 1]);
    assert.equal(store.get('e/short'), undefined);
    // A filter that does not reach an expired message leaves it for later.
    assert.deepEqual(topicsOf(store, 'e/never', at + 500_000), ['e/never']);
    assert.equal(store.size, 2);
    assert.deepEqual(topicsOf(store, '+/+', at + 500_000), ['e/never']);
    assert.deepEqual([store.size, store.bytes], [1, 7 + 1]);
    assert.equal(store.get('e/long'), undefined);
  });

  test('a replacing message restarts the clock; an expired exact-topic match is removed', () => {
    const store = new RetainedStore();
    store.apply(retained('t', 'old', { expiry: 1, at: 0 }));
    store.apply(retained('t', 'new', { expiry: 60, at: 50_000 }));
    assert.deepEqual(
      store.match('t', 100_000).map((m) => m.payload.toString()),
      ['new'],
    );
    assert.deepEqual(store.match('t', 110_001), []);
    assert.deepEqual([store.size, store.bytes], [0, 0]);
  });
});

describe('RetainedStore differential against a naive matcher', () => {
  for (const seed of [0x5eed, 0xfeed5]) {
    test(`random applies, deletes, expiries and filters (seed ${seed.toString(16)})`, () => {
      const rng = new Rng(seed);
      const store = new RetainedStore();
      const model = new Map<string, Message>();
      let now = 1_000_000;
      let checks = 0;
      for (let round = 0; round < 40; round++) {
        for (let op = 0; op < 60; op++) {
          const topic = randomTopic(rng);
          const r = rng.int(10);
          if (r < 6) {
            const m = retained(topic, 'x'.repeat(1 + rng.int(20)), {
              at: now,
              expiry: rng.int(3) === 0 ? 1 + rng.int(30) : undefined,
            });
            store.apply(m);
            model.set(topic, m);
          } else if (r < 8) {
            store.apply(retained(topic, '', { at: now }));
            model.delete(topic);
          } else {
            assert.equal(store.delete(topic), model.delete(topic));
          }
        }
        now += 1000 * rng.int(5);
        for (let i = 0; i < 50; i++) {
          const filter = randomFilter(rng);
          const want: string[] = [];
          for (const [topic, m] of model) {
            if (!naiveMatches(filter, topic)) continue;
            if (m.expired(now)) model.delete(topic);
            else want.push(topic);
          }
          assert.deepEqual(topicsOf(store, filter, now), want.sort(), `filter ${JSON.stringify(filter)}`);
          checks++;
        }
        assert.equal(store.size, model.size);
        assert.equal(
          store.bytes,
          [...model.values()].reduce((sum, m) => sum + Buffer.byteLength(m.topic) + m.payload.length, 0),
        );
        for (const [topic, m] of model) assert.equal(store.get(topic), m);
      }
      assert.equal(checks, 2000);
      for (const topic of model.keys()) assert.equal(store.delete(topic), true);
      assert.deepEqual([store.size, store.bytes], [0, 0]);
      assert.deepEqual(store.match('#', now), []);
    });
  }
});

describe('RetainedStore page (the admin API list)', () => {
  test("pages laid end to end are match's messages in match's order, for random filters and page sizes", () => {
    const rng = new Rng(0xa9e);
    const store = new RetainedStore();
    for (let i = 0; i < 400; i++) store.apply(retained(randomTopic(rng), 'x'));
    for (let i = 0; i < 200; i++) {
      const filter = randomFilter(rng);
      const want = store.match(filter, NOW).map((m) => m.topic);
      const size = 1 + rng.int(7);
      const got: string[] = [];
      for (let skip = 0; ; skip += size) {
        const { messages, more } = store.page(filter, skip, size, NOW);
        got.push(...messages.map((m) => m.topic));
        assert.equal(more, skip + size < want.length, `filter ${filter}, skip ${skip}`);
        if (!more) break;
      }
      assert.deepEqual(got, want, `filter ${JSON.stringify(filter)}`);
    }
  });

  test('passes expired messages over without removing them (read-only)', () => {
    const store = new RetainedStore();
    store.apply(retained('e/1', 'old', { at: 0, expiry: 1 }));
    store.apply(retained('e/2', 'live'));
    assert.deepEqual(
      store.page('e/+', 0, 10, NOW).messages.map((m) => m.topic),
      ['e/2'],
    );
    assert.equal(store.size, 2);
  });

  test('stops one match past the page: a page of 10 among 1000 matches looks at 11 messages', () => {
    let looked = 0;
    class Counted extends Message {
      override expired(now: number): boolean {
        looked++;
        return super.expired(now);
      }
    }
    const store = new RetainedStore();
    for (let i = 0; i < 1000; i++)
      store.apply(new Counted({ topic: `n/${i}`, payload: Buffer.from('x'), qos: 0, retain: true }));
    const { messages, more } = store.page('#', 0, 10, NOW);
    assert.equal(messages.length, 10);
    assert.equal(more, true);
    assert.equal(looked, 11);
  });
});

describe('RetainedStore every (the cluster writes back what the stream lacks)', () => {
  test('every message once, `$` topics and the root level included, expired ones too', () => {
    const store = new RetainedStore();
    const topics = ['a', 'a/b', '$dev/x', '$SYS/y', '/lead', 'z/', '+literal'];
    for (const t of topics) store.apply(retained(t, `v-${t}`));
    store.apply(retained('old', 'gone', { expiry: 1, at: 0 }));
    store.apply(retained('cleared', 'x'));
    store.apply(retained('cleared', ''));
    assert.deepEqual([...store.every()].map((m) => m.topic).sort(), [...topics, 'old'].sort());
  });
});
