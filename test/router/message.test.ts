/**
 * Message.encodeFor: the bytes a subscriber receives, checked by parsing them back with the
 * codec's Parser. Encode once per variant (QoS 0 shares one Buffer; QoS > 0 copies carry their
 * own packet id and DUP flag), subscription identifiers encoded per delivery (v5 only), the
 * Message Expiry Interval forwarded as the time left [MQTT-3.3.2-6], and no properties at all
 * in v3.1/3.1.1 bytes.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  encodePublish,
  Parser,
  type ProtocolVersion,
  type PublishPacket,
  type QoS,
} from '../../src/protocol/index.ts';
import { Message } from '../../src/router/index.ts';

/** Parses `bytes` as exactly one PUBLISH from the server to a client of `version`. */
function parse(bytes: Buffer, version: ProtocolVersion): PublishPacket {
  const packets: unknown[] = [];
  const error = new Parser({ protocolVersion: version }).push(bytes, (p) => {
    packets.push(p);
  });
  assert.equal(error, null);
  assert.equal(packets.length, 1);
  const packet = packets[0] as PublishPacket;
  assert.equal(packet.type, 'publish');
  return packet;
}

const RECEIVED_AT = 1_700_000_000_000;

function message(init: Partial<ConstructorParameters<typeof Message>[0]> = {}): Message {
  return new Message({
    topic: 'site/1/device/2/telemetry',
    payload: Buffer.from('{"t":21.5}'),
    qos: 2,
    retain: false,
    receivedAt: RECEIVED_AT,
    ...init,
  });
}

describe('Message.encodeFor', () => {
  test('QoS 0: the same variant returns the same Buffer, and it parses back', () => {
    const m = message({ properties: { contentType: 'application/json' } });
    for (const version of [3, 4, 5] as const) {
      const first = m.encodeFor(
        version,
        { qos: 0, retain: false, subscriptionIds: undefined, packetId: 0, dup: false },
        RECEIVED_AT,
      );
      assert.equal(
        m.encodeFor(
          version,
          { qos: 0, retain: false, subscriptionIds: undefined, packetId: 0, dup: false },
          RECEIVED_AT + 10,
        ),
        first,
      );
      const p = parse(first, version);
      assert.equal(p.topic, 'site/1/device/2/telemetry');
      assert.equal(p.payload.toString(), '{"t":21.5}');
      assert.equal(p.qos, 0);
      assert.equal(p.retain, false);
      assert.equal(p.dup, false);
      assert.equal(p.packetId, undefined);
    }
    const v4 = m.encodeFor(
      4,
      { qos: 0, retain: false, subscriptionIds: undefined, packetId: 0, dup: false },
      RECEIVED_AT,
    );
    const v5 = m.encodeFor(
      5,
      { qos: 0, retain: false, subscriptionIds: undefined, packetId: 0, dup: false },
      RECEIVED_AT,
    );
    assert.notEqual(v4, v5);
    assert.equal(parse(v5, 5).properties?.contentType, 'application/json');
  });

  test('each (version, QoS, retain) variant is its own encoding with the right flags', () => {
    const m = message();
    const seen = new Set<Buffer>();
    for (const version of [4, 5] as const) {
      for (const qos of [0, 1, 2] as QoS[]) {
        for (const retain of [false, true]) {
          const bytes = m.encodeFor(
            version,
            { qos: qos, retain: retain, subscriptionIds: undefined, packetId: 9, dup: false },
            RECEIVED_AT,
          );
          const p = parse(bytes, version);
          assert.equal(p.qos, qos);
          assert.equal(p.retain, retain);
          assert.equal(p.packetId, qos > 0 ? 9 : undefined);
          assert.equal(p.payload.toString(), '{"t":21.5}');
          assert.equal(seen.has(bytes), false);
          seen.add(bytes);
          // The same variant again gives the same bytes.
          assert.deepEqual(
            m.encodeFor(
              version,
              { qos: qos, retain: retain, subscriptionIds: undefined, packetId: 9, dup: false },
              RECEIVED_AT,
            ),
            bytes,
          );
        }
      }
    }
  });

  test('QoS 1 and 2 copies carry their own packet id and DUP flag and share nothing', () => {
    const m = message();
    for (const version of [4, 5] as const) {
      for (const qos of [1, 2] as QoS[]) {
        const a = m.encodeFor(
          version,
          { qos: qos, retain: false, subscriptionIds: undefined, packetId: 1, dup: false },
          RECEIVED_AT,
        );
        const b = m.encodeFor(
          version,
          { qos: qos, retain: false, subscriptionIds: undefined, packetId: 0xbeef, dup: true },
          RECEIVED_AT,
        );
        const c = m.encodeFor(
          version,
          { qos: qos, retain: false, subscriptionIds: undefined, packetId: 65535, dup: false },
          RECEIVED_AT,
        );
        assert.notEqual(a, b);
        assert.notEqual(a.buffer === b.buffer && a.byteOffset === b.byteOffset, true);
        const pa = parse(a, version);
        const pb = parse(b, version);
        const pc = parse(c, version);
        assert.deepEqual([pa.packetId, pa.dup, pa.qos], [1, false, qos]);
        assert.deepEqual([pb.packetId, pb.dup, pb.qos], [0xbeef, true, qos]);
        assert.deepEqual([pc.packetId, pc.dup, pc.qos], [65535, false, qos]);
        // Writing b and c did not patch a.
        assert.deepEqual([parse(a, version).packetId, parse(a, version).dup], [1, false]);
        for (const p of [pa, pb, pc]) {
          assert.equal(p.topic, m.topic);
          assert.equal(p.payload.toString(), '{"t":21.5}');
        }
      }
    }
  });

  test('v5 with subscription identifiers encodes them; other deliveries do not inherit them', () => {
    const m = message({ properties: { userProperties: [['k', 'v']] } });
    const plain = m.encodeFor(
      5,
      { qos: 1, retain: false, subscriptionIds: undefined, packetId: 3, dup: false },
      RECEIVED_AT,
    );
    const withIds = m.encodeFor(
      5,
      { qos: 1, retain: true, subscriptionIds: [7, 268_435_455], packetId: 4, dup: true },
      RECEIVED_AT,
    );
    const p = parse(withIds, 5);
    assert.deepEqual(p.properties?.subscriptionIdentifiers, [7, 268_435_455]);
    assert.deepEqual(p.properties?.userProperties, [['k', 'v']]);
    assert.deepEqual([p.packetId, p.dup, p.qos, p.retain], [4, true, 1, true]);
    const q = parse(
      m.encodeFor(5, { qos: 0, retain: false, subscriptionIds: [1], packetId: 0, dup: false }, RECEIVED_AT),
      5,
    );
    assert.deepEqual(q.properties?.subscriptionIdentifiers, [1]);
    assert.equal(q.packetId, undefined);
    // The cached variants stay free of identifiers, before and after.
    assert.equal(parse(plain, 5).properties?.subscriptionIdentifiers, undefined);
    const again = parse(
      m.encodeFor(
        5,
        { qos: 1, retain: true, subscriptionIds: undefined, packetId: 5, dup: false },
        RECEIVED_AT,
      ),
      5,
    );
    assert.equal(again.properties?.subscriptionIdentifiers, undefined);
    assert.deepEqual(again.properties?.userProperties, [['k', 'v']]);
    assert.equal(m.properties?.subscriptionIdentifiers, undefined, 'the message itself is untouched');
  });

  test('message expiry is forwarded as the whole seconds left [MQTT-3.3.2-6]', () => {
    const m = message({ messageExpiryInterval: 60 });
    const expiryAt = (ms: number, qos: QoS = 0, ids?: number[]) =>
      parse(
        m.encodeFor(
          5,
          { qos: qos, retain: false, subscriptionIds: ids, packetId: 1, dup: false },
          RECEIVED_AT + ms,
        ),
        5,
      ).properties?.messageExpiryInterval;
    assert.equal(expiryAt(0), 60);
    assert.equal(expiryAt(15_000), 45);
    assert.equal(expiryAt(15_500), 45); // rounded up: never forwarded as already expired
    assert.equal(expiryAt(16_000), 44);
    assert.equal(expiryAt(16_000, 1), 44);
    assert.equal(expiryAt(59_999, 2), 1);
    assert.equal(expiryAt(30_000, 1, [5]), 30);
    // Back to an earlier clock: the cache follows the remaining value, not the first one seen.
    assert.equal(expiryAt(0, 1), 60);
    assert.equal(m.expired(RECEIVED_AT + 60_000), false);
    assert.equal(m.expired(RECEIVED_AT + 60_001), true);
  });

  test('fromPublish forwards the properties but not the Topic Alias; expiry is recomputed', () => {
    const inbound: PublishPacket = {
      type: 'publish',
      topic: '',
      payload: Buffer.from('hi'),
      qos: 1,
      retain: false,
      dup: false,
      packetId: 77,
      properties: { topicAlias: 3, messageExpiryInterval: 10, responseTopic: 'reply/here' },
    };
    const m = Message.fromPublish(inbound, 'resolved/topic', 'client-1', RECEIVED_AT);
    assert.equal(m.senderId, 'client-1');
    const p = parse(
      m.encodeFor(
        5,
        { qos: 1, retain: false, subscriptionIds: undefined, packetId: 12, dup: false },
        RECEIVED_AT + 4_000,
      ),
      5,
    );
    assert.equal(p.topic, 'resolved/topic');
    assert.equal(p.packetId, 12);
    assert.deepEqual(p.properties, { messageExpiryInterval: 6, responseTopic: 'reply/here' });
  });

  test('v3.1 and v3.1.1 bytes carry no properties and equal a bare encoding', () => {
    const m = message({
      messageExpiryInterval: 30,
      properties: {
        contentType: 'text/plain',
        userProperties: [['a', 'b']],
        correlationData: Buffer.from([1, 2, 3]),
        payloadFormatIndicator: 1,
      },
    });
    for (const version of [3, 4] as const) {
      for (const qos of [0, 1, 2] as QoS[]) {
        const bytes = m.encodeFor(
          version,
          { qos: qos, retain: true, subscriptionIds: [9], packetId: 42, dup: true },
          RECEIVED_AT + 1_000,
        );
        const p = parse(bytes, version);
        assert.equal(p.properties, undefined);
        assert.equal(p.payload.toString(), '{"t":21.5}');
        assert.deepEqual([p.qos, p.retain], [qos, true]);
        if (qos > 0) assert.deepEqual([p.packetId, p.dup], [42, true]);
        const bare: PublishPacket = {
          type: 'publish',
          topic: m.topic,
          payload: m.payload,
          qos,
          retain: true,
          dup: qos > 0,
        };
        if (qos > 0) bare.packetId = 42;
        assert.deepEqual(bytes, encodePublish(bare, version));
      }
    }
  });
});
