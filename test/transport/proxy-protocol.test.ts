/**
 * The PROXY protocol header parser at the byte level (HAProxy's proxy-protocol.txt): v1 text and
 * v2 binary headers as HAProxy and AWS NLB send them, LOCAL and UNKNOWN, TLVs skipped, headers
 * arriving in pieces, and garbage, truncation and out-of-spec fields refused. Then the stream
 * reader over it (readProxyHeader), fed a byte at a time.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { readProxyHeader } from '../../src/transport/proxy-header-reader.ts';
import {
  formatIPv6,
  MAX_HEADER_LENGTH,
  parseProxyHeader,
  V1_MAX_LENGTH,
  V2_SIGNATURE,
} from '../../src/transport/proxy-protocol.ts';
import { Rng } from '../helpers/rng.ts';

const CONNECT = Buffer.from([
  0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00,
]);
const text = (s: string): Buffer => Buffer.from(s, 'latin1');

/** A v2 header: version 2, `command`, `family` byte, then the address block and TLVs as given. */
function v2(command: number, family: number, ...body: Buffer[]): Buffer {
  const block = Buffer.concat(body);
  const fixed = Buffer.alloc(4);
  fixed[0] = 0x20 | command;
  fixed[1] = family;
  fixed.writeUInt16BE(block.length, 2);
  return Buffer.concat([V2_SIGNATURE, fixed, block]);
}

function inet4(src: string, dst: string, srcPort: number, dstPort: number): Buffer {
  const b = Buffer.alloc(12);
  Buffer.from(src.split('.').map(Number)).copy(b, 0);
  Buffer.from(dst.split('.').map(Number)).copy(b, 4);
  b.writeUInt16BE(srcPort, 8);
  b.writeUInt16BE(dstPort, 10);
  return b;
}

/** TLV: type, 2-byte length, value (AWS NLB sends 0xEA with the VPC endpoint id; HAProxy 0x04 NOOP, 0x20 SSL...). */
const tlv = (type: number, value: Buffer): Buffer =>
  Buffer.concat([Buffer.from([type, value.length >> 8, value.length & 0xff]), value]);

function assertInvalid(data: Buffer, reason?: RegExp): void {
  const result = parseProxyHeader(data);
  assert.equal(result.status, 'invalid', `expected invalid for ${JSON.stringify(data.toString('latin1'))}`);
  if (reason && result.status === 'invalid') assert.match(result.reason, reason);
}

/**
 * Every strict prefix of `header` is incomplete, asking for more bytes than it has but never for
 * more than the header (a reader waiting for `atLeast` would otherwise stall on a whole header).
 */
function assertIncompleteUntilWhole(header: Buffer): void {
  for (let n = 0; n < header.length; n++) {
    const result = parseProxyHeader(header.subarray(0, n));
    assert.equal(result.status, 'incomplete', `prefix of ${n} bytes`);
    if (result.status !== 'incomplete') continue;
    assert.ok(
      result.atLeast > n && result.atLeast <= header.length,
      `prefix of ${n}: atLeast ${result.atLeast}`,
    );
  }
}

describe('PROXY protocol v1 (text)', () => {
  it('TCP4: the source address and port are the client; the header length excludes the MQTT bytes after it', () => {
    const header = text('PROXY TCP4 192.0.2.10 198.51.100.2 56324 1883\r\n');
    assert.deepEqual(parseProxyHeader(Buffer.concat([header, CONNECT])), {
      status: 'ok',
      version: 1,
      length: header.length,
      source: { address: '192.0.2.10', port: 56324 },
      destination: { address: '198.51.100.2', port: 1883 },
    });
  });

  it('TCP6 with compressed addresses', () => {
    const header = text('PROXY TCP6 2001:db8::1 2001:db8::2 65535 8883\r\n');
    const result = parseProxyHeader(header);
    assert.equal(result.status, 'ok');
    assert.deepEqual(result.status === 'ok' && result.source, { address: '2001:db8::1', port: 65535 });
  });

  it('UNKNOWN, bare or with addresses, means: use the connection address', () => {
    for (const line of [
      'PROXY UNKNOWN\r\n',
      'PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n',
    ]) {
      assert.deepEqual(parseProxyHeader(text(line)), { status: 'ok', version: 1, length: line.length });
    }
  });

  it('the longest legal headers are accepted (UNKNOWN with full IPv6 addresses: 107 bytes)', () => {
    const a = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
    const unknown = text(`PROXY UNKNOWN ${a} ${a} 65535 65535\r\n`);
    assert.equal(unknown.length, V1_MAX_LENGTH);
    assert.equal(parseProxyHeader(unknown).status, 'ok');
    assert.equal(parseProxyHeader(text(`PROXY TCP6 ${a} ${a} 65535 65535\r\n`)).status, 'ok');
  });

  it('arriving byte by byte it stays incomplete until the CRLF', () => {
    assertIncompleteUntilWhole(text('PROXY TCP4 192.0.2.10 198.51.100.2 56324 1883\r\n'));
  });

  for (const [what, line, reason] of [
    ['lower-case keyword', 'proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n', /signature/],
    ['an unknown protocol', 'PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n', /unknown protocol/],
    ['an IPv6 address under TCP4', 'PROXY TCP4 ::1 ::1 1 2\r\n', /address/],
    ['an IPv4 address under TCP6', 'PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n', /address/],
    ['an octet above 255', 'PROXY TCP4 256.1.1.1 5.6.7.8 1 2\r\n', /address/],
    ['a port above 65535', 'PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n', /port/],
    ['a port with a leading zero', 'PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n', /port/],
    ['two spaces between fields', 'PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n', /6 space-separated/],
    ['a missing field', 'PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n', /6 space-separated/],
    ['an LF without CR', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n', /CRLF/],
    ['a CR not followed by LF', 'PROXY TCP4 1.2.3.4\rX', /CR not followed/],
    ['binary bytes in the line', 'PROXY TCP4 1.2.3.4\x00', /not text/],
  ] as const) {
    it(`refuses ${what}`, () => assertInvalid(text(line), reason));
  }

  it('refuses a line with no CRLF within 107 bytes, without waiting for more', () => {
    assertInvalid(text(`PROXY UNKNOWN ${'x'.repeat(200)}`), /no CRLF within 107/);
    assertInvalid(text(`PROXY UNKNOWN ${'x'.repeat(V1_MAX_LENGTH - 14)}`), /no CRLF within 107/);
  });
});

describe('PROXY protocol v2 (binary)', () => {
  it('PROXY over TCP/IPv4: the source is the client; TLVs (AWS NLB VPC endpoint, NOOP) are skipped', () => {
    const header = v2(
      1,
      0x11,
      inet4('203.0.113.7', '10.0.0.5', 40000, 8883),
      tlv(0xea, Buffer.from('\x01vpce-0123456789abcdef', 'latin1')),
      tlv(0x04, Buffer.alloc(3)),
    );
    assert.deepEqual(parseProxyHeader(Buffer.concat([header, CONNECT])), {
      status: 'ok',
      version: 2,
      length: header.length,
      source: { address: '203.0.113.7', port: 40000 },
      destination: { address: '10.0.0.5', port: 8883 },
    });
  });

  it('PROXY over TCP/IPv6', () => {
    const block = Buffer.alloc(36);
    Buffer.from('20010db8000000000000000000000001', 'hex').copy(block, 0);
    Buffer.from('00000000000000000000ffffc0000201', 'hex').copy(block, 16);
    block.writeUInt16BE(1234, 32);
    block.writeUInt16BE(1883, 34);
    const result = parseProxyHeader(v2(1, 0x21, block));
    assert.equal(result.status, 'ok');
    if (result.status !== 'ok') return;
    assert.deepEqual(result.source, { address: '2001:db8::1', port: 1234 });
    assert.deepEqual(result.destination, { address: '::ffff:c000:201', port: 1883 });
  });

  it('LOCAL (a health check from the proxy) uses the connection address, address block or not', () => {
    for (const header of [v2(0, 0x00), v2(0, 0x11, inet4('1.2.3.4', '5.6.7.8', 1, 2))])
      assert.deepEqual(parseProxyHeader(header), { status: 'ok', version: 2, length: header.length });
  });

  it('UNSPEC and AF_UNIX families use the connection address', () => {
    for (const header of [v2(1, 0x00), v2(1, 0x31, Buffer.alloc(216))])
      assert.deepEqual(parseProxyHeader(header), { status: 'ok', version: 2, length: header.length });
  });

  it('arriving byte by byte, or with a large TLV still in flight, it stays incomplete', () => {
    assertIncompleteUntilWhole(v2(1, 0x11, inet4('1.2.3.4', '5.6.7.8', 1, 2), tlv(0x04, Buffer.alloc(40))));
    const big = v2(1, 0x11, inet4('1.2.3.4', '5.6.7.8', 1, 2), tlv(0x04, Buffer.alloc(60_000)));
    assert.deepEqual(parseProxyHeader(big.subarray(0, 30_000)), {
      status: 'incomplete',
      atLeast: big.length,
    });
    assert.equal(parseProxyHeader(big).status, 'ok');
    assert.ok(big.length <= MAX_HEADER_LENGTH);
  });

  for (const [what, header, reason] of [
    [
      'version 1 in the version nibble',
      Buffer.concat([V2_SIGNATURE, Buffer.from([0x11, 0x11, 0, 12]), inet4('1.2.3.4', '5.6.7.8', 1, 2)]),
      /version/,
    ],
    ['an unknown command', v2(2, 0x11, inet4('1.2.3.4', '5.6.7.8', 1, 2)), /command/],
    ['an unknown family', v2(1, 0x41, Buffer.alloc(12)), /family/],
    ['UDP (DGRAM) on a stream listener', v2(1, 0x12, inet4('1.2.3.4', '5.6.7.8', 1, 2)), /DGRAM/],
    ['an IPv4 block shorter than 12 bytes', v2(1, 0x11, Buffer.alloc(8)), /shorter than 12/],
    ['an IPv6 block shorter than 36 bytes', v2(1, 0x21, Buffer.alloc(20)), /shorter than 36/],
  ] as const) {
    it(`refuses ${what}`, () => assertInvalid(header, reason));
  }

  it('refuses a wrong version as soon as byte 13 arrives', () => {
    assertInvalid(Buffer.concat([V2_SIGNATURE, Buffer.from([0x31])]), /version/);
  });
});

describe('PROXY protocol: not a header at all', () => {
  it('an MQTT CONNECT, an HTTP request, a TLS ClientHello are refused at the first byte', () => {
    assertInvalid(CONNECT, /signature/);
    assertInvalid(text('GET / HTTP/1.1\r\n\r\n'), /signature/);
    assertInvalid(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]), /signature/);
    assertInvalid(Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x01]), /signature/);
    assertInvalid(text('PROXZ'), /signature/);
  });

  it('nothing yet, or a prefix of either signature, is incomplete', () => {
    for (const bytes of [Buffer.alloc(0), text('P'), text('PROX'), V2_SIGNATURE.subarray(0, 7)])
      assert.deepEqual(parseProxyHeader(bytes), { status: 'incomplete', atLeast: bytes.length + 1 });
  });

  it('random bytes never throw, never claim more bytes than they hold, never ask past the largest header', () => {
    const rng = new Rng(0x9e3779b9);
    const prefixes = [
      Buffer.alloc(0),
      text('PROXY '),
      V2_SIGNATURE,
      Buffer.concat([V2_SIGNATURE, Buffer.from([0x21])]),
    ];
    for (let i = 0; i < 5000; i++) {
      const noise = rng.bytes(rng.int(120));
      const data = Buffer.concat([prefixes[i % prefixes.length]!, noise]);
      const result = parseProxyHeader(data);
      if (result.status === 'ok') assert.ok(result.length <= data.length);
      if (result.status === 'incomplete')
        assert.ok(result.atLeast > data.length && result.atLeast <= MAX_HEADER_LENGTH);
    }
  });
});

describe('readProxyHeader over a stream', () => {
  /** Feeds `bytes` to a fresh stream one byte per write; resolves with the header's endpoint and what followed it. */
  async function readByteByByte(bytes: Buffer): Promise<{ source: unknown; rest: string }> {
    const stream = new PassThrough();
    const header = readProxyHeader(stream, 60_000);
    for (let i = 0; i < bytes.length; i++) stream.write(bytes.subarray(i, i + 1));
    stream.end();
    const source = await header;
    const rest: Buffer[] = [];
    for await (const chunk of stream) rest.push(chunk as Buffer);
    return { source, rest: Buffer.concat(rest).toString('latin1') };
  }

  it('the largest v2 header, a byte per chunk, is read whole and the client bytes after it are handed back', async () => {
    const padding = MAX_HEADER_LENGTH - 16 - 12 - 3;
    const header = v2(
      1,
      0x11,
      inet4('192.0.2.33', '198.51.100.1', 40000, 1883),
      tlv(0x04, Buffer.alloc(padding)),
    );
    assert.equal(header.length, MAX_HEADER_LENGTH);
    assert.deepEqual(await readByteByByte(Buffer.concat([header, text('client bytes')])), {
      source: { address: '192.0.2.33', port: 40000 },
      rest: 'client bytes',
    });
  });

  it('a v1 header a byte per chunk, then the client bytes', async () => {
    assert.deepEqual(await readByteByByte(text('PROXY TCP4 192.0.2.10 198.51.100.2 56324 1883\r\nMQTT')), {
      source: { address: '192.0.2.10', port: 56324 },
      rest: 'MQTT',
    });
  });
});

describe('formatIPv6 (RFC 5952 text)', () => {
  for (const [hex, expected] of [
    ['00000000000000000000000000000001', '::1'],
    ['00000000000000000000000000000000', '::'],
    ['20010db8000000000000000000000001', '2001:db8::1'],
    ['00010000000000010000000000000001', '1:0:0:1::1'],
    ['00010000000000020000000000030004', '1::2:0:0:3:4'],
    ['20010db8000100020003000400050006', '2001:db8:1:2:3:4:5:6'],
    ['20010db8000000010001000100010001', '2001:db8:0:1:1:1:1:1'],
  ] as const) {
    it(`${hex} → ${expected}`, () => assert.equal(formatIPv6(Buffer.from(hex, 'hex')), expected));
  }
});
