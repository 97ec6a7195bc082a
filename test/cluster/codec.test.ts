/**
 * The cluster's batch codec (src/cluster/codec.ts): several messages to one topic in one
 * buffer, each with its QoS, retain flag, v5 properties, payload and expiry instant, decoded as
 * they were appended; expiry counts the time spent before decoding.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BatchWriter, batchOrigin, decodeBatch } from '../../src/cluster/codec.ts';
import { Message } from '../../src/router/index.ts';

const decoded = (bytes: Buffer): Message[] => {
  const out: Message[] = [];
  decodeBatch(bytes, (m) => out.push(m));
  return out;
};

test('a batch carries each message with its QoS, retain, properties and payload, in order', () => {
  const now = Date.now();
  const writer = new BatchWriter(42, 'a/b', 16);
  const first = new Message({
    topic: 'a/b',
    payload: Buffer.from('one'),
    qos: 2,
    retain: true,
    properties: {
      userProperties: [
        ['k', 'v'],
        ['k', 'w'],
      ],
      correlationData: Buffer.from([0, 1, 2]),
      contentType: 'text/plain',
      payloadFormatIndicator: 1,
      responseTopic: 'reply/here',
    },
    receivedAt: now,
    messageExpiryInterval: 30,
  });
  const second = new Message({
    topic: 'a/b',
    payload: Buffer.alloc(70_000, 7),
    qos: 0,
    retain: false,
    receivedAt: now,
  });
  writer.append(first);
  writer.append(second);
  assert.equal(writer.count, 2);
  const bytes = writer.bytes(9);
  assert.deepEqual(batchOrigin(bytes), { sender: 42, seq: 9 });
  const [a, b] = decoded(bytes);
  assert.equal(a!.topic, 'a/b');
  assert.equal(a!.qos, 2);
  assert.equal(a!.retain, true);
  assert.deepEqual(a!.properties, first.properties);
  assert.equal(a!.payload.toString(), 'one');
  assert.equal(a!.expiresAt, now + 30_000);
  assert.equal(a!.receivedAt, now);
  assert.equal(a!.senderId, undefined, 'No Local is decided on the publisher node');
  assert.equal(b!.qos, 0);
  assert.equal(b!.retain, false);
  assert.equal(b!.properties, undefined);
  assert.equal(b!.expiresAt, undefined);
  assert.deepEqual(b!.payload, second.payload);
});

test('expiry crosses as an instant: time spent before arrival counts [MQTT-3.3.2-5]', () => {
  const writer = new BatchWriter(42, 't', 1);
  writer.append(
    new Message({
      topic: 't',
      payload: Buffer.from('x'),
      qos: 1,
      retain: false,
      receivedAt: Date.now() - 5000,
      messageExpiryInterval: 3,
    }),
  );
  const [m] = decoded(writer.bytes(1));
  assert.equal(m!.expired(Date.now()), true);
  assert.equal(m!.remainingExpiry(m!.receivedAt + 1000), 2);
});

test('a batch that is not ours, or cut short, is refused', () => {
  assert.throws(() => decoded(Buffer.from('{"json":true}')), /not a cluster batch/);
  const writer = new BatchWriter(42, 't', 1);
  writer.append(new Message({ topic: 't', payload: Buffer.from('payload'), qos: 0, retain: false }));
  const bytes = writer.bytes(1);
  assert.throws(() => decoded(bytes.subarray(0, bytes.length - 3)));
});

test("each message keeps its identity across: the sender's number and its serial; one without a serial has none", () => {
  const writer = new BatchWriter(77, 't', 8);
  const stamped = (serial: number): Message => {
    const m = new Message({ topic: 't', payload: Buffer.from(String(serial)), qos: 1, retain: false });
    m.origin = 77;
    m.serial = serial;
    return m;
  };
  writer.append(stamped(2 ** 40 + 5)); // the base: past 32 bits
  writer.append(stamped(2 ** 40 + 9));
  writer.append(new Message({ topic: 't', payload: Buffer.from('none'), qos: 1, retain: false }));
  writer.append(stamped(2 ** 40 + 400_000));
  const got = decoded(writer.bytes(1)).map((m) => [m.origin, m.serial]);
  assert.deepEqual(got, [
    [77, 2 ** 40 + 5],
    [77, 2 ** 40 + 9],
    [0, 0],
    [77, 2 ** 40 + 400_000],
  ]);
});
