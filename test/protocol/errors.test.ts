/**
 * One test per malformed-input rule the codec enforces, each named after the behaviour and the
 * statement it enforces, fed as literal bytes. Then the parser's behaviour after an error, and
 * the topic name / filter / shared-subscription tables of topic.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  exceedsFilterLevels,
  exceedsTopicLevels,
  isSharedFilter,
  isValidMqttString,
  isValidMqttUtf8,
  isValidTopicFilter,
  isValidTopicName,
  type Packet,
  Parser,
  type ParserOptions,
  ProtocolError,
  type ProtocolVersion,
  parseSharedFilter,
} from '../../src/protocol/index.ts';
import { varint } from '../helpers/wire.ts';

type Bytes = number | readonly number[];

const u16 = (n: number) => [n >> 8, n & 0xff];
/** An MQTT string: 2-byte length then the bytes (a string is UTF-8 encoded, an array is raw). */
const str = (s: string | number[]) => {
  const b = typeof s === 'string' ? [...Buffer.from(s)] : s;
  return [...u16(b.length), ...b];
};
/** A whole packet: first byte, remaining length, body. */
const pkt = (first: number, ...body: Bytes[]) => {
  const flat = body.flat();
  return Buffer.from([first, ...varint(flat.length), ...flat]);
};
/** A CONNECT body; `rest` follows the keep alive (properties for v5, client id, ...). */
const connect = (name: string, level: number, flags: number, ...rest: Bytes[]) =>
  pkt(0x10, str(name), level, flags, u16(60), ...rest);

/** Pushes the bytes and returns the error; asserts it is a ProtocolError with `code`. */
function expectError(code: number, bytes: Buffer, options: ParserOptions = {}): ProtocolError {
  const seen: Packet[] = [];
  const err = new Parser(options).push(bytes, (p) => {
    seen.push(p);
  });
  assert.ok(err instanceof ProtocolError, `expected an error, parsed ${JSON.stringify(seen)}`);
  assert.equal(err.reasonCode, code, err.message);
  return err;
}
const v = (protocolVersion: ProtocolVersion): ParserOptions => ({ protocolVersion });

function expectPackets(bytes: Buffer, options: ParserOptions = {}): Packet[] {
  const seen: Packet[] = [];
  assert.equal(
    new Parser(options).push(bytes, (p) => {
      seen.push(p);
    }),
    null,
  );
  return seen;
}

describe('fixed header', () => {
  test('packet type 0 is forbidden: malformed (0x81) (section 2.1.2)', () => {
    expectError(0x81, pkt(0x00));
  });

  for (const version of [3, 4] as const) {
    test(`AUTH (type 15) in v${version} is reserved: malformed (0x81) (3.1.1 section 2.2.1)`, () => {
      expectError(0x81, pkt(0xf0), v(version));
    });
  }

  const flagCases: [string, number, Bytes[], ProtocolVersion][] = [
    ['CONNECT', 0x12, [str('MQTT'), 4, 2, u16(0), str('c')], 4],
    ['PUBACK', 0x42, [u16(1)], 4],
    ['PUBREL', 0x60, [u16(1)], 4],
    ['SUBSCRIBE', 0x80, [u16(1), str('a'), 0], 4],
    ['SUBSCRIBE', 0x8a, [u16(1), str('a'), 0], 4],
    ['UNSUBSCRIBE', 0xaa, [u16(1), str('a')], 4],
    ['PUBREL', 0x6a, [u16(1)], 4],
    ['PUBREL', 0x6a, [u16(1)], 5],
    ['PUBACK', 0x48, [u16(1)], 3],
    ['UNSUBSCRIBE', 0xa0, [u16(1), str('a')], 4],
    ['PINGREQ', 0xc1, [], 4],
    ['DISCONNECT', 0xe8, [], 5],
    ['AUTH', 0xf1, [], 5],
  ];
  for (const [name, first, body, version] of flagCases) {
    const id = version === 5 ? '[MQTT-2.1.3-1]' : '[MQTT-2.2.2-2]';
    test(`${name} with fixed header flags 0x${(first & 15).toString(16)} is malformed (0x81) ${id} (v${version})`, () => {
      expectError(0x81, pkt(first, ...body), v(version));
    });
  }

  test('MQTT 3.1 (level 3) PUBREL, SUBSCRIBE and UNSUBSCRIBE re-sent with DUP set decode (3.1 sections 3.6, 3.8, 3.10)', () => {
    const packets = expectPackets(
      Buffer.concat([
        pkt(0x6a, u16(1)),
        pkt(0x8a, u16(2), str('a'), 1),
        pkt(0xaa, u16(3), str('a')),
        pkt(0x82, u16(4), str('a'), 1),
      ]),
      v(3),
    );
    assert.deepEqual(
      packets.map((p) => [p.type, 'packetId' in p ? p.packetId : 0]),
      [
        ['pubrel', 1],
        ['subscribe', 2],
        ['unsubscribe', 3],
        ['subscribe', 4],
      ],
    );
  });

  test('a remaining length longer than 4 bytes is malformed (0x81) (section 1.5.5)', () => {
    expectError(0x81, Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]));
  });

  test('a packet over maximumPacketSize is refused from its fixed header alone (0x95) (section 3.1.2.11.4)', () => {
    const parser = new Parser({ maximumPacketSize: 4096 });
    const err = parser.push(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]), () => assert.fail('no packet'));
    assert.equal(err?.reasonCode, 0x95);
    assert.equal(parser.bufferedBytes, 0);
    expectError(0x95, Buffer.from([0x30, 0x80, 0x20]), { maximumPacketSize: 4096 }); // 3 bytes: 4096 + 3 > 4096
  });

  test('maximumPacketSize counts the whole packet: exactly the maximum passes, one more byte is 0x95', () => {
    const publish = pkt(0x30, str('t'), [...Buffer.alloc(200)]);
    assert.equal(expectPackets(publish, { maximumPacketSize: publish.length }).length, 1);
    expectError(0x95, publish, { maximumPacketSize: publish.length - 1 });
  });

  test('an oversized CONNECT is refused once its protocol level is in, holding only those bytes; v5 gets a CONNACK version (section 3.2.2.2)', () => {
    const header = [0x10, 0x80, 0x80, 0x40]; // CONNECT claiming a 1 MiB body
    const cases: [string, number[], 5 | undefined][] = [
      ['v5', [...str('MQTT'), 5], 5],
      ['v3.1.1', [...str('MQTT'), 4], undefined],
      ['v3.1', [...str('MQIsdp'), 3], undefined], // level 3 is not read: its CONNACK has no 0x95
      ['not MQTT', [...str('HTTP'), 5], undefined],
    ];
    for (const [what, start, connackVersion] of cases) {
      const parser = new Parser({ maximumPacketSize: 65_536 });
      const bytes = [...header, ...start, ...Buffer.alloc(64, 0x61)];
      let err: ProtocolError | null = null;
      // Byte by byte: nothing is decided, and little held, before the 7th body byte.
      for (let i = 0; i < bytes.length && err === null; i++) {
        err = parser.push(Buffer.from([bytes[i]!]), () => assert.fail('no packet'));
        if (err === null)
          assert.ok(parser.bufferedBytes <= header.length + 7, `${what}: ${parser.bufferedBytes} held`);
        else assert.equal(i, header.length + 6, `${what}: refused at its protocol level byte`);
      }
      assert.ok(err instanceof ProtocolError, what);
      assert.equal(err.reasonCode, 0x95, what);
      assert.equal(err.connackVersion, connackVersion, what);
      assert.match(err.message, /CONNECT of 1048580 bytes exceeds maximum 65536/);
      assert.equal(parser.bufferedBytes, 0);
    }
    // In one chunk, as clients send it, the answer is the same.
    const whole = Buffer.from([...header, ...str('MQTT'), 5, ...Buffer.alloc(1000)]);
    assert.equal(expectError(0x95, whole, { maximumPacketSize: 65_536 }).connackVersion, 5);
  });

  test('a maximumPacketSize raised by the packet handler applies to the next packet of the same chunk', () => {
    const small = connect('MQTT', 5, 0x02, 0, str('c'));
    const publish = pkt(0x30, str('t'), 0, [...Buffer.alloc(500)]);
    const parser = new Parser({ maximumPacketSize: 256 });
    const seen: string[] = [];
    const err = parser.push(Buffer.concat([small, publish]), (p) => {
      seen.push(p.type);
      if (p.type === 'connect') parser.maximumPacketSize = 1024;
    });
    assert.equal(err, null);
    assert.deepEqual(seen, ['connect', 'publish']);
    assert.equal(parser.maximumPacketSize, 1024);
    // Without the raise, the same bytes stop at the PUBLISH.
    expectError(0x95, Buffer.concat([small, publish]), { maximumPacketSize: 256 });
  });
});

describe('UTF-8 strings', () => {
  const bad: [string, number[]][] = [
    ['a truncated sequence', [0x61, 0xe6, 0x97]],
    ['a bad continuation byte', [0xc3, 0x28]],
    ['an overlong encoding of "/"', [0xc0, 0xaf]],
    ['an encoded UTF-16 surrogate', [0xed, 0xa0, 0x80]],
    ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
  ];
  for (const [what, bytes] of bad) {
    test(`a topic with ${what} is malformed (0x81) [MQTT-1.5.4-1]`, () => {
      expectError(0x81, pkt(0x30, str(bytes)));
    });
  }

  test('a topic containing U+0000 is malformed (0x81) [MQTT-1.5.4-2]', () => {
    expectError(0x81, pkt(0x30, str([0x61, 0x00, 0x62])));
  });

  test('invalid UTF-8 in a client id, user name or user property is malformed (0x81) [MQTT-1.5.4-1]', () => {
    expectError(0x81, connect('MQTT', 4, 0x02, str([0xff])));
    expectError(0x81, connect('MQTT', 4, 0x82, str('c'), str([0xc3])));
    expectError(0x81, pkt(0xe0, 0x00, [11, 0x26, ...str('k'), ...str([0, 0x41])]), v(5));
  });

  test('a string longer than its packet is malformed (0x81) (section 1.5.4)', () => {
    expectError(0x81, pkt(0x30, u16(10), 0x61));
  });

  test('isValidMqttUtf8 / isValidMqttString', () => {
    const unicode = Buffer.from('ü/日本/😀');
    assert.equal(isValidMqttUtf8(unicode, 0, unicode.length), true);
    assert.equal(isValidMqttUtf8(unicode, 0, unicode.length - 1), false, 'a cut 4-byte sequence');
    assert.equal(isValidMqttUtf8(Buffer.from([0x61, 0xed, 0xa0, 0x80]), 0, 4), false);
    assert.equal(isValidMqttUtf8(Buffer.from([0x61, 0x00]), 0, 1), true, 'only the range is checked');
    assert.equal(isValidMqttString('a\u0000'), false);
    assert.equal(isValidMqttString('\ud800'), false);
    assert.equal(isValidMqttString('😀'), true);
  });
});

describe('PUBLISH and packet identifiers', () => {
  test('PUBLISH with QoS 3 is malformed (0x81) [MQTT-3.3.1-4]', () => {
    expectError(0x81, pkt(0x36, str('t'), u16(1)));
  });

  test('PUBLISH QoS 0 with DUP set is malformed (0x81) [MQTT-3.3.1-2]', () => {
    expectError(0x81, pkt(0x38, str('t')));
  });

  const zeroId: [string, Buffer][] = [
    ['PUBLISH QoS 1', pkt(0x32, str('t'), u16(0))],
    ['PUBACK', pkt(0x40, u16(0))],
    ['PUBREC', pkt(0x50, u16(0))],
    ['PUBREL', pkt(0x62, u16(0))],
    ['PUBCOMP', pkt(0x70, u16(0))],
    ['SUBSCRIBE', pkt(0x82, u16(0), str('a'), 0)],
    ['UNSUBSCRIBE', pkt(0xa2, u16(0), str('a'))],
  ];
  for (const [name, bytes] of zeroId) {
    test(`${name} with packet identifier 0 is malformed (0x81) [MQTT-2.2.1-3]`, () => {
      expectError(0x81, bytes);
    });
  }
});

describe('SUBSCRIBE and UNSUBSCRIBE', () => {
  for (const version of [4, 5] as const) {
    const props = version === 5 ? [0] : [];
    const id = version === 5 ? '[MQTT-3.8.3-2]' : '[MQTT-3.8.3-3]';
    test(`SUBSCRIBE with no topic filters is a protocol error (0x82) ${id} (v${version})`, () => {
      expectError(0x82, pkt(0x82, u16(1), props), v(version));
    });
    test(`UNSUBSCRIBE with no topic filters is a protocol error (0x82) [MQTT-3.10.3-2] (v${version})`, () => {
      expectError(0x82, pkt(0xa2, u16(1), props), v(version));
    });
  }

  test('v3.1.1 subscription options with reserved bits 2-7 set are malformed (0x81) [MQTT-3.8.3-4]', () => {
    for (const options of [0x04, 0x10, 0x80]) expectError(0x81, pkt(0x82, u16(1), str('a'), options), v(4));
  });

  test('v5 subscription options with reserved bits 6-7 set are malformed (0x81) [MQTT-3.8.3-5]', () => {
    for (const options of [0x40, 0x80]) expectError(0x81, pkt(0x82, u16(1), 0, str('a'), options), v(5));
  });

  test('a requested QoS of 3 is malformed in v3.1.1 (0x81) [MQTT-3.8.3-4]', () => {
    expectError(0x81, pkt(0x82, u16(1), str('a'), 3), v(4));
  });

  test('a Maximum QoS of 3 is a protocol error in v5 (0x82) (section 3.8.3.1)', () => {
    expectError(0x82, pkt(0x82, u16(1), 0, str('a'), 3), v(5));
  });

  test('Retain Handling 3 is a protocol error (0x82) (section 3.8.3.1)', () => {
    expectError(0x82, pkt(0x82, u16(1), 0, str('a'), 0x30), v(5));
  });

  test('SUBACK with no return codes is a protocol error (0x82) (section 3.9.3)', () => {
    expectError(0x82, pkt(0x90, u16(1)), v(4));
  });

  test('a v3.1.1 SUBACK return code other than 0, 1, 2, 0x80 is malformed (0x81) [MQTT-3.9.3-2]', () => {
    expectError(0x81, pkt(0x90, u16(1), 3), v(4));
  });
});

describe('v5 properties', () => {
  const publish = (...props: number[]) => pkt(0x30, str('t'), varint(props.length), props);

  test('PUBLISH with Message Expiry Interval twice is a protocol error (0x82) (section 3.3.2.3.3)', () => {
    expectError(0x82, publish(0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 2), v(5));
  });

  test('SUBSCRIBE with two Subscription Identifiers is a protocol error (0x82) (section 3.8.2.1.2)', () => {
    expectError(0x82, pkt(0x82, u16(1), [4, 0x0b, 1, 0x0b, 2], str('a'), 0), v(5));
  });

  test('repeated User Properties and Subscription Identifiers in PUBLISH are allowed (sections 3.3.2.3.7-8)', () => {
    const [p] = expectPackets(
      publish(0x0b, 1, 0x0b, 2, 0x26, ...str('a'), ...str('1'), 0x26, ...str('a'), ...str('2')),
      v(5),
    );
    assert.deepEqual(p && 'properties' in p ? p.properties : undefined, {
      subscriptionIdentifiers: [1, 2],
      userProperties: [
        ['a', '1'],
        ['a', '2'],
      ],
    });
  });

  const notAllowed: [string, Buffer][] = [
    ['Session Expiry Interval in PUBLISH', publish(0x11, 0, 0, 0, 1)],
    ['unknown identifier 0x7f in PUBLISH', publish(0x7f, 0)],
    ['Topic Alias in PUBACK', pkt(0x40, u16(1), 0, [3, 0x23, 0, 1])],
    [
      'Will Delay Interval among CONNECT properties',
      connect('MQTT', 5, 0x02, [5, 0x18, 0, 0, 0, 1], str('c')),
    ],
    ['Reason String in a will', connect('MQTT', 5, 0x06, 0, str('c'), [2, 0x1f, 0, 0], str('w'), u16(0))],
  ];
  for (const [what, bytes] of notAllowed) {
    test(`${what} is malformed (0x81) [MQTT-2.2.2-2]`, () => {
      expectError(0x81, bytes, v(5));
    });
  }

  const outOfRange: [string, Buffer][] = [
    ['Receive Maximum 0 (section 3.1.2.11.3)', connect('MQTT', 5, 0x02, [3, 0x21, 0, 0], str('c'))],
    ['Maximum Packet Size 0 (section 3.1.2.11.4)', connect('MQTT', 5, 0x02, [5, 0x27, 0, 0, 0, 0], str('c'))],
    ['Payload Format Indicator 2 (section 3.3.2.3.2)', publish(0x01, 2)],
    ['Subscription Identifier 0 (section 3.8.2.1.2)', pkt(0x82, u16(1), [2, 0x0b, 0], str('a'), 0)],
    ['Maximum QoS 2 in CONNACK (section 3.2.2.3.4)', pkt(0x20, 0, 0, [2, 0x24, 2])],
    ['Request Problem Information 2 (section 3.1.2.11.7)', connect('MQTT', 5, 0x02, [2, 0x17, 2], str('c'))],
  ];
  for (const [what, bytes] of outOfRange) {
    test(`${what} is a protocol error (0x82)`, () => {
      expectError(0x82, bytes, v(5));
    });
  }

  test('a property length beyond the packet is malformed (0x81) (section 2.2.2.1)', () => {
    expectError(0x81, pkt(0x30, str('t'), 9, 0x01, 0), v(5));
  });

  test('a property value overrunning its block is malformed (0x81) (section 2.2.2.1)', () => {
    expectError(0x81, pkt(0x30, str('t'), 2, 0x02, 0, 0, 0, 0, 0x61), v(5));
  });

  test('a property length longer than 4 bytes is malformed (0x81) (section 1.5.5)', () => {
    expectError(0x81, pkt(0x30, str('t'), 0x80, 0x80, 0x80, 0x80, 0x01), v(5));
  });
});

describe('reason codes and lengths of acks', () => {
  const cases: [string, Buffer, ProtocolVersion][] = [
    ['a PUBACK reason code not in the PUBACK table (section 3.4.2.1)', pkt(0x40, u16(1), 0x01), 5],
    ['a PUBREL reason code not in the PUBREL table (section 3.6.2.1)', pkt(0x62, u16(1), 0x10), 5],
    ['a CONNACK reason code not in the CONNACK table (section 3.2.2.2)', pkt(0x20, 0, 0x01, 0), 5],
    ['a SUBACK reason code not in the SUBACK table (section 3.9.3)', pkt(0x90, u16(1), 0, 0x03), 5],
    ['an UNSUBACK reason code not in the UNSUBACK table (section 3.11.3)', pkt(0xb0, u16(1), 0, 0x01), 5],
    ['a DISCONNECT reason code not in the DISCONNECT table (section 3.14.2.1)', pkt(0xe0, 0x05), 5],
    ['an AUTH reason code not in the AUTH table (section 3.15.2.1)', pkt(0xf0, 0x01, 0), 5],
    ['an AUTH with a reason code but no Property Length (section 3.15.2.1)', pkt(0xf0, 0x18), 5],
    ['CONNACK with reserved acknowledge flags set [MQTT-3.2.2-1]', pkt(0x20, 0x02, 0), 4],
    ['a v3.1.1 CONNACK return code above 5 (section 3.2.2.3)', pkt(0x20, 0, 6), 4],
    ['a v3.1.1 PUBACK with a byte after its packet id (section 3.4)', pkt(0x40, u16(1), 0), 4],
    ['a v3.1.1 DISCONNECT with a body (section 3.14)', pkt(0xe0, 0), 4],
    ['a v3.1.1 UNSUBACK with a payload (section 3.11.3)', pkt(0xb0, u16(1), 0), 4],
    ['a PINGREQ with a body (section 3.12)', pkt(0xc0, 0), 5],
  ];
  for (const [what, bytes, version] of cases) {
    test(`${what} is malformed (0x81) (v${version})`, () => {
      expectError(0x81, bytes, v(version));
    });
  }
});

describe('CONNECT', () => {
  test('CONNECT with the reserved flag set is malformed (0x81) [MQTT-3.1.2-3]', () => {
    expectError(0x81, connect('MQTT', 4, 0x03, str('c')));
  });

  test('CONNECT with will QoS 3 is malformed (0x81) [MQTT-3.1.2-14]', () => {
    expectError(0x81, connect('MQTT', 4, 0x1e, str('c'), str('w'), u16(0)));
  });

  test('CONNECT with will QoS but no will flag is malformed (0x81) [MQTT-3.1.2-13]', () => {
    expectError(0x81, connect('MQTT', 4, 0x0a, str('c')));
  });

  test('CONNECT with will retain but no will flag is malformed (0x81) [MQTT-3.1.2-15]', () => {
    expectError(0x81, connect('MQTT', 4, 0x22, str('c')));
  });

  test('CONNECT with a password but no user name is malformed in 3.1 and 3.1.1 (0x81) [MQTT-3.1.2-22]', () => {
    expectError(0x81, connect('MQTT', 4, 0x42, str('c'), str('pw')));
    expectError(0x81, connect('MQIsdp', 3, 0x42, str('c'), str('pw')));
    const [p] = expectPackets(connect('MQTT', 5, 0x42, 0, str('c'), str('pw')));
    assert.deepEqual(
      p && p.type === 'connect' ? p.password : undefined,
      Buffer.from('pw'),
      'v5 allows it (section 3.1.2.9)',
    );
  });

  test('CONNECT with an unknown protocol name is malformed (0x81) [MQTT-3.1.2-1]', () => {
    expectError(0x81, connect('MQTX', 4, 0x02, str('c')));
    expectError(0x81, connect('mqtt', 4, 0x02, str('c')));
  });

  // A level the name does not carry is refused with 0x84 [MQTT-3.1.2-2]; the CONNACK that answers
  // it uses the v5 form only for levels above 5 (a newer client), else the v3 form.
  const levels: [string, number, 4 | 5][] = [
    ['MQTT', 6, 5],
    ['MQTT', 3, 4],
    ['MQTT', 2, 4],
    ['MQTT', 0x84, 5],
    ['MQIsdp', 4, 4],
    ['MQIsdp', 5, 4],
    ['MQIsdp', 6, 5],
  ];
  for (const [name, level, connackVersion] of levels) {
    test(`CONNECT "${name}" level ${level} is an unsupported protocol version (0x84, v${connackVersion} CONNACK) [MQTT-3.1.2-2]`, () => {
      assert.equal(expectError(0x84, connect(name, level, 0x02, str('c'))).connackVersion, connackVersion);
    });
  }

  test('bytes after the end of a CONNECT are malformed (0x81) (section 3.1.3)', () => {
    expectError(0x81, connect('MQTT', 4, 0x02, str('c'), 0));
    expectError(0x81, connect('MQTT', 5, 0x02, 0, str('c'), 0));
  });

  test('a CONNECT whose flags promise a field it lacks is malformed (0x81) (section 3.1.3)', () => {
    expectError(0x81, connect('MQTT', 4, 0x82, str('c')));
    expectError(0x81, connect('MQTT', 4, 0x06, str('c'), str('w')));
  });
});

describe('the parser after an error', () => {
  test('stays dead: every later push returns the same error and yields nothing', () => {
    const parser = new Parser();
    const err = parser.push(pkt(0x00), () => assert.fail('no packet'));
    assert.ok(err instanceof ProtocolError);
    assert.equal(
      parser.push(pkt(0xc0), () => assert.fail('dead parser yielded a packet')),
      err,
    );
    assert.equal(
      parser.push(Buffer.alloc(0), () => {}),
      err,
    );
    assert.equal(parser.bufferedBytes, 0);
  });

  test('packets before the bad one in the same chunk are still delivered', () => {
    const seen: Packet[] = [];
    const err = new Parser().push(Buffer.concat([pkt(0xc0), pkt(0xd0), pkt(0x36, str('t'), u16(1))]), (p) => {
      seen.push(p);
    });
    assert.equal(err?.reasonCode, 0x81);
    assert.deepEqual(seen, [{ type: 'pingreq' }, { type: 'pingresp' }]);
  });

  test('an error inside a packet split across chunks is found when the packet completes', () => {
    const bytes = pkt(0x30, str([0x61, 0x00]));
    const parser = new Parser();
    for (let i = 0; i < bytes.length - 1; i++)
      assert.equal(
        parser.push(bytes.subarray(i, i + 1), () => {}),
        null,
      );
    assert.equal(parser.push(bytes.subarray(-1), () => {})?.reasonCode, 0x81);
  });

  test("an exception thrown by the packet handler propagates unchanged and is not the parser's error", () => {
    const boom = new Error('handler failed');
    const parser = new Parser();
    assert.throws(
      () =>
        parser.push(pkt(0xc0), () => {
          throw boom;
        }),
      (e) => e === boom,
    );
    assert.equal(
      parser.push(pkt(0xc0), () => {}),
      null,
    );
  });
});

describe('topic.ts', () => {
  const names: [string, boolean][] = [
    ['a', true],
    ['a/b/c', true],
    ['/', true],
    ['a//b', true],
    ['$SYS/broker', true],
    ['ü/日本/😀', true],
    ['', false], // [MQTT-4.7.3-1]
    ['a/+', false], // [MQTT-3.3.2-2]
    ['a/#', false],
    ['a+b', false],
    ['#', false],
  ];
  test('isValidTopicName [MQTT-4.7.3-1] [MQTT-3.3.2-2]', () => {
    for (const [name, ok] of names) assert.equal(isValidTopicName(name), ok, JSON.stringify(name));
  });

  const filters: [string, boolean][] = [
    ['#', true],
    ['+', true],
    ['a/#', true],
    ['a/+/b', true],
    ['+/+', true],
    ['/', true],
    ['/+', true],
    ['$SYS/#', true],
    ['', false], // [MQTT-4.7.3-1]
    ['a#', false], // [MQTT-4.7.1-2]
    ['a/#/b', false],
    ['#/', false],
    ['##', false],
    ['a+', false], // [MQTT-4.7.1-3]
    ['a/b+/c', false],
    ['++', false],
  ];
  test('isValidTopicFilter [MQTT-4.7.1-2] [MQTT-4.7.1-3] [MQTT-4.7.3-1]', () => {
    for (const [filter, ok] of filters) assert.equal(isValidTopicFilter(filter), ok, JSON.stringify(filter));
  });

  const shared: [string, { shareName: string; filter: string } | undefined][] = [
    ['$share/g/a/b', { shareName: 'g', filter: 'a/b' }],
    ['$share/g/#', { shareName: 'g', filter: '#' }],
    ['$share/group-1/+/x', { shareName: 'group-1', filter: '+/x' }],
    ['$share/g//', { shareName: 'g', filter: '/' }],
    ['$share/g', undefined], // [MQTT-4.8.2-1]
    ['$share/g/', undefined],
    ['$share//a', undefined], // [MQTT-4.8.2-1] empty share name
    ['$share/g+/a', undefined], // [MQTT-4.8.2-2]
    ['$share/#/a', undefined],
    ['$share/g/a#', undefined],
    ['$SHARE/g/a', undefined],
    ['devices1/a/b', undefined], // not a shared filter at all, though its 8th character starts "1/a/b"
    ['a/b', undefined],
  ];
  test('parseSharedFilter and isSharedFilter [MQTT-4.8.2-1] [MQTT-4.8.2-2]', () => {
    for (const [filter, expected] of shared) {
      assert.deepEqual(parseSharedFilter(filter), expected, filter);
      if (expected !== undefined) assert.equal(isSharedFilter(filter), true, filter);
    }
    assert.equal(isSharedFilter('devices1/a/b'), false);
  });

  test('exceedsTopicLevels and exceedsFilterLevels count / + 1, a $share/{name}/ prefix not counted', () => {
    const cases: [string, number, boolean][] = [
      ['a', 1, false],
      ['/', 1, true], // two empty levels
      ['a/b/c', 3, false],
      ['a/b/c/', 3, true],
      ['///', 4, false],
      ['////', 4, true],
      ['abcdefgh', 2, false], // longer than the limit, one level: scanned, not refused
      ['/'.repeat(65_535), 65_536, false],
      ['/'.repeat(65_535), 65_535, true],
    ];
    for (const [topic, max, over] of cases) {
      assert.equal(exceedsTopicLevels(topic, max), over, `${JSON.stringify(topic.slice(0, 9))} / ${max}`);
      assert.equal(exceedsFilterLevels(topic, max), over);
    }
    assert.equal(exceedsFilterLevels('$share/g/a/b/#', 3), false);
    assert.equal(exceedsFilterLevels('$share/g/a/b/c/#', 3), true);
    assert.equal(exceedsTopicLevels('$share/g/a/b/#', 3), true, 'a topic name counts every level');
    assert.equal(exceedsFilterLevels('$share/g', 2), false, 'no filter: counted whole (and invalid anyway)');
  });
});
