/**
 * The session journal's wire format (session-journal.ts), binary so that a queued message costs
 * its bytes and a few more, not JSON and base64:
 *
 *   u8 version (1) · u8 kind (0 records, 1 snapshot) · u16 epoch length · epoch (UTF-8) · records
 *
 * A record is `u8 type` then its fields: `state` and `sub` as length-prefixed JSON (u32;
 * buffer-json.ts; rare),
 * `unsub` a u16-prefixed filter, `out` a delivery (u48 seq · u8 state · u16 packet id · u8 flags
 * (bits 0-1 delivery QoS, bit 2 delivery retain, bit 3 subscription ids, bit 4 message retain,
 * bit 5 expires, bit 6 publisher client id) · u8 message QoS · [varint count · varint ids] ·
 * u16 topic length · topic · u48 received at · [u48 expires at] · [u16 length · client id] ·
 * varint properties length · v5 PUBLISH properties · u32 payload length · payload), `ost`
 * u48 seq · u8 state · u16 packet id, `dout` u48 seq, `in`/`din` u16 packet id, `del` nothing.
 *
 * A snapshot is the same records (the session's state, subscriptions, deliveries in order,
 * inbound ids) under kind 1: the reader starts afresh from it.
 */
import {
  decodeProperties,
  PacketTypeCode,
  propertiesLength,
  Reader,
  writeProperties,
  writeVarint,
} from '../protocol/index.ts';
import type { JournalOp, OutboundState, StoredOutbound, StoredSession } from '../store/index.ts';
import { fromBufferJson, toBufferJson } from './buffer-json.ts';

const VERSION = 1;
const TYPES = ['state', 'del', 'sub', 'unsub', 'out', 'ost', 'dout', 'in', 'din'] as const;
const STATES: readonly OutboundState[] = ['queued', 'sent', 'released'];

export interface JournalMessage {
  readonly epoch: string;
  readonly snapshot: boolean;
  readonly ops: JournalOp[];
}

/** The records of a session's state as a snapshot's. */
export function snapshotOps(session: StoredSession): JournalOp[] {
  const { subscriptions, outbound, inboundQos2, ...state } = session;
  return [
    { t: 'state', state },
    ...subscriptions.map((sub): JournalOp => ({ t: 'sub', sub })),
    ...outbound.map((entry): JournalOp => ({ t: 'out', entry })),
    ...inboundQos2.map((packetId): JournalOp => ({ t: 'in', packetId })),
  ];
}

class Writer {
  buf = Buffer.allocUnsafe(1024);
  pos = 0;

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }
  u16(v: number): void {
    this.ensure(2);
    this.pos = this.buf.writeUInt16BE(v, this.pos);
  }
  u48(v: number): void {
    this.ensure(6);
    this.pos = this.buf.writeUIntBE(v, this.pos, 6);
  }
  bytes(b: Buffer, prefix: 2 | 4): void {
    this.ensure(prefix + b.length);
    this.pos =
      prefix === 2 ? this.buf.writeUInt16BE(b.length, this.pos) : this.buf.writeUInt32BE(b.length, this.pos);
    this.pos += b.copy(this.buf, this.pos);
  }
  text(s: string): void {
    this.bytes(Buffer.from(s), 2);
  }
  json(v: unknown): void {
    this.bytes(toBufferJson(v), 4);
  }
}

export function encodeJournal(epoch: string, snapshot: boolean, ops: readonly JournalOp[]): Buffer {
  const w = new Writer();
  w.u8(VERSION);
  w.u8(snapshot ? 1 : 0);
  w.text(epoch);
  for (const op of ops) {
    w.u8(TYPES.indexOf(op.t));
    switch (op.t) {
      case 'state':
        w.json(op.state);
        break;
      case 'sub':
        w.json(op.sub);
        break;
      case 'unsub':
        w.text(op.filter);
        break;
      case 'out':
        writeOut(w, op.entry);
        break;
      case 'ost':
        w.u48(op.seq);
        w.u8(STATES.indexOf(op.state));
        w.u16(op.packetId);
        break;
      case 'dout':
        w.u48(op.seq);
        break;
      case 'in':
      case 'din':
        w.u16(op.packetId);
        break;
    }
  }
  return w.buf.subarray(0, w.pos);
}

function writeOut(w: Writer, e: StoredOutbound): void {
  const m = e.message;
  const ids = e.subscriptionIds;
  w.u48(e.seq);
  w.u8(STATES.indexOf(e.state));
  w.u16(e.packetId);
  w.u8(
    e.qos |
      (e.retain ? 4 : 0) |
      (ids !== undefined ? 8 : 0) |
      (m.retain ? 16 : 0) |
      (m.expiresAt !== undefined ? 32 : 0) |
      (m.senderId !== undefined ? 64 : 0),
  );
  w.u8(m.qos);
  if (ids !== undefined) {
    w.ensure(4 * (ids.length + 1));
    w.pos = writeVarint(w.buf, w.pos, ids.length);
    for (const id of ids) w.pos = writeVarint(w.buf, w.pos, id);
  }
  w.text(m.topic);
  w.u48(m.receivedAt);
  if (m.expiresAt !== undefined) w.u48(m.expiresAt);
  if (m.senderId !== undefined) w.text(m.senderId);
  const propsLength = m.properties === undefined ? 0 : propertiesLength(m.properties);
  w.ensure(4 + propsLength);
  w.pos = writeVarint(w.buf, w.pos, propsLength);
  w.pos = writeProperties(w.buf, w.pos, m.properties);
  w.bytes(m.payload, 4);
}

/** Reads a journal message; throws on bytes that are not one. */
export function decodeJournal(data: Uint8Array): JournalMessage {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const r = new Reader(buf, 0, buf.length);
  if (r.u8() !== VERSION) throw new Error('not a session journal message');
  const snapshot = r.u8() === 1;
  const epoch = text(r);
  const ops: JournalOp[] = [];
  while (r.pos < buf.length) {
    const type = TYPES[r.u8()];
    switch (type) {
      case 'state':
        ops.push({ t: 'state', state: json(r) as never });
        break;
      case 'del':
        ops.push({ t: 'del' });
        break;
      case 'sub':
        ops.push({ t: 'sub', sub: json(r) as never });
        break;
      case 'unsub':
        ops.push({ t: 'unsub', filter: text(r) });
        break;
      case 'out':
        ops.push({ t: 'out', entry: readOut(r) });
        break;
      case 'ost':
        ops.push({ t: 'ost', seq: u48(r), state: STATES[r.u8()]!, packetId: r.u16() });
        break;
      case 'dout':
        ops.push({ t: 'dout', seq: u48(r) });
        break;
      case 'in':
      case 'din':
        ops.push({ t: type, packetId: r.u16() });
        break;
      default:
        throw new Error('not a session journal record');
    }
  }
  return { epoch, snapshot, ops };
}

function readOut(r: Reader): StoredOutbound {
  const seq = u48(r);
  const state = STATES[r.u8()]!;
  const packetId = r.u16();
  const flags = r.u8();
  const messageQos = r.u8() as 0 | 1 | 2;
  let subscriptionIds: number[] | undefined;
  if ((flags & 8) !== 0) {
    const n = r.varint();
    subscriptionIds = [];
    for (let i = 0; i < n; i++) subscriptionIds.push(r.varint());
  }
  const topic = text(r);
  const receivedAt = u48(r);
  const expiresAt = (flags & 32) !== 0 ? u48(r) : undefined;
  const senderId = (flags & 64) !== 0 ? text(r) : undefined;
  const properties = decodeProperties(r, PacketTypeCode.publish);
  const payload = Buffer.from(bytes(r, r.u32()));
  return {
    seq,
    state,
    packetId,
    qos: (flags & 3) as 1 | 2,
    retain: (flags & 4) !== 0,
    subscriptionIds,
    message: {
      topic,
      payload,
      qos: messageQos,
      retain: (flags & 16) !== 0,
      properties,
      senderId,
      receivedAt,
      expiresAt,
    },
  };
}

function u48(r: Reader): number {
  const v = bytes(r, 6).readUIntBE(0, 6);
  return v;
}

function bytes(r: Reader, n: number): Buffer {
  if (r.pos + n > r.end) throw new Error('session journal message truncated');
  const b = r.buf.subarray(r.pos, r.pos + n);
  r.pos += n;
  return b;
}

function text(r: Reader): string {
  return bytes(r, r.u16()).toString('utf8');
}

function json(r: Reader): unknown {
  return fromBufferJson(bytes(r, r.u32()));
}
