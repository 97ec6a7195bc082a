/**
 * The form a session crosses in when one node hands it to another (src/cluster/session-handover.ts):
 * every field comes back as it went, binary payloads and correlation data included.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeSession, encodeSession } from '../../src/cluster/session-handover.ts';
import type { StoredMessage, StoredSession } from '../../src/store/index.ts';

const message = (payload: Buffer, more: Partial<StoredMessage> = {}): StoredMessage => ({
  topic: 'a/b',
  payload,
  qos: 1,
  retain: false,
  properties: undefined,
  senderId: 'pub',
  receivedAt: 1_700_000_000_123,
  expiresAt: undefined,
  ...more,
});

test('a session survives encodeSession/decodeSession: payload bytes, properties, states, ids, will', () => {
  const binary = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x7b, 0x22]);
  const session: StoredSession = {
    clientId: 'dev-ü-1',
    expiryInterval: 0xffffffff,
    expiresAt: undefined,
    will: {
      message: message(Buffer.from('gone'), { topic: 'w', properties: { contentType: 'text/plain' } }),
      publishAt: 1_700_000_005_000,
    },
    subscriptions: [
      {
        topicFilter: 'a/#',
        qos: 2,
        noLocal: true,
        retainAsPublished: false,
        retainHandling: 1,
        subscriptionId: 7,
      },
      {
        topicFilter: '$share/g/b',
        qos: 1,
        noLocal: false,
        retainAsPublished: true,
        retainHandling: 0,
        subscriptionId: undefined,
      },
    ],
    outbound: [
      {
        seq: 0,
        state: 'sent',
        packetId: 5,
        qos: 1,
        retain: false,
        subscriptionIds: [7],
        message: message(binary),
      },
      {
        seq: 0,
        state: 'released',
        packetId: 6,
        qos: 2,
        retain: true,
        subscriptionIds: undefined,
        message: message(Buffer.alloc(0)),
      },
      {
        seq: 0,
        state: 'queued',
        packetId: 0,
        qos: 1,
        retain: false,
        subscriptionIds: undefined,
        message: message(Buffer.from('q'), {
          expiresAt: 1_700_000_060_000,
          properties: {
            correlationData: Buffer.from([9, 8, 7]),
            userProperties: [
              ['k', 'v'],
              ['k', 'v2'],
            ],
            payloadFormatIndicator: 1,
            responseTopic: 'r/t',
          },
        }),
      },
    ],
    inboundQos2: [3, 65535],
  };
  const back = decodeSession(encodeSession(session));
  // JSON has no `undefined`: absent fields read as undefined, as the store's records do.
  const subscriptions = JSON.parse(JSON.stringify(session.subscriptions));
  assert.equal(back.outbound[0]!.message.payload.equals(binary), true);
  assert.equal(Buffer.isBuffer(back.outbound[2]!.message.properties?.correlationData), true);
  assert.deepEqual(back.outbound[2]!.message.properties?.correlationData, Buffer.from([9, 8, 7]));
  assert.deepEqual(back.outbound[2]!.message.properties?.userProperties, [
    ['k', 'v'],
    ['k', 'v2'],
  ]);
  assert.equal(back.outbound[1]!.message.payload.length, 0);
  assert.deepEqual(back.subscriptions, subscriptions);
  assert.deepEqual(back.inboundQos2, [3, 65535]);
  assert.deepEqual(
    back.outbound.map((o) => [o.state, o.packetId, o.qos, o.retain, o.subscriptionIds]),
    [
      ['sent', 5, 1, false, [7]],
      ['released', 6, 2, true, undefined],
      ['queued', 0, 1, false, undefined],
    ],
  );
  assert.equal(back.clientId, 'dev-ü-1');
  assert.equal(back.will?.publishAt, 1_700_000_005_000);
  assert.equal(back.will?.message.payload.toString(), 'gone');
  assert.equal(back.outbound[2]!.message.expiresAt, 1_700_000_060_000);
});

test('bytes that are not a session are refused', () => {
  assert.throws(() => decodeSession(Buffer.from('{"x":1}')), /not a session/);
  assert.throws(() => decodeSession(Buffer.from('not json')));
});
