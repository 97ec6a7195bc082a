/**
 * PUBLISH properties forwarded unchanged (User Properties in order, Response Topic, Correlation
 * Data, Content Type, Payload Format Indicator) and stripped for v3.1.1 subscribers; Payload
 * Format Indicator validation (0x99); the CONNACK properties that announce what the server
 * supports; Response Information on request. Literal bytes where the answer is bytes, and
 * mosquitto_pub -V mqttv5 as a real client setting the properties.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { describeWithTool, mosquittoClients, mosquittoPub } from '../helpers/interop-tools.ts';
import { harness, text } from '../helpers/v5-harness.ts';
import { connackProperties, connectV4, connectV5, packet, str, Wire } from '../helpers/wire.ts';

const h = harness('props');

const INVALID_UTF8 = Buffer.from([0x68, 0xc3, 0x28, 0x69]); // "h", a broken 2-byte sequence, "i"

describe('properties forwarded unchanged [MQTT-3.3.2-4] [MQTT-3.3.2-15] [MQTT-3.3.2-17] [MQTT-3.3.2-18] [MQTT-3.3.2-20]', () => {
  test('User Properties keep their order and repeats; Response Topic, Correlation Data, Content Type and Payload Format Indicator arrive as sent', async () => {
    const sub = await h.connected(5);
    await h.subscribe(sub, 'fw/#', 1);
    const pub = await h.connected(5);
    const properties = {
      payloadFormatIndicator: 1,
      contentType: 'application/json',
      responseTopic: 'fw/reply',
      correlationData: Buffer.from([0, 1, 2, 0xff]),
      userProperties: [
        ['z', '1'],
        ['a', '2'],
        ['z', '3'],
      ] as [string, string][],
    };
    await h.publish(pub, 'fw/x', '{"ok":true}', 1, { properties });
    const got = await h.receive(sub);
    assert.deepEqual(got.properties, properties);
  });

  test('a v3.1.1 subscriber receives a v5 message with every property stripped (literal bytes)', async (t) => {
    const w = await Wire.tcp(h.ts.port, 4);
    t.after(() => w.destroy());
    w.send(connectV4(h.uid()));
    assert.deepEqual([...(await w.frame()).body], [0x00, 0x00]);
    w.send(packet(0x82, [0x00, 0x01, ...str('strip/x'), 0x00])); // SUBSCRIBE id 1, QoS 0
    assert.deepEqual([...(await w.frame()).body], [0x00, 0x01, 0x00]);
    const pub = await h.connected(5);
    await h.publish(pub, 'strip/x', 'hi', 1, {
      properties: {
        payloadFormatIndicator: 1,
        messageExpiryInterval: 60,
        contentType: 'text/plain',
        responseTopic: 'r',
        correlationData: Buffer.from('c'),
        userProperties: [['k', 'v']],
      },
    });
    const f = await w.frame();
    assert.deepEqual([f.first, ...f.body], [0x30, ...str('strip/x'), ...Buffer.from('hi')]);
  });
});

describe('Payload Format Indicator validation (section 3.3.2.3.2)', () => {
  test('indicator 1 with invalid UTF-8: QoS 1 PUBACK 0x99, QoS 2 PUBREC 0x99, not delivered; valid UTF-8 flows', async () => {
    const sub = await h.connected(5);
    await h.subscribe(sub, 'pfi/#', 1);
    const pub = await h.connected(5);
    const props = { payloadFormatIndicator: 1 };
    pub.send({
      type: 'publish',
      topic: 'pfi/a',
      payload: INVALID_UTF8,
      qos: 1,
      retain: false,
      dup: false,
      packetId: 5,
      properties: props,
    });
    const puback = await pub.next();
    assert.deepEqual([puback.type, (puback as { reasonCode: number }).reasonCode], ['puback', 0x99]);
    assert.match(
      (puback as { properties?: { reasonString?: string } }).properties?.reasonString ?? '',
      /UTF-8/,
    );
    pub.send({
      type: 'publish',
      topic: 'pfi/a',
      payload: INVALID_UTF8,
      qos: 2,
      retain: false,
      dup: false,
      packetId: 6,
      properties: props,
    });
    const pubrec = await pub.next();
    assert.deepEqual([pubrec.type, (pubrec as { reasonCode: number }).reasonCode], ['pubrec', 0x99]);
    await h.publish(pub, 'pfi/a', 'héllo', 1, { properties: props });
    assert.equal(text(await h.receive(sub)), 'héllo', 'only the valid message was delivered');
    await h.publish(pub, 'pfi/a', INVALID_UTF8, 1, { properties: { payloadFormatIndicator: 0 } });
    assert.deepEqual((await h.receive(sub)).payload, INVALID_UTF8, 'indicator 0: bytes are not checked');
  });

  test('indicator 1 with invalid UTF-8 at QoS 0: DISCONNECT 0x99 (literal bytes)', async (t) => {
    const w = await Wire.tcp(h.ts.port, 5);
    t.after(() => w.destroy());
    await w.handshake(connectV5(h.uid()));
    // PUBLISH QoS 0 "a", properties: Payload Format Indicator 1, payload c3 28
    w.send(packet(0x30, [...str('a'), 0x02, 0x01, 0x01, 0xc3, 0x28]));
    await w.expectDisconnect(0x99);
  });

  test('a will with indicator 1 and invalid UTF-8 is refused with CONNACK 0x99 (section 3.1.3.2.3)', async () => {
    const c = h.open(5);
    const ack = await c.connect({
      clientId: h.uid(),
      will: {
        topic: 'pfi/will',
        payload: INVALID_UTF8,
        qos: 0,
        retain: false,
        properties: { payloadFormatIndicator: 1 },
      },
    });
    assert.equal(ack.reasonCode, 0x99);
    await c.closed();
  });

  test('with validatePayloadFormat off the payload is forwarded as it is', async () => {
    const s = await h.serverWith({ validatePayloadFormat: false });
    const sub = await h.connected(5, {}, s.server);
    await h.subscribe(sub, 'pfi/#', 1);
    const pub = await h.connected(5, {}, s.server);
    await h.publish(pub, 'pfi/off', INVALID_UTF8, 1, { properties: { payloadFormatIndicator: 1 } });
    const got = await h.receive(sub);
    assert.deepEqual(got.payload, INVALID_UTF8);
    assert.equal(got.properties?.payloadFormatIndicator, 1);
  });
});

describe('CONNACK properties', () => {
  test('defaults: Receive Maximum, Maximum Packet Size and Topic Alias Maximum, nothing claiming a feature is missing (literal bytes)', async (t) => {
    const w = await Wire.tcp(h.ts.port, 5);
    t.after(() => w.destroy());
    const props = connackProperties(await w.handshake(connectV5(h.uid())));
    assert.deepEqual(
      [...props.entries()].sort(([a], [b]) => a - b),
      [
        [0x21, [0x04, 0x00]], // Receive Maximum 1024
        [0x22, [0x00, 0x40]], // Topic Alias Maximum 64
        [0x27, [0x00, 0x10, 0x00, 0x00]], // Maximum Packet Size 1048576
      ],
    );
  });

  test('features switched off are announced: Maximum QoS, Retain, Wildcard, Subscription Identifier and Shared Subscription Available [MQTT-3.2.2-9]', async (t) => {
    const s = await h.serverWith({
      maximumQoS: 1,
      retainAvailable: false,
      wildcardSubscriptionsAvailable: false,
      subscriptionIdentifiersAvailable: false,
      sharedSubscriptionsAvailable: false,
    });
    const w = await Wire.tcp(s.port, 5);
    t.after(() => w.destroy());
    const props = connackProperties(await w.handshake(connectV5(h.uid())));
    for (const id of [0x25, 0x28, 0x29, 0x2a])
      assert.deepEqual(props.get(id), [0x00], `property 0x${id.toString(16)}`);
    assert.deepEqual(props.get(0x24), [0x01]);
    // SUBSCRIBE id 1, properties: Subscription Identifier 7, "a" QoS 0 → 0xA1
    w.send(packet(0x82, [0x00, 0x01, 0x02, 0x0b, 0x07, ...str('a'), 0x00]));
    await w.expectDisconnect(0xa1);
    const w2 = await Wire.tcp(s.port, 5);
    t.after(() => w2.destroy());
    await w2.handshake(connectV5(h.uid()));
    w2.send(packet(0x82, [0x00, 0x01, 0x00, ...str('a/+'), 0x00])); // wildcard → 0xA2
    await w2.expectDisconnect(0xa2);
  });

  test('Response Information is sent only when Request Response Information is 1 (section 3.1.2.11.7)', async () => {
    const id = h.uid();
    const asked = h.open(5);
    const ack = await asked.connect({ clientId: id, properties: { requestResponseInformation: 1 } });
    assert.equal(ack.properties?.responseInformation, `response/${id}/`);
    const notAsked = h.open(5);
    assert.equal((await notAsked.connect({ clientId: h.uid() })).properties?.responseInformation, undefined);
    const off = await h.serverWith({ responseInformation: '' });
    const c = h.open(5, off.server);
    assert.equal(
      (await c.connect({ clientId: h.uid(), properties: { requestResponseInformation: 1 } })).properties
        ?.responseInformation,
      undefined,
    );
  });
});

describeWithTool('properties from mosquitto_pub -V mqttv5', mosquittoClients, () => {
  test('user properties, content type, response topic, correlation data and payload format set by mosquitto_pub arrive unchanged', async (t) => {
    const sub = await h.connected(5);
    await h.subscribe(sub, 'mosq/props', 1);
    const pub = await mosquittoPub(t, [
      ...[
        '-h',
        '127.0.0.1',
        '-p',
        String(h.ts.port),
        '-V',
        'mqttv5',
        '-q',
        '1',
        '-t',
        'mosq/props',
        '-m',
        'hello',
      ],
      ...['-D', 'publish', 'user-property', 'first', '1'],
      ...['-D', 'publish', 'user-property', 'second', '2'],
      ...['-D', 'publish', 'content-type', 'text/plain'],
      ...['-D', 'publish', 'response-topic', 'mosq/reply'],
      ...['-D', 'publish', 'correlation-data', 'abc'],
      ...['-D', 'publish', 'payload-format-indicator', '1'],
    ]);
    assert.equal(pub.exit!.code, 0, pub.report());
    const got = await h.receive(sub, 5000);
    assert.equal(text(got), 'hello');
    assert.deepEqual(got.properties?.userProperties, [
      ['first', '1'],
      ['second', '2'],
    ]);
    assert.equal(got.properties?.contentType, 'text/plain');
    assert.equal(got.properties?.responseTopic, 'mosq/reply');
    assert.deepEqual(got.properties?.correlationData, Buffer.from('abc'));
    assert.equal(got.properties?.payloadFormatIndicator, 1);
  });
});
