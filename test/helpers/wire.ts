/**
 * Literal-byte tools for conformance tests: a TCP client that records every byte the server
 * sends and hands it back frame by frame (split here by hand, not by src/protocol), builders
 * for the few byte sequences every test needs (length-prefixed strings, a fixed header over a
 * body, CONNECT), and the broker health check every bad-input test ends with.
 *
 * Assertions stay literal: a v5 DISCONNECT is checked as first byte 0xE0 and reason byte, a
 * v3 CONNACK as its exact four bytes, a v3 protocol violation as a close with no bytes at all.
 */
import assert from 'node:assert/strict';
import type { ProtocolVersion, PubackPacket } from '../../src/protocol/index.ts';
import { RawClient } from './raw-client.ts';

/** One control packet as received: its first byte and the bytes after the Remaining Length. */
export interface Frame {
  /** Packet type << 4 | flags. */
  first: number;
  body: Buffer;
}

/** `s` as an MQTT UTF-8 string: two-byte big-endian length, then the bytes. */
export function str(s: string): number[] {
  const b = Buffer.from(s, 'utf8');
  return [b.length >> 8, b.length & 0xff, ...b];
}

/** The Remaining Length as a Variable Byte Integer (section 1.5.5). */
export function varint(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

/** A whole packet: first byte, Remaining Length of `body`, body. */
export function packet(first: number, body: number[]): number[] {
  return [first, ...varint(body.length), ...body];
}

/** CONNECT, MQTT 5, Clean Start, no properties, no will, client id `id`. */
export function connectV5(id: string, keepalive = 60): number[] {
  return packet(0x10, [
    ...str('MQTT'), // protocol name
    0x05, // protocol level 5
    0x02, // connect flags: Clean Start
    keepalive >> 8,
    keepalive & 0xff, // keep alive, seconds
    0x00, // property length 0
    ...str(id), // client identifier
  ]);
}

/** CONNECT, MQTT 3.1.1, Clean Session, no will, client id `id`. */
export function connectV4(id: string, keepalive = 60): number[] {
  return packet(0x10, [
    ...str('MQTT'), // protocol name
    0x04, // protocol level 4
    0x02, // connect flags: Clean Session
    keepalive >> 8,
    keepalive & 0xff, // keep alive, seconds
    ...str(id), // client identifier
  ]);
}

/** PINGREQ, and the PINGRESP it must get [MQTT-3.12.4-1]. */
export const PINGREQ = [0xc0, 0x00];
export const PINGRESP = [0xd0, 0x00];

const hex = (b: Buffer | number[]): string => Buffer.from(b).toString('hex').replace(/(..)/g, '$1 ').trim();

/** A TCP client that keeps every received byte and reads it back as frames. */
export class Wire {
  readonly client: RawClient;
  #pending: Buffer = Buffer.alloc(0);
  #wake: (() => void) | undefined;

  constructor(client: RawClient) {
    this.client = client;
    const wake = (): void => {
      const w = this.#wake;
      this.#wake = undefined;
      w?.();
    };
    client.socket.on('data', (chunk: Buffer) => {
      this.#pending = Buffer.concat([this.#pending, chunk]);
      wake();
    });
    client.socket.on('end', wake);
    client.socket.on('close', wake);
  }

  static async tcp(port: number, version: ProtocolVersion = 5): Promise<Wire> {
    return new Wire(await RawClient.tcp(port, version));
  }

  /** Bytes received and not yet taken as frames. */
  get pending(): Buffer {
    return this.#pending;
  }

  send(bytes: number[] | Buffer): void {
    this.client.sendRaw(bytes);
  }

  /** The next whole packet from the server; fails if the connection closes first. */
  async frame(timeoutMs = 3000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = this.#take();
      if (f !== undefined) return f;
      if (this.client.isClosed)
        throw new Error(`closed before a whole packet; pending: ${hex(this.#pending)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no packet within ${timeoutMs} ms; pending: ${hex(this.#pending)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  #take(): Frame | undefined {
    const buf = this.#pending;
    let remaining = 0;
    let multiplier = 1;
    for (let i = 1; i <= 4 && i < buf.length; i++) {
      remaining += (buf[i]! & 0x7f) * multiplier;
      multiplier *= 128;
      if ((buf[i]! & 0x80) === 0) {
        const end = i + 1 + remaining;
        if (buf.length < end) return undefined;
        this.#pending = buf.subarray(end);
        return { first: buf[0]!, body: Buffer.from(buf.subarray(i + 1, end)) };
      }
    }
    return undefined;
  }

  /** Sends CONNECT bytes and checks the CONNACK is a success without Session Present. */
  async handshake(connect: number[]): Promise<Frame> {
    this.send(connect);
    const ack = await this.frame();
    assert.equal(ack.first, 0x20, `expected CONNACK, got ${hex([ack.first, ...ack.body])}`);
    assert.deepEqual([...ack.body.subarray(0, 2)], [0x00, 0x00], 'CONNACK: no session present, success');
    return ack;
  }

  /** v5: the server sends DISCONNECT with `reason`, nothing after it, and closes. */
  async expectDisconnect(reason: number, timeoutMs = 3000): Promise<void> {
    const d = await this.frame(timeoutMs);
    assert.equal(d.first, 0xe0, `expected DISCONNECT, got ${hex([d.first, ...d.body])}`);
    assert.equal(d.body[0], reason, `DISCONNECT reason 0x${d.body[0]?.toString(16)}`);
    await this.client.closed(timeoutMs);
    assert.equal(this.#pending.length, 0, `bytes after DISCONNECT: ${hex(this.#pending)}`);
  }

  /** The server closes the connection without sending a single byte more. */
  async expectSilentClose(timeoutMs = 3000): Promise<void> {
    await this.client.closed(timeoutMs);
    assert.equal(this.#pending.length, 0, `unexpected bytes before close: ${hex(this.#pending)}`);
  }

  /** The server answers PINGREQ with PINGRESP: the connection is still served. */
  async expectAlive(): Promise<void> {
    this.send(PINGREQ);
    const f = await this.frame();
    assert.deepEqual([f.first, ...f.body], [0xd0], 'PINGRESP');
  }

  destroy(): void {
    this.client.destroy();
  }
}

/** Byte width of each CONNACK property value (section 3.2.2.3); -1: string, -2: binary, -3: pair. */
const CONNACK_PROPERTY_WIDTH: Record<number, number> = {
  17: 4, // Session Expiry Interval
  18: -1, // Assigned Client Identifier
  19: 2, // Server Keep Alive
  21: -1, // Authentication Method
  22: -2, // Authentication Data
  26: -1, // Response Information
  28: -1, // Server Reference
  31: -1, // Reason String
  33: 2, // Receive Maximum
  34: 2, // Topic Alias Maximum
  36: 1, // Maximum QoS
  37: 1, // Retain Available
  38: -3, // User Property
  39: 4, // Maximum Packet Size
  40: 1, // Wildcard Subscription Available
  41: 1, // Subscription Identifier Available
  42: 1, // Shared Subscription Available
};

/** The raw value bytes of each property of a v5 CONNACK, by identifier. */
export function connackProperties(connack: Frame): Map<number, number[]> {
  const b = connack.body;
  let pos = 2;
  let length = 0;
  let multiplier = 1;
  for (;;) {
    const byte = b[pos++]!;
    length += (byte & 0x7f) * multiplier;
    multiplier *= 128;
    if ((byte & 0x80) === 0) break;
  }
  const end = pos + length;
  assert.equal(end, b.length, 'CONNACK property block fills the packet');
  const out = new Map<number, number[]>();
  while (pos < end) {
    const id = b[pos++]!;
    const width = CONNACK_PROPERTY_WIDTH[id];
    assert.ok(width !== undefined, `unknown CONNACK property 0x${id.toString(16)}`);
    let n = width;
    if (width === -1 || width === -2) n = 2 + b.readUInt16BE(pos);
    if (width === -3) n = 2 + b.readUInt16BE(pos) + 2 + b.readUInt16BE(pos + 2 + b.readUInt16BE(pos));
    assert.ok(!out.has(id) || id === 0x26, `CONNACK property 0x${id.toString(16)} twice`);
    out.set(id, [...b.subarray(pos, pos + n)]);
    pos += n;
  }
  return out;
}

/**
 * The next packet, which must be the acknowledgement `type`. (RawClient.expect narrows by
 * `type`, which the shared PUBACK/PUBREC/PUBREL/PUBCOMP shape does not allow.)
 */
export async function expectAck(
  c: RawClient,
  type: PubackPacket['type'],
  timeoutMs = 2000,
): Promise<PubackPacket> {
  const p = await c.next(timeoutMs);
  assert.equal(p.type, type, `expected ${type}, got ${JSON.stringify(p)}`);
  return p as PubackPacket;
}

let healthCounter = 0;

/**
 * A well-behaved MQTT 5 subscriber to `health/<n>` at QoS 1, connected over TCP before a
 * test's bad client so that `assertBrokerHealthy` shows the bad client hurt nobody else.
 */
export async function connectBystander(port: number): Promise<RawClient> {
  const n = ++healthCounter;
  const c = await RawClient.tcp(port, 5);
  await c.connect({ clientId: `bystander-${process.pid}-${n}`, keepalive: 0 });
  c.send({
    type: 'subscribe',
    packetId: 1,
    subscriptions: [
      { topicFilter: 'health/#', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 2 },
    ],
  });
  assert.deepEqual((await c.expect('suback')).reasonCodes, [1]);
  return c;
}

/**
 * A full QoS 1 round trip through the broker: a newly connected publisher's PUBLISH is
 * acknowledged (PUBACK) and reaches the bystander, which acknowledges it in turn.
 */
export async function assertBrokerHealthy(port: number, bystander: RawClient): Promise<void> {
  const n = ++healthCounter;
  const pub = await RawClient.tcp(port, 4);
  try {
    const ack = await pub.connect({ clientId: `health-pub-${process.pid}-${n}`, keepalive: 0 });
    assert.equal(ack.reasonCode, 0, 'a new client can still connect');
    const payload = Buffer.from(`alive ${n}`);
    pub.send({
      type: 'publish',
      topic: `health/${n}`,
      payload,
      qos: 1,
      retain: false,
      dup: false,
      packetId: 7,
    });
    assert.equal((await expectAck(pub, 'puback', 5000)).packetId, 7);
    const got = await bystander.expect('publish', 5000);
    assert.equal(got.topic, `health/${n}`);
    assert.deepEqual(got.payload, payload);
    assert.equal(got.qos, 1);
    bystander.send({ type: 'puback', packetId: got.packetId!, reasonCode: 0 });
    pub.send({ type: 'disconnect', reasonCode: 0 });
    await pub.closed();
  } finally {
    pub.destroy();
  }
}
