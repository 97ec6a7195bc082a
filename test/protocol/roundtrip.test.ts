/**
 * Round trips: every packet type in every protocol version where it exists is encoded, parsed
 * back and compared field by field with the original (Buffers by content). The same bytes are
 * then parsed split at every byte boundary, and all packets of a version concatenated in one chunk.
 * The tables hold packets in the exact shape the parser produces (no undefined fields).
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

const V3_4: ProtocolVersion[] = [3, 4];
const ALL: ProtocolVersion[] = [3, 4, 5];

/** Repeated names, kept in wire order [MQTT-3.3.2-18]. */
const USER: [string, string][] = [
  ['region', 'eu'],
  ['trace', '1'],
  ['region', 'us'],
  ['', ''],
];

const bytes = (n: number, seed = 7): Buffer => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
};

const pub = (fields: Partial<PublishPacket>): PublishPacket => ({
  type: 'publish',
  topic: 'a/b',
  payload: Buffer.from('hello'),
  qos: 0,
  retain: false,
  dup: false,
  ...fields,
});

interface Case {
  name: string;
  versions: ProtocolVersion[];
  packet: Packet;
}

const CASES: Case[] = [
  // CONNECT carries its own version, so each case names exactly one.
  {
    name: 'CONNECT 3.1 minimal',
    versions: [3],
    packet: {
      type: 'connect',
      protocolName: 'MQIsdp',
      protocolVersion: 3,
      clean: true,
      keepalive: 60,
      clientId: 'c1',
    },
  },
  {
    name: 'CONNECT 3.1 with will, user name and password',
    versions: [3],
    packet: {
      type: 'connect',
      protocolName: 'MQIsdp',
      protocolVersion: 3,
      clean: false,
      keepalive: 0,
      clientId: 'c1',
      will: { topic: 'w/t', payload: Buffer.from('bye'), qos: 1, retain: true },
      username: 'u',
      password: Buffer.from([0, 1, 2, 0xff]),
    },
  },
  {
    name: 'CONNECT 3.1.1 with empty client id',
    versions: [4],
    packet: { type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 65535, clientId: '' },
  },
  {
    name: 'CONNECT 3.1.1 with empty will payload, empty user name and password',
    versions: [4],
    packet: {
      type: 'connect',
      protocolName: 'MQTT',
      protocolVersion: 4,
      clean: true,
      keepalive: 30,
      clientId: 'ü-client',
      will: { topic: 'w', payload: Buffer.alloc(0), qos: 2, retain: false },
      username: '',
      password: Buffer.alloc(0),
    },
  },
  {
    name: 'CONNECT 5 with every CONNECT and will property',
    versions: [5],
    packet: {
      type: 'connect',
      protocolName: 'MQTT',
      protocolVersion: 5,
      clean: true,
      keepalive: 10,
      clientId: 'c5',
      properties: {
        sessionExpiryInterval: 0xffffffff,
        authenticationMethod: 'SCRAM-SHA-1',
        authenticationData: Buffer.from('client-first'),
        requestProblemInformation: 0,
        requestResponseInformation: 1,
        receiveMaximum: 20,
        topicAliasMaximum: 10,
        userProperties: USER,
        maximumPacketSize: 1 << 20,
      },
      will: {
        topic: 'will/topic',
        payload: bytes(300),
        qos: 1,
        retain: true,
        properties: {
          payloadFormatIndicator: 1,
          messageExpiryInterval: 3600,
          contentType: 'text/plain',
          responseTopic: 'reply/here',
          correlationData: Buffer.from([9, 8, 7]),
          willDelayInterval: 5,
          userProperties: [['k', 'v']],
        },
      },
      username: 'user',
      password: Buffer.from('secret'),
    },
  },
  {
    name: 'CONNECT 5 with password but no user name (allowed in v5, section 3.1.2.9)',
    versions: [5],
    packet: {
      type: 'connect',
      protocolName: 'MQTT',
      protocolVersion: 5,
      clean: false,
      keepalive: 1,
      clientId: 'p',
      password: Buffer.from('token'),
    },
  },
  { name: 'CONNACK accepted', versions: ALL, packet: { type: 'connack', sessionPresent: false, reasonCode: 0 } },
  { name: 'CONNACK session present', versions: ALL, packet: { type: 'connack', sessionPresent: true, reasonCode: 0 } },
  { name: 'CONNACK refused (v3 code 5)', versions: V3_4, packet: { type: 'connack', sessionPresent: false, reasonCode: 5 } },
  {
    name: 'CONNACK 5 with every CONNACK property',
    versions: [5],
    packet: {
      type: 'connack',
      sessionPresent: false,
      reasonCode: 0,
      properties: {
        sessionExpiryInterval: 120,
        assignedClientIdentifier: 'auto-1',
        serverKeepAlive: 45,
        authenticationMethod: 'm',
        authenticationData: Buffer.alloc(0),
        responseInformation: 'resp/',
        serverReference: 'other:1883',
        reasonString: '',
        receiveMaximum: 65535,
        topicAliasMaximum: 0,
        maximumQoS: 1,
        retainAvailable: 0,
        userProperties: USER,
        maximumPacketSize: 268435460,
        wildcardSubscriptionAvailable: 1,
        subscriptionIdentifierAvailable: 0,
        sharedSubscriptionAvailable: 1,
      },
    },
  },
  { name: 'CONNACK 5 refused (0x86)', versions: [5], packet: { type: 'connack', sessionPresent: false, reasonCode: 0x86 } },
  { name: 'PUBLISH QoS 0', versions: ALL, packet: pub({}) },
  { name: 'PUBLISH QoS 0 retained, empty payload', versions: ALL, packet: pub({ retain: true, payload: Buffer.alloc(0) }) },
  { name: 'PUBLISH QoS 1 DUP', versions: ALL, packet: pub({ qos: 1, dup: true, packetId: 1 }) },
  { name: 'PUBLISH QoS 2 retained', versions: ALL, packet: pub({ qos: 2, retain: true, packetId: 65535 }) },
  { name: 'PUBLISH unicode topic', versions: ALL, packet: pub({ topic: 'ü/日本/😀', qos: 1, packetId: 9 }) },
  { name: 'PUBLISH 200-byte payload (2-byte length)', versions: ALL, packet: pub({ payload: bytes(200) }) },
  { name: 'PUBLISH 20000-byte payload (3-byte length)', versions: ALL, packet: pub({ qos: 1, packetId: 3, payload: bytes(20_000) }) },
  { name: 'PUBLISH 2.1 MB payload (4-byte length)', versions: [4, 5], packet: pub({ payload: bytes(2_100_000) }) },
  {
    name: 'PUBLISH 5 with every PUBLISH property and two subscription ids',
    versions: [5],
    packet: pub({
      qos: 1,
      packetId: 77,
      properties: {
        payloadFormatIndicator: 0,
        messageExpiryInterval: 0,
        contentType: 'application/json',
        responseTopic: 'r/t',
        correlationData: Buffer.from('corr'),
        subscriptionIdentifiers: [1, 268_435_455],
        topicAlias: 3,
        userProperties: USER,
      },
    }),
  },
  {
    name: 'PUBLISH 5 with empty topic and topic alias',
    versions: [5],
    packet: pub({ topic: '', properties: { topicAlias: 1, contentType: '' } }),
  },
];

for (const type of ['puback', 'pubrec', 'pubrel', 'pubcomp'] as const) {
  const failure = type === 'puback' || type === 'pubrec' ? 0x10 : 0x92;
  CASES.push(
    { name: `${type.toUpperCase()} id 1`, versions: ALL, packet: { type, packetId: 1, reasonCode: 0 } },
    { name: `${type.toUpperCase()} id 65535`, versions: ALL, packet: { type, packetId: 65535, reasonCode: 0 } },
    {
      name: `${type.toUpperCase()} 5 with reason code only`,
      versions: [5],
      packet: { type, packetId: 2, reasonCode: failure },
    },
    {
      name: `${type.toUpperCase()} 5 with reason code and properties`,
      versions: [5],
      packet: { type, packetId: 3, reasonCode: failure, properties: { reasonString: 'why', userProperties: USER } },
    },
    {
      name: `${type.toUpperCase()} 5 success with properties`,
      versions: [5],
      packet: { type, packetId: 4, reasonCode: 0, properties: { userProperties: [['a', 'b']] } },
    },
  );
}

const sub = (topicFilter: string, qos: 0 | 1 | 2, extra = {}) => ({
  topicFilter,
  qos,
  noLocal: false,
  retainAsPublished: false,
  retainHandling: 0 as 0 | 1 | 2,
  ...extra,
});

CASES.push(
  {
    name: 'SUBSCRIBE three filters',
    versions: ALL,
    packet: { type: 'subscribe', packetId: 10, subscriptions: [sub('a/+', 0), sub('#', 1), sub('$SYS/x', 2)] },
  },
  {
    name: 'SUBSCRIBE 5 with options and properties',
    versions: [5],
    packet: {
      type: 'subscribe',
      packetId: 11,
      subscriptions: [
        sub('a', 1, { noLocal: true }),
        sub('b', 2, { retainAsPublished: true, retainHandling: 1 }),
        sub('$share/g/c', 0, { retainHandling: 2 }),
      ],
      properties: { subscriptionIdentifiers: [42], userProperties: USER },
    },
  },
  { name: 'SUBACK granted and failure', versions: ALL, packet: { type: 'suback', packetId: 10, reasonCodes: [0, 1, 2, 0x80] } },
  {
    name: 'SUBACK 5 with v5 codes and properties',
    versions: [5],
    packet: {
      type: 'suback',
      packetId: 11,
      reasonCodes: [0x02, 0x87, 0x8f, 0x9e, 0xa1, 0xa2],
      properties: { reasonString: 'partial', userProperties: USER },
    },
  },
  {
    name: 'UNSUBSCRIBE two filters',
    versions: ALL,
    packet: { type: 'unsubscribe', packetId: 12, topicFilters: ['a/+', '$share/g/#'] },
  },
  {
    name: 'UNSUBSCRIBE 5 with properties',
    versions: [5],
    packet: { type: 'unsubscribe', packetId: 13, topicFilters: ['x'], properties: { userProperties: USER } },
  },
  { name: 'UNSUBACK (no payload before v5)', versions: V3_4, packet: { type: 'unsuback', packetId: 12, reasonCodes: [] } },
  {
    name: 'UNSUBACK 5 with codes and properties',
    versions: [5],
    packet: { type: 'unsuback', packetId: 13, reasonCodes: [0, 0x11, 0x80], properties: { reasonString: 'r' } },
  },
  { name: 'PINGREQ', versions: ALL, packet: { type: 'pingreq' } },
  { name: 'PINGRESP', versions: ALL, packet: { type: 'pingresp' } },
  { name: 'DISCONNECT', versions: ALL, packet: { type: 'disconnect', reasonCode: 0 } },
  { name: 'DISCONNECT 5 with reason code only', versions: [5], packet: { type: 'disconnect', reasonCode: 0x04 } },
  {
    name: 'DISCONNECT 5 with properties',
    versions: [5],
    packet: {
      type: 'disconnect',
      reasonCode: 0x9c,
      properties: { sessionExpiryInterval: 0, reasonString: 'move', serverReference: 'b:1883', userProperties: USER },
    },
  },
  { name: 'AUTH 5 short form', versions: [5], packet: { type: 'auth', reasonCode: 0 } },
  { name: 'AUTH 5 re-authenticate without properties', versions: [5], packet: { type: 'auth', reasonCode: 0x19 } },
  {
    name: 'AUTH 5 continue with properties',
    versions: [5],
    packet: {
      type: 'auth',
      reasonCode: 0x18,
      properties: {
        authenticationMethod: 'SCRAM-SHA-1',
        authenticationData: bytes(40),
        reasonString: 'step 2',
        userProperties: USER,
      },
    },
  },
);

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
    assert.deepEqual([lengthBytes(0), lengthBytes(200), lengthBytes(20_000), lengthBytes(2_100_000)], [1, 2, 3, 4]);
  });

  test('v5 acks use the short form for Success without properties (section 3.4.2.1)', () => {
    assert.deepEqual(encode({ type: 'puback', packetId: 5, reasonCode: 0 }, 5), Buffer.from([0x40, 2, 0, 5]));
    assert.deepEqual(encode({ type: 'pubrel', packetId: 5, reasonCode: 0x92 }, 5), Buffer.from([0x62, 3, 0, 5, 0x92]));
    assert.deepEqual(encode({ type: 'disconnect', reasonCode: 0 }, 5), Buffer.from([0xe0, 0]));
    assert.deepEqual(encode({ type: 'auth', reasonCode: 0 }, 5), Buffer.from([0xf0, 0]));
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
      const rest = instances.filter((c) => c.version === version && c.packet.type !== 'connect').map((c) => c.packet);
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
    const packet = pub({ qos: 1, packetId: 1, payload: bytes(500), properties: { correlationData: bytes(8, 3) } });
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

  for (const version of ALL) {
    test(`withPacketId patches the packet id and DUP flag of a copy (v${version})`, () => {
      const props = version === 5 ? { properties: { userProperties: USER, topicAlias: 2 } } : {};
      const original = pub({ topic: 'long/'.repeat(40), qos: 2, packetId: 1, payload: bytes(20_000), ...props });
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
