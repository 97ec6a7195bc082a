/**
 * Round trips: every packet type in every protocol version where it exists is encoded, parsed
 * back and compared field by field with the original (Buffers by content). The same bytes are
 * then parsed split at every byte boundary, and all packets of a version concatenated in one chunk.
 * The tables hold packets in the exact shape the parser produces (no undefined fields).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type ConnectPacket,
  encode,
  encodePublish,
  type Packet,
  Parser,
  type Properties,
  type ProtocolVersion,
  type PublishPacket,
  type QoS,
  type SubscriptionRequest,
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
const CASES: Case[] = [];
const add = (name: string, versions: ProtocolVersion[], packet: Packet) =>
  CASES.push({ name, versions, packet });

/** CONNECT carries its own version, so each CONNECT case names exactly one. */
const connect = (version: ProtocolVersion, fields: Partial<ConnectPacket> = {}): ConnectPacket => ({
  type: 'connect',
  protocolName: version === 3 ? 'MQIsdp' : 'MQTT',
  protocolVersion: version,
  clean: true,
  keepalive: 60,
  clientId: 'c1',
  ...fields,
});

add('CONNECT 3.1 minimal', [3], connect(3));
add(
  'CONNECT 3.1 with will, user name and password',
  [3],
  connect(3, {
    clean: false,
    keepalive: 0,
    will: { topic: 'w/t', payload: Buffer.from('bye'), qos: 1, retain: true },
    username: 'u',
    password: Buffer.from([0, 1, 2, 0xff]),
  }),
);
add('CONNECT 3.1.1 with empty client id', [4], connect(4, { keepalive: 65535, clientId: '' }));
add(
  'CONNECT 3.1.1 with empty will payload, empty user name and password',
  [4],
  connect(4, {
    clientId: 'ü-client',
    will: { topic: 'w', payload: Buffer.alloc(0), qos: 2, retain: false },
    username: '',
    password: Buffer.alloc(0),
  }),
);
add(
  'CONNECT 5 with every CONNECT and will property',
  [5],
  connect(5, {
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
  }),
);
add(
  'CONNECT 5 with password but no user name (allowed in v5, section 3.1.2.9)',
  [5],
  connect(5, { clean: false, password: Buffer.from('token') }),
);

add('CONNACK accepted', ALL, { type: 'connack', sessionPresent: false, reasonCode: 0 });
add('CONNACK session present', ALL, { type: 'connack', sessionPresent: true, reasonCode: 0 });
add('CONNACK refused (v3 code 5)', V3_4, { type: 'connack', sessionPresent: false, reasonCode: 5 });
add('CONNACK 5 refused (0x86)', [5], { type: 'connack', sessionPresent: false, reasonCode: 0x86 });
add('CONNACK 5 with every CONNACK property', [5], {
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
});

add('PUBLISH QoS 0', ALL, pub({}));
add('PUBLISH QoS 0 retained, empty payload', ALL, pub({ retain: true, payload: Buffer.alloc(0) }));
add('PUBLISH QoS 1 DUP', ALL, pub({ qos: 1, dup: true, packetId: 1 }));
add('PUBLISH QoS 2 retained', ALL, pub({ qos: 2, retain: true, packetId: 65535 }));
add('PUBLISH unicode topic', ALL, pub({ topic: 'ü/日本/😀', qos: 1, packetId: 9 }));
add('PUBLISH 200-byte payload (2-byte length)', ALL, pub({ payload: bytes(200) }));
add('PUBLISH 20000-byte payload (3-byte length)', ALL, pub({ qos: 1, packetId: 3, payload: bytes(20_000) }));
add('PUBLISH 2.1 MB payload (4-byte length)', [4, 5], pub({ payload: bytes(2_100_000) }));
add(
  'PUBLISH 5 with empty topic and topic alias',
  [5],
  pub({ topic: '', properties: { topicAlias: 1, contentType: '' } }),
);
add(
  'PUBLISH 5 with every PUBLISH property and two subscription ids',
  [5],
  pub({
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
);

for (const type of ['puback', 'pubrec', 'pubrel', 'pubcomp'] as const) {
  const failure = type === 'puback' || type === 'pubrec' ? 0x10 : 0x92;
  const NAME = type.toUpperCase();
  add(`${NAME} id 1`, ALL, { type, packetId: 1, reasonCode: 0 });
  add(`${NAME} id 65535`, ALL, { type, packetId: 65535, reasonCode: 0 });
  add(`${NAME} 5 with reason code only`, [5], { type, packetId: 2, reasonCode: failure });
  add(`${NAME} 5 with reason code and properties`, [5], {
    type,
    packetId: 3,
    reasonCode: failure,
    properties: { reasonString: 'why', userProperties: USER },
  });
  add(`${NAME} 5 success with properties`, [5], {
    type,
    packetId: 4,
    reasonCode: 0,
    properties: { userProperties: [['a', 'b']] },
  });
}

const sub = (
  topicFilter: string,
  qos: QoS,
  extra: Partial<SubscriptionRequest> = {},
): SubscriptionRequest => ({
  topicFilter,
  qos,
  noLocal: false,
  retainAsPublished: false,
  retainHandling: 0,
  ...extra,
});

add('SUBSCRIBE three filters', ALL, {
  type: 'subscribe',
  packetId: 10,
  subscriptions: [sub('a/+', 0), sub('#', 1), sub('$SYS/x', 2)],
});
add('SUBSCRIBE 5 with options and properties', [5], {
  type: 'subscribe',
  packetId: 11,
  subscriptions: [
    sub('a', 1, { noLocal: true }),
    sub('b', 2, { retainAsPublished: true, retainHandling: 1 }),
    sub('$share/g/c', 0, { retainHandling: 2 }),
  ],
  properties: { subscriptionIdentifiers: [42], userProperties: USER },
});
add('SUBACK granted and failure', ALL, { type: 'suback', packetId: 10, reasonCodes: [0, 1, 2, 0x80] });
add('SUBACK 5 with v5 codes and properties', [5], {
  type: 'suback',
  packetId: 11,
  reasonCodes: [0x02, 0x87, 0x8f, 0x9e, 0xa1, 0xa2],
  properties: { reasonString: 'partial', userProperties: USER },
});
add('UNSUBSCRIBE two filters', ALL, {
  type: 'unsubscribe',
  packetId: 12,
  topicFilters: ['a/+', '$share/g/#'],
});
add('UNSUBSCRIBE 5 with properties', [5], {
  type: 'unsubscribe',
  packetId: 13,
  topicFilters: ['x'],
  properties: { userProperties: USER },
});
add('UNSUBACK (no payload before v5)', V3_4, { type: 'unsuback', packetId: 12, reasonCodes: [] });
add('UNSUBACK 5 with codes and properties', [5], {
  type: 'unsuback',
  packetId: 13,
  reasonCodes: [0, 0x11, 0x80],
  properties: { reasonString: 'r' },
});
add('PINGREQ', ALL, { type: 'pingreq' });
add('PINGRESP', ALL, { type: 'pingresp' });
add('DISCONNECT', ALL, { type: 'disconnect', reasonCode: 0 });
add('DISCONNECT 5 with reason code only', [5], { type: 'disconnect', reasonCode: 0x04 });
add('DISCONNECT 5 with properties', [5], {
  type: 'disconnect',
  reasonCode: 0x9c,
  properties: {
    sessionExpiryInterval: 0,
    reasonString: 'move',
    serverReference: 'b:1883',
    userProperties: USER,
  },
});
add('AUTH 5 short form', [5], { type: 'auth', reasonCode: 0 });
add('AUTH 5 re-authenticate without properties', [5], { type: 'auth', reasonCode: 0x19 });
add('AUTH 5 continue with properties', [5], {
  type: 'auth',
  reasonCode: 0x18,
  properties: {
    authenticationMethod: 'SCRAM-SHA-1',
    authenticationData: bytes(40),
    reasonString: 'step 2',
    userProperties: USER,
  },
});

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
