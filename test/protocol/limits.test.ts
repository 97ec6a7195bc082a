/**
 * The decoder's per-packet bounds (ParserOptions.limits, docs/limits.md): each is checked while
 * the packet is decoded, and decoding stops at the bound. To show that nothing past the bound is
 * read, the bytes after it are made malformed: the error is still the bound's (0x95, or 0x97
 * for filters), not 0x81. A CONNECT is read to its end with the over-bound block skipped.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type ConnectPacket,
  encode,
  type Packet,
  type PacketLimits,
  Parser,
  type ProtocolError,
} from '../../src/protocol/index.ts';
import { Message } from '../../src/router/index.ts';
import { packet, str, varint } from '../helpers/wire.ts';

const LIMITS: PacketLimits = {
  maxUserProperties: 4,
  maxPropertiesBytes: 100,
  maxWillBytes: 64,
  maxFiltersPerSubscribe: 3,
};

/** Parses `bytes` as a v5 server does after CONNECT; the packets and the error, if any. */
function parse(
  bytes: number[] | Buffer,
  version: 4 | 5 = 5,
): { packets: Packet[]; error: ProtocolError | null } {
  const parser = new Parser({ limits: LIMITS, protocolVersion: version });
  const packets: Packet[] = [];
  const error = parser.push(Buffer.from(bytes), (p) => void packets.push(p));
  return { packets, error };
}

/** `n` user-property pairs, then (when `garbage`) a pair whose name is not UTF-8. */
function pairs(n: number, garbage = false): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(0x26, ...str('k'), ...str('v'));
  if (garbage) out.push(0x26, 0x00, 0x02, 0xff, 0xfe, ...str('v'));
  return out;
}
const block = (props: number[]): number[] => [...varint(props.length), ...props];

describe('--max-user-properties: counted while decoding, refused at the first pair past it', () => {
  test('a PUBLISH of 4 pairs is decoded; of 5 (the fifth malformed) is 0x95, not 0x81', () => {
    const ok = parse(packet(0x30, [...str('t'), ...block(pairs(4)), 0x78]));
    assert.equal(ok.error, null);
    assert.equal(
      (ok.packets[0] as { properties: { userProperties: unknown[] } }).properties.userProperties.length,
      4,
    );
    const over = parse(packet(0x30, [...str('t'), ...block(pairs(4, true)), 0x78]));
    assert.deepEqual([over.error?.reasonCode, over.error?.limit], [0x95, 'max_user_properties']);
    assert.equal(over.packets.length, 0);
  });

  // Every packet type that carries properties, from a client: [first byte, body before the block, after].
  const cases: [string, number, number[], number[]][] = [
    ['PUBACK', 0x40, [0, 1, 0x00], []],
    ['PUBREC', 0x50, [0, 1, 0x00], []],
    ['PUBREL', 0x62, [0, 1, 0x00], []],
    ['PUBCOMP', 0x70, [0, 1, 0x00], []],
    ['SUBSCRIBE', 0x82, [0, 1], [...str('a'), 0x00]],
    ['UNSUBSCRIBE', 0xa2, [0, 1], [...str('a')]],
    ['DISCONNECT', 0xe0, [0x00], []],
    ['AUTH', 0xf0, [0x18], []],
  ];
  for (const [name, first, head, tail] of cases) {
    test(`${name} over it is 0x95`, () => {
      const { error } = parse(packet(first, [...head, ...block(pairs(4, true)), ...tail]));
      assert.deepEqual([error?.reasonCode, error?.limit], [0x95, 'max_user_properties']);
    });
  }
});

describe('--max-properties-bytes: refused from the block length alone', () => {
  test('a PUBLISH block of 101 bytes of garbage is 0x95, not 0x81', () => {
    const garbage = Array.from({ length: 101 }, () => 0xff);
    const { error } = parse(packet(0x30, [...str('t'), ...block(garbage), 0x78]));
    assert.deepEqual([error?.reasonCode, error?.limit], [0x95, 'max_properties_bytes']);
  });

  test('a block of exactly 100 bytes is decoded', () => {
    const contentType = [0x03, ...str('c'.repeat(97))]; // 1 + 2 + 97
    const { error } = parse(packet(0x30, [...str('t'), ...block(contentType), 0x78]));
    assert.equal(error, null);
  });
});

describe('a CONNECT over a bound is decoded to its end, the bound kept for the server to refuse', () => {
  const connect = (props: number[], will?: number[]): number[] =>
    packet(0x10, [
      ...str('MQTT'),
      5,
      will === undefined ? 0x02 : 0x06,
      0,
      60,
      ...block(props),
      ...str('id-1'),
      ...(will ?? []),
    ]);

  test('CONNECT properties over the count: skipped unbuilt (their garbage never read), client id read', () => {
    const { packets, error } = parse(connect(pairs(4, true)), 4);
    assert.equal(error, null);
    const c = packets[0] as ConnectPacket;
    assert.equal(c.clientId, 'id-1');
    assert.equal(c.properties, undefined);
    assert.deepEqual([c.overLimit?.reasonCode, c.overLimit?.limit], [0x95, 'max_user_properties']);
  });

  test('a will over --max-will-bytes (topic + payload + properties, as encoded)', () => {
    const will = (payload: number): number[] => [
      ...block([]),
      ...str('w/t'),
      0,
      payload,
      ...Array(payload).fill(0x61),
    ];
    // 1 (empty block) + 5 (topic) + 2 + 56 = 64 bytes: at the bound.
    const at = parse(connect([], will(56)), 4).packets[0] as ConnectPacket;
    assert.equal(at.overLimit, undefined);
    assert.equal(at.will?.payload.length, 56);
    const over = parse(connect([], will(57)), 4).packets[0] as ConnectPacket;
    assert.deepEqual([over.overLimit?.reasonCode, over.overLimit?.limit], [0x95, 'max_will_bytes']);
  });
});

describe('--max-filters-per-subscribe: refused at the first filter past it', () => {
  test('3 filters are decoded; a fourth (malformed) is 0x97 Quota exceeded, in v5 and v3.1.1', () => {
    const filters = [...str('a'), 0, ...str('b'), 0, ...str('c'), 0];
    for (const version of [5, 4] as const) {
      const props = version === 5 ? [0x00] : [];
      assert.equal(parse(packet(0x82, [0, 1, ...props, ...filters]), version).error, null);
      const { error } = parse(packet(0x82, [0, 1, ...props, ...filters, 0x00, 0x02, 0xff, 0xfe, 0]), version);
      assert.deepEqual([error?.reasonCode, error?.limit], [0x97, 'max_filters_per_subscribe']);
    }
  });
});

describe('Message.heldBytes: what the retained and queued byte caps count', () => {
  test('topic (UTF-8 bytes), properties as encoded, and payload', () => {
    const m = new Message({
      topic: 'é/t',
      payload: Buffer.alloc(10),
      qos: 1,
      retain: false,
      properties: { contentType: 'text', userProperties: [['a', 'bc']] },
    });
    assert.equal(m.heldBytes, 4 + (3 + 4) + (5 + 1 + 2) + 10);
    // The same as the PUBLISH it encodes to, less the fixed header and the property length.
    const bytes = encode(
      {
        type: 'publish',
        topic: m.topic,
        payload: m.payload,
        qos: 0,
        retain: false,
        dup: false,
        properties: m.properties,
      },
      5,
    );
    assert.equal(m.heldBytes, bytes.length - 2 - 2 - 1);
  });
});
