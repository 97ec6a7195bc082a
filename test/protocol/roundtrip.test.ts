/**
 * Round trips: every packet of the codec's table (packet-cases.ts, shared with the differential
 * tests), in every protocol version it lists, is encoded, parsed back and compared field by
 * field with the original (Buffers by content). The same bytes are
 * then parsed split at every byte boundary, and all packets of a version concatenated in one chunk.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  encode,
  encodePublish,
  type Packet,
  Parser,
  type Properties,
  type ProtocolVersion,
  type PublishPacket,
  withPacketId,
} from '../../src/protocol/index.ts';
import { ALL, bytes, PACKET_CASES as CASES, pub, USER_IN_WIRE_ORDER as USER } from './packet-cases.ts';

/** Every key of Properties; the type below fails to compile if one is missing. */
const ALL_PROPERTY_KEYS = [
  'payloadFormatIndicator',
  'messageExpiryInterval',
  'contentType',
  'responseTopic',
  'correlationData',
  'subscriptionIdentifiers',
  'sessionExpiryInterval',
  'assignedClientIdentifier',
  'serverKeepAlive',
  'authenticationMethod',
  'authenticationData',
  'requestProblemInformation',
  'willDelayInterval',
  'requestResponseInformation',
  'responseInformation',
  'serverReference',
  'reasonString',
  'receiveMaximum',
  'topicAliasMaximum',
  'topicAlias',
  'maximumQoS',
  'retainAvailable',
  'userProperties',
  'maximumPacketSize',
  'wildcardSubscriptionAvailable',
  'subscriptionIdentifierAvailable',
  'sharedSubscriptionAvailable',
] as const satisfies readonly (keyof Properties)[];
const everyKeyListed: Exclude<keyof Properties, (typeof ALL_PROPERTY_KEYS)[number]> extends never
  ? true
  : never = true;

/** Parses chunks with a parser of `version`; asserts no error and nothing left over. */
function parseChunks(chunks: Buffer[], version: ProtocolVersion): Packet[] {
  const parser = new Parser({ protocolVersion: version });
  const out: Packet[] = [];
  for (const chunk of chunks) {
    assert.equal(
      parser.push(chunk, (p) => {
        out.push(p);
      }),
      null,
    );
  }
  assert.equal(parser.bufferedBytes, 0);
  return out;
}

const instances = CASES.flatMap((c) => c.versions.map((version) => ({ ...c, version })));

describe('round trip: encode then parse gives the same packet', () => {
  for (const { name, version, packet } of instances) {
    test(`${name} (v${version})`, () => {
      assert.deepEqual(parseChunks([encode(packet, version)], version), [packet]);
    });
  }

  test('every v5 property appears in at least one case', () => {
    assert.equal(everyKeyListed, true);
    const seen = new Set<string>();
    for (const { packet } of CASES) {
      const p = packet as { properties?: Properties; will?: { properties?: Properties } };
      for (const key of Object.keys({ ...p.properties, ...p.will?.properties })) seen.add(key);
    }
    assert.deepEqual([...seen].sort(), [...ALL_PROPERTY_KEYS].sort());
  });

  test('remaining length takes 1, 2, 3 and 4 bytes as the body grows', () => {
    const lengthBytes = (payload: number) => {
      const b = encode(pub({ topic: 't', payload: Buffer.alloc(payload) }), 4);
      return b.length - (3 + payload) - 1; // total - (topic + payload) - type byte
    };
    assert.deepEqual(
      [lengthBytes(0), lengthBytes(200), lengthBytes(20_000), lengthBytes(2_100_000)],
      [1, 2, 3, 4],
    );
  });

  test('v5 acks use the short form for Success without properties (section 3.4.2.1)', () => {
    assert.deepEqual(encode({ type: 'puback', packetId: 5, reasonCode: 0 }, 5), Buffer.from([0x40, 2, 0, 5]));
    assert.deepEqual(
      encode({ type: 'pubrel', packetId: 5, reasonCode: 0x92 }, 5),
      Buffer.from([0x62, 3, 0, 5, 0x92]),
    );
    assert.deepEqual(encode({ type: 'disconnect', reasonCode: 0 }, 5), Buffer.from([0xe0, 0]));
    assert.deepEqual(encode({ type: 'auth', reasonCode: 0 }, 5), Buffer.from([0xf0, 0]));
  });

  test('a 3.1 CONNACK writes its reserved first byte as 0 (3.1 has no Session Present); 3.1.1 writes Session Present [MQTT-3.2.2-2]', () => {
    const resumed = { type: 'connack', sessionPresent: true, reasonCode: 0 } as const;
    assert.deepEqual(encode(resumed, 3), Buffer.from([0x20, 2, 0, 0]));
    assert.deepEqual(encode(resumed, 4), Buffer.from([0x20, 2, 1, 0]));
  });
});

describe('resumable parsing', () => {
  for (const { name, version, packet } of instances) {
    const encoded = encode(packet, version);
    if (encoded.length > 1024) continue; // large payloads are covered by the concatenation tests
    test(`${name} (v${version}) split at every byte boundary`, () => {
      for (let i = 1; i < encoded.length; i++) {
        const parts = [encoded.subarray(0, i), encoded.subarray(i)];
        assert.deepEqual(parseChunks(parts, version), [packet], `split at ${i}`);
      }
      const single = [...encoded].map((b) => Buffer.from([b]));
      assert.deepEqual(parseChunks(single, version), [packet], 'one byte at a time');
    });
  }

  for (const version of ALL) {
    test(`all v${version} packets concatenated in one chunk, after a CONNECT that sets the version`, () => {
      const connect = CASES.find((c) => c.packet.type === 'connect' && c.versions[0] === version)!.packet;
      const rest = instances
        .filter((c) => c.version === version && c.packet.type !== 'connect')
        .map((c) => c.packet);
      const all = [connect, ...rest];
      const chunk = Buffer.concat(all.map((p) => encode(p, version)));
      const server = new Parser(); // learns the version from the CONNECT
      const out: Packet[] = [];
      assert.equal(
        server.push(chunk, (p) => {
          out.push(p);
        }),
        null,
      );
      assert.deepEqual(out, all);
      // The same stream in uneven chunks (7, 700, 70000, ... bytes).
      const chunks: Buffer[] = [];
      for (let pos = 0, size = 7; pos < chunk.length; pos += size, size = (size * 100) % 99_991) {
        chunks.push(chunk.subarray(pos, pos + size));
      }
      assert.deepEqual(parseChunks(chunks, version), all);
    });
  }

  test('a packet in 7, 8, 9 or thousands of pieces, then more packets in its last piece, parses the same', () => {
    // Past 8 pieces the parser gathers them into one buffer of the packet's length (so a
    // trickled packet holds its length, not a Buffer per read); each count crosses that edge.
    const packet = pub({ qos: 1, packetId: 9, payload: bytes(4000, 2) });
    const encoded = encode(packet, 5);
    const tail = Buffer.concat([encode({ type: 'pingreq' }, 5), encode(pub({ payload: bytes(3) }), 5)]);
    for (const pieces of [7, 8, 9, 17, encoded.length]) {
      const size = Math.ceil(encoded.length / pieces);
      const chunks: Buffer[] = [];
      for (let pos = 0; pos < encoded.length; pos += size) {
        const piece = encoded.subarray(pos, pos + size);
        const last = pos + size >= encoded.length;
        const own = Buffer.alloc(piece.length + (last ? tail.length : 0)); // its own ArrayBuffer
        piece.copy(own);
        if (last) tail.copy(own, piece.length);
        chunks.push(own);
      }
      const out = parseChunks(chunks, 5);
      assert.deepEqual(out, [packet, { type: 'pingreq' }, pub({ payload: bytes(3) })], `${pieces} pieces`);
      for (const chunk of chunks) assert.notEqual((out[0] as PublishPacket).payload.buffer, chunk.buffer);
    }
  });

  test('a handler returning false stops the push after that packet', () => {
    const chunk = Buffer.concat([encode({ type: 'pingreq' }, 4), encode({ type: 'pingresp' }, 4)]);
    const out: Packet[] = [];
    const stop = (p: Packet) => {
      out.push(p);
      return false;
    };
    assert.equal(new Parser().push(chunk, stop), null);
    assert.deepEqual(out, [{ type: 'pingreq' }]);
  });
});

describe('zero copy and fan-out', () => {
  test('PUBLISH payload and correlation data inside one chunk are views of that chunk', () => {
    const packet = pub({
      qos: 1,
      packetId: 1,
      payload: bytes(500),
      properties: { correlationData: bytes(8, 3) },
    });
    const encoded = encode(packet, 5);
    const chunk = Buffer.alloc(encoded.length + 2); // its own ArrayBuffer, not the shared pool
    encode({ type: 'pingreq' }, 5).copy(chunk);
    encoded.copy(chunk, 2);
    const [, got] = parseChunks([chunk], 5) as [Packet, PublishPacket];
    assert.deepEqual(got, packet);
    assert.equal(got.payload.buffer, chunk.buffer);
    assert.equal(got.payload.byteOffset, chunk.byteOffset + chunk.length - 500);
    assert.equal(got.properties!.correlationData!.buffer, chunk.buffer);
  });

  test('a PUBLISH spanning two chunks is copied once, not a view of either chunk', () => {
    const encoded = encode(pub({ payload: bytes(100) }), 4);
    const a = Buffer.alloc(50); // own ArrayBuffers, not the shared pool
    const b = Buffer.alloc(encoded.length - 50);
    encoded.copy(a, 0, 0, 50);
    encoded.copy(b, 0, 50);
    const [got] = parseChunks([a, b], 4) as [PublishPacket];
    assert.notEqual(got.payload.buffer, a.buffer);
    assert.notEqual(got.payload.buffer, b.buffer);
    assert.deepEqual(got.payload, bytes(100));
  });

  test('a PUBLISH inside the chunk that completes a spanning packet is still a view of that chunk', () => {
    const first = encode(pub({ payload: bytes(100) }), 4);
    const second = encode(pub({ payload: bytes(300, 1) }), 4);
    for (const cut of [1, 2, 50]) {
      const a = Buffer.alloc(cut);
      const b = Buffer.alloc(first.length - cut + second.length);
      first.copy(a, 0, 0, cut);
      first.copy(b, 0, cut);
      second.copy(b, first.length - cut);
      const [x, y] = parseChunks([a, b], 4) as [PublishPacket, PublishPacket];
      assert.deepEqual(x.payload, bytes(100));
      assert.deepEqual(y.payload, bytes(300, 1));
      assert.equal(y.payload.buffer, b.buffer, `cut at ${cut}`);
    }
  });

  for (const version of ALL) {
    test(`withPacketId patches the packet id and DUP flag of a copy (v${version})`, () => {
      const props = version === 5 ? { properties: { userProperties: USER, topicAlias: 2 } } : {};
      const original = pub({
        topic: 'long/'.repeat(40),
        qos: 2,
        packetId: 1,
        payload: bytes(20_000),
        ...props,
      });
      const encoded = encodePublish(original, version);
      const before = Buffer.from(encoded);
      const patched = withPacketId(encoded, 0xbeef);
      const resent = withPacketId(encoded, 0x0102, true);
      assert.deepEqual(encoded, before, 'the original bytes are untouched');
      assert.deepEqual(parseChunks([patched], version), [{ ...original, packetId: 0xbeef }]);
      assert.deepEqual(parseChunks([resent], version), [{ ...original, packetId: 0x0102, dup: true }]);
      const cleared = withPacketId(resent, 5, false);
      assert.deepEqual(parseChunks([cleared], version), [{ ...original, packetId: 5, dup: false }]);
    });
  }
});
