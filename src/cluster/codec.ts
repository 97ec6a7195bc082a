/**
 * The data plane's wire format: one NATS message carries a batch of MQTT messages to one topic
 * (the subject is the topic's, subjects.ts), in a compact binary form of our own (no JSON):
 *
 *   u8 version (2) · u32 sender · u48 sequence · u16 topic length · u48 base serial ·
 *   topic (UTF-8), then, per message, to the end:
 *   u8 flags (bits 0-1 QoS, bit 2 retain, bit 3 expires) · varint serial (0: none, else the
 *   message's serial minus the base plus one) · u48 received at (epoch ms) ·
 *   [u48 expires at (epoch ms), when bit 3] · varint property length · the v5 PUBLISH
 *   properties (protocol/properties.ts, so user properties, correlation data, content type,
 *   payload format and response topic cross as the client sent them) · u32 payload length ·
 *   payload
 *
 * A message's serial counts the messages its node sent (BrokerLink stamps it): with the
 * sender it is the message's identity on every node (Message.origin and .serial), by which a
 * session moving between nodes keeps one of the two copies it may get (session-handover.ts).
 *
 * The sender is a random number each node draws at start and the sequence counts its batches,
 * all subjects together. NATS delivers a message once per matching subscription, and a node's
 * subscriptions overlap (`a/+` and `a/#` both match `a/b`): the copies of one batch arrive one
 * after the other, and since one sender's batches arrive in the order sent, a batch whose
 * sequence is not above the last one seen from its sender is a copy (`origin`, cluster.ts).
 *
 * Expiry crosses as an instant, not an interval, so the time spent in transit counts against
 * it (the nodes' clocks are assumed in step, as NTP keeps them). The publisher's client id does
 * not cross: No Local is decided on the publisher's node, where its subscriptions are.
 *
 * `BatchWriter` appends into one growing buffer (no allocation per message but the growth);
 * `decodeBatch` makes each message's payload a view of the received bytes (no copy: a message
 * kept beyond the turn is detached, as one read from a client's socket).
 */

import type { QoS } from '../protocol/index.ts';
import {
  decodeProperties,
  PacketTypeCode,
  propertiesLength,
  Reader,
  writeProperties,
  writeVarint,
} from '../protocol/index.ts';
import { Message } from '../router/index.ts';

const VERSION = 2;
/** Bytes before the topic: version, sender, sequence, topic length, base serial. */
const HEADER = 1 + 4 + 6 + 2 + 6;
const BASE = 13;
/** The largest serial offset a message carries (beyond it, none: the message is its own). */
const MAX_OFFSET = 268_435_454;
const EXPIRES = 0x08;
const RETAIN = 0x04;

/** The MQTT messages to one topic waiting for the end of this event-loop turn. */
export class BatchWriter {
  #buf: Buffer;
  #pos: number;
  #base: number;
  count = 0;

  constructor(sender: number, topic: string, sizeHint: number) {
    const topicBytes = Buffer.byteLength(topic);
    this.#buf = Buffer.allocUnsafe(Math.max(256, HEADER + topicBytes + sizeHint * 2));
    this.#buf[0] = VERSION;
    this.#buf.writeUInt32BE(sender, 1);
    this.#buf.writeUInt16BE(topicBytes, 11);
    this.#buf.writeUIntBE(0, BASE, 6);
    this.#buf.write(topic, HEADER, 'utf8');
    this.#base = 0;
    this.#pos = HEADER + topicBytes;
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#pos;
  }

  append(m: Message): void {
    const propsLength = m.properties === undefined ? 0 : propertiesLength(m.properties);
    const expires = m.expiresAt !== undefined;
    const need = 1 + 4 + 6 + (expires ? 6 : 0) + 4 + propsLength + 4 + m.payload.length;
    this.#ensure(need);
    const buf = this.#buf;
    let pos = this.#pos;
    if (this.count === 0 && m.serial > 0) buf.writeUIntBE((this.#base = m.serial), BASE, 6);
    buf[pos++] = m.qos | (m.retain ? RETAIN : 0) | (expires ? EXPIRES : 0);
    const offset = m.serial === 0 ? -1 : m.serial - this.#base;
    pos = writeVarint(buf, pos, offset < 0 || offset > MAX_OFFSET ? 0 : offset + 1);
    buf.writeUIntBE(m.receivedAt, pos, 6);
    pos += 6;
    if (expires) {
      buf.writeUIntBE(m.expiresAt!, pos, 6);
      pos += 6;
    }
    pos = writeVarint(buf, pos, propsLength);
    pos = writeProperties(buf, pos, m.properties);
    buf.writeUInt32BE(m.payload.length, pos);
    pos += 4;
    pos += m.payload.copy(buf, pos);
    this.#pos = pos;
    this.count++;
  }

  /** Forgets what was appended after the batch had `length` bytes and `count` messages. */
  rewind(length: number, count: number): void {
    this.#pos = length;
    this.count = count;
  }

  /** The batch as sent, numbered `seq` (a view of the writer's buffer). */
  bytes(seq: number): Buffer {
    this.#buf.writeUIntBE(seq, 5, 6);
    return this.#buf.subarray(0, this.#pos);
  }

  #ensure(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#pos + n));
    this.#buf.copy(grown, 0, 0, this.#pos);
    this.#buf = grown;
  }
}

/** Who sent a batch and its number; throws on bytes that are not a batch of ours. */
export function batchOrigin(data: Uint8Array): { sender: number; seq: number } {
  if (data.length < HEADER || data[0] !== VERSION)
    throw new Error(`not a cluster batch (version ${data[0]})`);
  const view = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return { sender: view.readUInt32BE(1), seq: view.readUIntBE(5, 6) };
}

/**
 * Calls `each` with every message of a received batch, in the order they were appended.
 * Throws on a batch that is not ours (a wrong version or a truncated message).
 */
export function decodeBatch(data: Uint8Array, each: (message: Message) => void): void {
  // No copy: the payloads are views of the received bytes (a NATS message's data, a view of the
  // socket chunk nats.js read, which it never reuses), like a PUBLISH's of its receive buffer;
  // a message kept beyond this turn is detached (Message.detach copies it out).
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buf.length < HEADER || buf[0] !== VERSION) throw new Error(`not a cluster batch (version ${buf[0]})`);
  const topicEnd = HEADER + buf.readUInt16BE(11);
  if (topicEnd > buf.length) throw new Error('cluster batch truncated');
  const topic = buf.toString('utf8', HEADER, topicEnd);
  const sender = buf.readUInt32BE(1);
  const base = buf.readUIntBE(BASE, 6);
  const r = new Reader(buf, topicEnd, buf.length);
  while (r.pos < buf.length) {
    const flags = r.u8();
    const offset = r.varint();
    const receivedAt = readU48(r);
    const expiresAt = (flags & EXPIRES) !== 0 ? readU48(r) : undefined;
    const properties = decodeProperties(r, PacketTypeCode.publish);
    const payloadLength = r.u32();
    if (r.pos + payloadLength > buf.length) throw new Error('cluster batch truncated');
    const payload = buf.subarray(r.pos, r.pos + payloadLength);
    r.pos += payloadLength;
    const message = Message.fromNode(
      topic,
      payload,
      (flags & 3) as QoS,
      (flags & RETAIN) !== 0,
      properties,
      receivedAt,
      expiresAt,
    );
    if (offset > 0) {
      message.origin = sender;
      message.serial = base + offset - 1;
    }
    each(message);
  }
}

function readU48(r: Reader): number {
  if (r.pos + 6 > r.end) throw new Error('cluster batch truncated');
  const v = r.buf.readUIntBE(r.pos, 6);
  r.pos += 6;
  return v;
}
