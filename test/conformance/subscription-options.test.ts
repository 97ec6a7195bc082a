/**
 * Subscription options and identifiers through real clients: MQTT.js setting No Local, Retain
 * As Published, Retain Handling and a Subscription Identifier; mosquitto_sub -V mqttv5 setting a
 * Subscription Identifier (-D subscribe subscription-identifier) and printing it (%S). The
 * packet-level cases are in features.test.ts ('v5 subscription options').
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import mqtt, { type IPublishPacket } from 'mqtt';
import { describeWithTool, mosquittoClients, mosquittoSub } from '../helpers/interop-tools.ts';
import { harness } from '../helpers/v5-harness.ts';

const h = harness('subopts');

/** Resolves with the next message's packet. */
const nextMessage = (client: mqtt.MqttClient): Promise<IPublishPacket> =>
  new Promise((resolve) => client.once('message', (_t, _p, packet) => resolve(packet)));

describe('subscription options with MQTT.js v5', () => {
  test('No Local, Retain As Published, Retain Handling and Subscription Identifiers as MQTT.js sets them [MQTT-3.8.3-3] [MQTT-3.3.1-12] [MQTT-3.3.4-3]', async (t) => {
    const c = await mqtt.connectAsync(h.url(), { protocolVersion: 5, reconnectPeriod: 0 });
    t.after(() => c.endAsync(true));
    await c.publishAsync('so/js/r', 'kept', { qos: 1, retain: true });

    // Retain Handling 2: no retained message; Retain As Published: live retained keep the flag.
    await c.subscribeAsync('so/js/#', {
      qos: 1,
      rh: 2,
      rap: true,
      properties: { subscriptionIdentifier: 7 },
    });
    // No Local on an overlapping filter: own messages come only through the first subscription.
    await c.subscribeAsync('so/js/+', { qos: 1, nl: true, properties: { subscriptionIdentifier: 8 } });
    const live = nextMessage(c);
    await c.publishAsync('so/js/r', 'again', { qos: 1, retain: true });
    const p = await live;
    assert.equal(
      p.payload.toString(),
      'again',
      'the retained message was not sent on subscribe (Retain Handling 2)',
    );
    assert.equal(p.retain, true, 'Retain As Published');
    assert.deepEqual(p.properties?.subscriptionIdentifier, 7, 'only the No Local subscription left out');

    const other = await mqtt.connectAsync(h.url(), { protocolVersion: 5, reconnectPeriod: 0 });
    t.after(() => other.endAsync(true));
    const fromOther = nextMessage(c);
    await other.publishAsync('so/js/x', 'theirs', { qos: 1 });
    const q = await fromOther;
    assert.deepEqual([q.properties?.subscriptionIdentifier].flat().sort(), [7, 8], 'both identifiers');
    assert.equal(q.retain, false);

    // Retain Handling 1: retained only for a new subscription.
    const rh1 = await mqtt.connectAsync(h.url(), { protocolVersion: 5, reconnectPeriod: 0 });
    t.after(() => rh1.endAsync(true));
    const first = nextMessage(rh1);
    await rh1.subscribeAsync('so/js/r', { qos: 1, rh: 1 });
    assert.equal((await first).payload.toString(), 'again');
    const got: string[] = [];
    rh1.on('message', (_t, payload) => got.push(payload.toString()));
    await rh1.subscribeAsync('so/js/r', { qos: 1, rh: 1 });
    await other.publishAsync('so/js/r', 'marker', { qos: 1 });
    const deadline = Date.now() + 3000;
    while (!got.includes('marker') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(got, ['marker'], 're-subscribing did not resend the retained message');
    await c.publishAsync('so/js/r', '', { qos: 1, retain: true });
  });
});

describeWithTool('subscription identifiers with mosquitto_sub -V mqttv5', mosquittoClients, () => {
  test('mosquitto_sub -D subscribe subscription-identifier 42 gets 42 on each matching message', async (t) => {
    const sub = await mosquittoSub(t, [
      ...['-h', '127.0.0.1', '-p', String(h.ts.port), '-V', 'mqttv5'],
      ...[
        '-t',
        'so/mosq/#',
        '-D',
        'subscribe',
        'subscription-identifier',
        '42',
        '-F',
        'msg %S %t %p',
        '-W',
        '30',
      ],
    ]);
    const pub = await h.connected(5);
    await h.publish(pub, 'so/mosq/a', 'hello', 1);
    assert.equal(await sub.waitForLine((l) => l.startsWith('msg '), 'the message'), 'msg 42 so/mosq/a hello');
  });
});
