/**
 * PUBACK/PUBREC 0x10 No matching subscribers (sections 3.4.2.1, 3.5.2.1): a v5 QoS 1/2 message
 * that matched no subscription and no shared group is accepted with 0x10, retained or not (the
 * retained store is not a subscriber; mosquitto and EMQX answer the same); one that matched
 * gets 0x00; v3 acknowledgements carry no reason code. With an on-publish hook the answer
 * follows the hook's routing; a message the hook drops gets 0x00.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { QoS } from '../../src/protocol/index.ts';
import type { RawClient } from '../helpers/raw-client.ts';
import { pubsubApi } from '../helpers/server.ts';
import { harness, pid } from '../helpers/v5-harness.ts';
import { expectAck } from '../helpers/wire.ts';

const h = harness('nomatch');

/** Publishes at QoS 1 or 2 (retained when asked) and returns the PUBACK/PUBREC reason code. */
async function ackReason(c: RawClient, topic: string, qos: 1 | 2, retain = false): Promise<number> {
  const packetId = pid();
  c.send({
    type: 'publish',
    topic,
    payload: Buffer.from('m'),
    qos: qos as QoS,
    retain,
    dup: false,
    packetId,
  });
  const ack = await expectAck(c, qos === 1 ? 'puback' : 'pubrec');
  assert.equal(ack.packetId, packetId);
  if (qos === 2) {
    c.send({ type: 'pubrel', packetId, reasonCode: 0 });
    await c.expect('pubcomp');
  }
  return ack.reasonCode;
}

describe('0x10 No matching subscribers', () => {
  test('v5 QoS 1 and 2 with no subscriber get 0x10; with a subscriber, a shared group or a wildcard match 0x00', async () => {
    const pub = await h.connected(5);
    const topic = `nomatch/${h.uid()}`;
    assert.equal(await ackReason(pub, topic, 1), 0x10, 'PUBACK');
    assert.equal(await ackReason(pub, topic, 2), 0x10, 'PUBREC');

    const shared = await h.connected(5);
    await h.subscribe(shared, `$share/g/${topic}`, 1);
    assert.equal(await ackReason(pub, topic, 1), 0x00, 'a shared group matched');
    assert.equal(await ackReason(pub, topic, 2), 0x00, 'a shared group matched');

    const wild = await h.connected(5);
    await h.subscribe(wild, 'other/+', 0);
    assert.equal(await ackReason(pub, 'other/x', 1), 0x00, 'a wildcard subscription matched');
  });

  test('a retained message with no subscriber gets 0x10 and is still retained', async () => {
    const pub = await h.connected(5);
    const topic = `nomatch/retained/${h.uid()}`;
    assert.equal(await ackReason(pub, topic, 1, true), 0x10);
    const later = await h.connected(5);
    await h.subscribe(later, topic, 1);
    assert.equal((await h.receive(later)).retain, true, 'delivered to a later subscriber');
  });

  test('with an on-publish function: 0x10 once the hook routed the message to no one, 0x00 when it dropped it', async () => {
    const s = await h.serverWith({ httpPort: 0 });
    const code = `export function onPublish(messages) { return messages.filter((m) => !m.topic.startsWith('drop/')); }`;
    const deployed = await pubsubApi(s, 'PUT', '/namespaces/local/brokers/default/hook/function', { code });
    assert.equal(deployed.success, true, JSON.stringify(deployed.errors));
    const pub = await h.connected(5, {}, s.server);
    const sub = await h.connected(5, {}, s.server);
    await h.subscribe(sub, 'hooked/sub', 1);
    await h.subscribe(sub, 'drop/x', 1);
    assert.equal(await ackReason(pub, 'hooked/none', 1), 0x10);
    assert.equal(await ackReason(pub, 'hooked/none', 2), 0x10);
    assert.equal(await ackReason(pub, 'hooked/sub', 1), 0x00);
    assert.equal((await h.receive(sub)).topic, 'hooked/sub');
    assert.equal(await ackReason(pub, 'drop/x', 1), 0x00, 'dropped by the hook');
    await sub.expectSilence();
  });
});
