/**
 * Topic aliases (section 3.3.2.3.4): inbound aliases resolved per connection, and outbound
 * aliases toward clients that announce a Topic Alias Maximum, when `outboundTopicAliases` is
 * set: never above the client's maximum, least recently used number reused, none for a client
 * that announced none. Packet-level checks of the PUBLISH topic/alias pairs, and MQTT.js
 * sending and receiving aliased PUBLISHes through its own alias support.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import mqtt from 'mqtt';
import { harness, text } from '../helpers/v5-harness.ts';

const h = harness('alias', { outboundTopicAliases: 2 });

describe('inbound topic aliases', () => {
  test('a PUBLISH setting an alias, then PUBLISHes with the alias and an empty topic, reach subscribers under the topic [MQTT-3.3.2-12]', async () => {
    const sub = await h.connected(5);
    await h.subscribe(sub, 'in/alias', 0);
    const pub = await h.connected(5);
    await h.publish(pub, 'in/alias', 'first', 1, { properties: { topicAlias: 3 } });
    await h.publish(pub, '', 'second', 1, { properties: { topicAlias: 3 } });
    for (const expected of ['first', 'second']) {
      const p = await h.receive(sub);
      assert.equal(p.topic, 'in/alias');
      assert.equal(text(p), expected);
      assert.equal(p.properties?.topicAlias, undefined, 'the publisher’s alias is not forwarded');
    }
  });

  test('an empty topic with an alias never set is a protocol error: DISCONNECT 0x82 (section 3.3.2.3.4)', async () => {
    const pub = await h.connected(5);
    pub.send({
      type: 'publish',
      topic: '',
      payload: Buffer.from('x'),
      qos: 0,
      retain: false,
      dup: false,
      properties: { topicAlias: 9 },
    });
    assert.equal((await pub.expect('disconnect')).reasonCode, 0x82);
  });
});

describe('outbound topic aliases', () => {
  test('with Topic Alias Maximum 2 the client gets topic+alias once, then the alias alone; the least recently used number is reused [MQTT-3.3.2-11]', async () => {
    const sub = await h.connected(5, { properties: { topicAliasMaximum: 2 } });
    await h.subscribe(sub, 'out/#', 0);
    const pub = await h.connected(5);
    const sequence = ['out/a', 'out/a', 'out/b', 'out/c', 'out/a', 'out/c'];
    for (const topic of sequence) await h.publish(pub, topic, topic, 0);
    const seen = [];
    for (let i = 0; i < sequence.length; i++) {
      const p = await h.receive(sub);
      seen.push([p.topic, p.properties?.topicAlias, text(p)]);
    }
    assert.deepEqual(seen, [
      ['out/a', 1, 'out/a'],
      ['', 1, 'out/a'],
      ['out/b', 2, 'out/b'],
      ['out/c', 1, 'out/c'], // out/a was least recently used: its number goes to out/c
      ['out/a', 2, 'out/a'], // then out/b's
      ['', 1, 'out/c'],
    ]);
  });

  test('never more aliases than the client allows, and none for a client announcing no maximum [MQTT-3.1.2-26] [MQTT-3.1.2-27]', async () => {
    const one = await h.connected(5, { properties: { topicAliasMaximum: 1 } });
    await h.subscribe(one, 'lim/#', 0);
    const none = await h.connected(5);
    await h.subscribe(none, 'lim/#', 0);
    const v3 = await h.connected(4);
    await h.subscribe(v3, 'lim/#', 0);
    const pub = await h.connected(5);
    for (const topic of ['lim/a', 'lim/b', 'lim/a']) await h.publish(pub, topic, 'x', 0);
    for (let i = 0; i < 3; i++) assert.equal((await h.receive(one)).properties?.topicAlias, 1);
    for (const expected of ['lim/a', 'lim/b', 'lim/a']) {
      const p = await h.receive(none);
      assert.equal(p.topic, expected);
      assert.equal(p.properties?.topicAlias, undefined);
      assert.equal((await h.receive(v3)).topic, expected);
    }
  });

  test('off by default: a client announcing a maximum still gets plain topics', async () => {
    const s = await h.serverWith({});
    const sub = await h.connected(5, { properties: { topicAliasMaximum: 10 } }, s.server);
    await h.subscribe(sub, 'def/#', 1);
    const pub = await h.connected(5, {}, s.server);
    await h.publish(pub, 'def/a', 'x', 1);
    await h.publish(pub, 'def/a', 'y', 1);
    for (let i = 0; i < 2; i++) {
      const p = await h.receive(sub);
      assert.equal(p.topic, 'def/a');
      assert.equal(p.properties?.topicAlias, undefined);
    }
  });

  test('MQTT.js: a publisher assigning aliases itself and a subscriber accepting them see every topic right', async (t) => {
    const sub = await mqtt.connectAsync(h.url(), {
      protocolVersion: 5,
      reconnectPeriod: 0,
      properties: { topicAliasMaximum: 2 },
    });
    const pub = await mqtt.connectAsync(h.url(), {
      protocolVersion: 5,
      reconnectPeriod: 0,
      autoAssignTopicAlias: true,
    });
    t.after(() => Promise.all([sub.endAsync(true), pub.endAsync(true)]));
    const got: string[] = [];
    const aliases: (number | undefined)[] = [];
    sub.on('message', (topic, payload, packet) => {
      got.push(`${topic}=${payload}`);
      aliases.push(packet.properties?.topicAlias);
    });
    await sub.subscribeAsync('js/#', { qos: 1 });
    const sent = ['js/a', 'js/b', 'js/a', 'js/c', 'js/b', 'js/a'];
    for (const [i, topic] of sent.entries()) await pub.publishAsync(topic, String(i), { qos: 1 });
    const deadline = Date.now() + 5000;
    while (got.length < sent.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(
      got,
      sent.map((topic, i) => `${topic}=${i}`),
    );
    assert.ok(
      aliases.every((a) => a === 1 || a === 2),
      `aliases used: ${aliases}`,
    );
  });
});
