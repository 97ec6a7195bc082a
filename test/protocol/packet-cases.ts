/**
 * The codec's packet table, shared by the round-trip tests (roundtrip.test.ts: every case, every
 * version it lists) and the differential tests against mqtt-packet (differential.test.ts: every
 * case mqtt-packet can represent). Packets are in the exact shape our parser produces (no
 * undefined fields), so a parsed packet is compared with `deepEqual` to its case.
 *
 * `oracle` says how the differential test takes a case: a reason per direction (they parse our
 * bytes, we parse theirs, same bytes) that does not apply, or `unrepresentable` when mqtt-packet
 * cannot hold the packet at all. mqtt-packet keeps user properties in an object keyed by name, so
 * repeated names out of order (a, b, a) in wire order [MQTT-3.3.2-18] are round-trip cases only;
 * cases for both use names repeated adjacently (USER_BY_NAME).
 */
import type {
  ConnectPacket,
  Packet,
  ProtocolVersion,
  PublishPacket,
  QoS,
  SubscriptionRequest,
} from '../../src/protocol/index.ts';

/** Reasons one direction or the byte comparison against mqtt-packet does not apply to a case. */
export interface OracleSkips {
  theyParse?: string;
  theyGenerate?: string;
  bytes?: string;
  /** mqtt-packet cannot represent the packet: the differential test leaves the case out. */
  unrepresentable?: string;
}

export interface PacketCase {
  name: string;
  versions: ProtocolVersion[];
  packet: Packet;
  oracle: OracleSkips;
}

export const V3_4: ProtocolVersion[] = [3, 4];
export const ALL: ProtocolVersion[] = [3, 4, 5];

/** Repeated names, kept in wire order [MQTT-3.3.2-18], and an empty pair. */
export const USER_IN_WIRE_ORDER: [string, string][] = [
  ['region', 'eu'],
  ['trace', '1'],
  ['region', 'us'],
  ['', ''],
];
/** Repeated names adjacent, the only order mqtt-packet's object keyed by name can give back. */
const USER_BY_NAME: [string, string][] = [
  ['region', 'eu'],
  ['region', 'us'],
  ['trace', '1'],
];
const IN_WIRE_ORDER: OracleSkips = {
  unrepresentable: 'user properties out of name order (mqtt-packet keeps them by name)',
};
const SHORT_FORMS: OracleSkips = {
  bytes: 'we omit what sections 3.4.2.1 / 3.14.2.1 / 3.15.2.1 let us omit; mqtt-packet writes it',
};

/** `n` bytes of a pattern that varies with `seed`. */
export const bytes = (n: number, seed = 7): Buffer => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
};

export const pub = (fields: Partial<PublishPacket>): PublishPacket => ({
  type: 'publish',
  topic: 'a/b',
  payload: Buffer.from('hello'),
  qos: 0,
  retain: false,
  dup: false,
  ...fields,
});

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

export const PACKET_CASES: PacketCase[] = [];
const add = (name: string, versions: ProtocolVersion[], packet: Packet, oracle: OracleSkips = {}) =>
  PACKET_CASES.push({ name, versions, packet, oracle });

// Round-trip cases first: the concatenation test takes the first CONNECT of each version.
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
      userProperties: USER_IN_WIRE_ORDER,
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
  IN_WIRE_ORDER,
);
add(
  'CONNECT 5 with password but no user name (allowed in v5, section 3.1.2.9)',
  [5],
  connect(5, { clean: false, password: Buffer.from('token') }),
  { theyGenerate: 'mqtt-packet requires a user name for a password' },
);

add('CONNACK accepted', ALL, { type: 'connack', sessionPresent: false, reasonCode: 0 });
// 3.1 has no Session Present: its encoder writes the reserved byte as 0 (roundtrip.test.ts).
add('CONNACK session present', [4, 5], { type: 'connack', sessionPresent: true, reasonCode: 0 });
add('CONNACK refused (v3 code 5)', V3_4, { type: 'connack', sessionPresent: false, reasonCode: 5 });
add('CONNACK 5 refused (0x86)', [5], { type: 'connack', sessionPresent: false, reasonCode: 0x86 });
add(
  'CONNACK 5 with every CONNACK property',
  [5],
  {
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
      userProperties: USER_IN_WIRE_ORDER,
      maximumPacketSize: 268435460,
      wildcardSubscriptionAvailable: 1,
      subscriptionIdentifierAvailable: 0,
      sharedSubscriptionAvailable: 1,
    },
  },
  IN_WIRE_ORDER,
);

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
      userProperties: USER_IN_WIRE_ORDER,
    },
  }),
  IN_WIRE_ORDER,
);

for (const type of ['puback', 'pubrec', 'pubrel', 'pubcomp'] as const) {
  const failure = type === 'puback' || type === 'pubrec' ? 0x10 : 0x92;
  const NAME = type.toUpperCase();
  add(`${NAME} id 1`, ALL, { type, packetId: 1, reasonCode: 0 });
  add(`${NAME} id 65535`, ALL, { type, packetId: 65535, reasonCode: 0 });
  add(`${NAME} 5 with reason code only`, [5], { type, packetId: 2, reasonCode: failure }, SHORT_FORMS);
  add(
    `${NAME} 5 with reason code and properties`,
    [5],
    {
      type,
      packetId: 3,
      reasonCode: failure,
      properties: { reasonString: 'why', userProperties: USER_IN_WIRE_ORDER },
    },
    IN_WIRE_ORDER,
  );
  add(`${NAME} 5 success with properties`, [5], {
    type,
    packetId: 4,
    reasonCode: 0,
    properties: { userProperties: [['a', 'b']] },
  });
}

add('SUBSCRIBE three filters', ALL, {
  type: 'subscribe',
  packetId: 10,
  subscriptions: [sub('a/+', 0), sub('#', 1), sub('$SYS/x', 2)],
});
add(
  'SUBSCRIBE 5 with options and properties',
  [5],
  {
    type: 'subscribe',
    packetId: 11,
    subscriptions: [
      sub('a', 1, { noLocal: true }),
      sub('b', 2, { retainAsPublished: true, retainHandling: 1 }),
      sub('$share/g/c', 0, { retainHandling: 2 }),
    ],
    properties: { subscriptionIdentifiers: [42], userProperties: USER_IN_WIRE_ORDER },
  },
  IN_WIRE_ORDER,
);
add('SUBACK granted and failure', ALL, { type: 'suback', packetId: 10, reasonCodes: [0, 1, 2, 0x80] });
add(
  'SUBACK 5 with v5 codes and properties',
  [5],
  {
    type: 'suback',
    packetId: 11,
    reasonCodes: [0x02, 0x87, 0x8f, 0x9e, 0xa1, 0xa2],
    properties: { reasonString: 'partial', userProperties: USER_IN_WIRE_ORDER },
  },
  IN_WIRE_ORDER,
);
add('UNSUBSCRIBE two filters', ALL, {
  type: 'unsubscribe',
  packetId: 12,
  topicFilters: ['a/+', '$share/g/#'],
});
add(
  'UNSUBSCRIBE 5 with properties',
  [5],
  {
    type: 'unsubscribe',
    packetId: 13,
    topicFilters: ['x'],
    properties: { userProperties: USER_IN_WIRE_ORDER },
  },
  IN_WIRE_ORDER,
);
add('UNSUBACK (no payload before v5)', V3_4, { type: 'unsuback', packetId: 12, reasonCodes: [] });
add('UNSUBACK 5 with codes and properties', [5], {
  type: 'unsuback',
  packetId: 13,
  reasonCodes: [0, 0x11, 0x80],
  properties: { reasonString: 'r' },
});
add('PINGREQ', ALL, { type: 'pingreq' });
add('PINGRESP', ALL, { type: 'pingresp' });
add('DISCONNECT', V3_4, { type: 'disconnect', reasonCode: 0 });
add('DISCONNECT 5 with reason code only', [5], { type: 'disconnect', reasonCode: 0x04 }, SHORT_FORMS);
add(
  'DISCONNECT 5 with properties',
  [5],
  {
    type: 'disconnect',
    reasonCode: 0x9c,
    properties: {
      sessionExpiryInterval: 0,
      reasonString: 'move',
      serverReference: 'b:1883',
      userProperties: USER_IN_WIRE_ORDER,
    },
  },
  IN_WIRE_ORDER,
);
add('AUTH 5 re-authenticate without properties', [5], { type: 'auth', reasonCode: 0x19 });
add(
  'AUTH 5 continue with properties',
  [5],
  {
    type: 'auth',
    reasonCode: 0x18,
    properties: {
      authenticationMethod: 'SCRAM-SHA-1',
      authenticationData: bytes(40),
      reasonString: 'step 2',
      userProperties: USER_IN_WIRE_ORDER,
    },
  },
  IN_WIRE_ORDER,
);

// Cases written for the differential test (user properties by name, mqtt-packet's deviations).
add(
  'CONNECT 3.1 with will and credentials',
  [3],
  connect(3, {
    will: { topic: 'w', payload: Buffer.from('bye'), qos: 1, retain: true },
    username: 'u',
    password: Buffer.from('p'),
  }),
);
add(
  'CONNECT 3.1.1 empty client id, empty will payload and password',
  [4],
  connect(4, {
    keepalive: 0,
    clientId: '',
    will: { topic: 'w', payload: Buffer.alloc(0), qos: 2, retain: false },
    username: '',
    password: Buffer.alloc(0),
  }),
);
add(
  'CONNECT 5 with properties and will properties',
  [5],
  connect(5, {
    clean: false,
    properties: {
      sessionExpiryInterval: 300,
      authenticationMethod: 'PLAIN',
      authenticationData: Buffer.from([1, 2]),
      requestProblemInformation: 0,
      requestResponseInformation: 1,
      receiveMaximum: 100,
      topicAliasMaximum: 5,
      userProperties: USER_BY_NAME,
      maximumPacketSize: 65536,
    },
    will: {
      topic: 'w/5',
      payload: bytes(20),
      qos: 0,
      retain: false,
      properties: {
        payloadFormatIndicator: 1,
        messageExpiryInterval: 60,
        contentType: 'text/plain',
        responseTopic: 'r',
        correlationData: Buffer.from('c'),
        willDelayInterval: 10,
        userProperties: [['w', '1']],
      },
    },
    username: 'user',
    password: Buffer.from('pw'),
  }),
);

add('CONNACK accepted, session present', [4, 5], { type: 'connack', sessionPresent: true, reasonCode: 0 });
add('CONNACK refused', V3_4, { type: 'connack', sessionPresent: false, reasonCode: 4 });
add('CONNACK 5 refused', [5], { type: 'connack', sessionPresent: false, reasonCode: 0x87 });
add('CONNACK 5 with every CONNACK property, user properties by name', [5], {
  type: 'connack',
  sessionPresent: false,
  reasonCode: 0,
  properties: {
    sessionExpiryInterval: 10,
    assignedClientIdentifier: 'auto',
    serverKeepAlive: 30,
    authenticationMethod: 'm',
    authenticationData: Buffer.alloc(0),
    responseInformation: 'ri',
    serverReference: 'srv',
    reasonString: 'ok',
    receiveMaximum: 10,
    topicAliasMaximum: 3,
    maximumQoS: 1,
    retainAvailable: 0,
    userProperties: USER_BY_NAME,
    maximumPacketSize: 1000,
    wildcardSubscriptionAvailable: 1,
    subscriptionIdentifierAvailable: 0,
    sharedSubscriptionAvailable: 1,
  },
});

add('PUBLISH QoS 0 empty payload', ALL, pub({ payload: Buffer.alloc(0) }));
add('PUBLISH QoS 1 DUP retained', ALL, pub({ qos: 1, dup: true, retain: true, packetId: 513 }));
add('PUBLISH QoS 2 unicode topic', ALL, pub({ topic: 'ü/日本/😀', qos: 2, packetId: 65535 }));
add('PUBLISH 200-byte payload', ALL, pub({ payload: bytes(200) }));
add('PUBLISH 20000-byte payload', ALL, pub({ qos: 1, packetId: 2, payload: bytes(20_000) }));
add('PUBLISH 5 empty topic with alias', [5], pub({ topic: '', properties: { topicAlias: 1 } }));
add(
  'PUBLISH 5 with every PUBLISH property',
  [5],
  pub({
    qos: 1,
    packetId: 9,
    properties: {
      payloadFormatIndicator: 1,
      messageExpiryInterval: 86400,
      contentType: 'application/json',
      responseTopic: 'reply',
      correlationData: Buffer.from([0, 255]),
      subscriptionIdentifiers: [7, 268_435_455],
      topicAlias: 4,
      userProperties: USER_BY_NAME,
    },
  }),
);

for (const type of ['puback', 'pubrec', 'pubrel', 'pubcomp'] as const) {
  const failure = type === 'puback' || type === 'pubrec' ? 0x97 : 0x92;
  const NAME = type.toUpperCase();
  add(NAME, ALL, { type, packetId: 300, reasonCode: 0 });
  add(`${NAME} 5 reason code only`, [5], { type, packetId: 1, reasonCode: failure }, SHORT_FORMS);
  add(`${NAME} 5 reason code and properties`, [5], {
    type,
    packetId: 2,
    reasonCode: failure,
    properties: { reasonString: 'no', userProperties: USER_BY_NAME },
  });
}

add('SUBSCRIBE', ALL, {
  type: 'subscribe',
  packetId: 1,
  subscriptions: [sub('a/+', 0), sub('b/#', 1), sub('c', 2)],
});
add('SUBSCRIBE 5 with options and properties, user properties by name', [5], {
  type: 'subscribe',
  packetId: 2,
  subscriptions: [
    sub('a', 1, { noLocal: true, retainAsPublished: true }),
    sub('$share/g/b', 2, { retainHandling: 2 }),
  ],
  properties: { subscriptionIdentifiers: [300], userProperties: USER_BY_NAME },
});
add('SUBACK', ALL, { type: 'suback', packetId: 1, reasonCodes: [0, 1, 2, 0x80] });
add('SUBACK 5 with properties', [5], {
  type: 'suback',
  packetId: 2,
  reasonCodes: [1, 0x87, 0xa2],
  properties: { reasonString: 'r', userProperties: USER_BY_NAME },
});
add('UNSUBSCRIBE', ALL, { type: 'unsubscribe', packetId: 3, topicFilters: ['a/+', 'b/#'] });
add('UNSUBSCRIBE 5 with properties, user properties by name', [5], {
  type: 'unsubscribe',
  packetId: 4,
  topicFilters: ['x'],
  properties: { userProperties: USER_BY_NAME },
});
add('UNSUBACK', V3_4, { type: 'unsuback', packetId: 3, reasonCodes: [] });
add('UNSUBACK 5 with properties', [5], {
  type: 'unsuback',
  packetId: 4,
  reasonCodes: [0, 0x11],
  properties: { reasonString: 'gone' },
});
add('DISCONNECT 5 short', [5], { type: 'disconnect', reasonCode: 0 }, SHORT_FORMS);
add('DISCONNECT 5 reason code only', [5], { type: 'disconnect', reasonCode: 0x8e }, SHORT_FORMS);
add('DISCONNECT 5 with properties', [5], {
  type: 'disconnect',
  reasonCode: 0x9d,
  properties: { sessionExpiryInterval: 0, serverReference: 'b', reasonString: 'moved' },
});
// Section 3.15.2.1 allows an AUTH of Remaining Length 0; mqtt-packet's parser rejects it
// ("Invalid auth reason code") and its encoder always writes the reason code.
add(
  'AUTH 5 short',
  [5],
  { type: 'auth', reasonCode: 0 },
  { ...SHORT_FORMS, theyParse: 'mqtt-packet rejects it' },
);
add('AUTH 5 continue without properties', [5], { type: 'auth', reasonCode: 0x18 });
add('AUTH 5 with properties', [5], {
  type: 'auth',
  reasonCode: 0x19,
  properties: {
    authenticationMethod: 'SCRAM',
    authenticationData: bytes(32),
    reasonString: 're',
    userProperties: USER_BY_NAME,
  },
});
