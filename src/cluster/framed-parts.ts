/**
 * Control-plane payloads that may be larger than the NATS server's max_payload (a session
 * handed over, a session's tail: session-handover.ts, session-tail.ts) cross in parts, each
 * framed `u16 node-name length · node name · u32 part · u32 parts · bytes`. `parts` 0 is an
 * empty answer ("none").
 *
 * Invariants: one sender publishes the parts of one payload one after the other on its one
 * NATS connection, so a receiver gets them in order and never interleaved with another payload
 * of the same sender: `FrameJoiner` keeps one payload in progress per sending node.
 */
import type { NatsConnection } from '@nats-io/transport-node';

export interface Frame {
  readonly node: string;
  readonly part: number;
  readonly parts: number;
  readonly bytes: Buffer;
}

export function frame(node: string, part: number, parts: number, bytes: Buffer): Buffer {
  const name = Buffer.from(node);
  const out = Buffer.allocUnsafe(2 + name.length + 8 + bytes.length);
  out.writeUInt16BE(name.length, 0);
  name.copy(out, 2);
  out.writeUInt32BE(part, 2 + name.length);
  out.writeUInt32BE(parts, 6 + name.length);
  bytes.copy(out, 10 + name.length);
  return out;
}

/** A frame's fields (its bytes copied out), or undefined for bytes that are not one. */
export function readFrame(data: Uint8Array): Frame | undefined {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buf.length < 10) return undefined;
  const n = buf.readUInt16BE(0);
  if (buf.length < 10 + n) return undefined;
  const part = buf.readUInt32BE(2 + n);
  const parts = buf.readUInt32BE(6 + n);
  if (parts > 0 && part >= parts) return undefined;
  return { node: buf.toString('utf8', 2, 2 + n), part, parts, bytes: Buffer.from(buf.subarray(10 + n)) };
}

/** Publishes `bytes` to `subject` in parts that fit under `maxPayload` (throws as nats.js does). */
export function publishInParts(
  nc: NatsConnection,
  subject: string,
  node: string,
  bytes: Buffer,
  maxPayload: number,
): void {
  const parts = splitParts(bytes, maxPayload);
  for (const [i, part] of parts.entries()) nc.publish(subject, frame(node, i, parts.length, part));
}

/** `bytes` in views of at most max_payload less 1 KB for headers and framing (one, when empty). */
export function splitParts(bytes: Buffer, maxPayload: number): Buffer[] {
  const size = Math.max(1024, maxPayload - 1024);
  const count = Math.max(1, Math.ceil(bytes.length / size));
  return Array.from({ length: count }, (_, i) => bytes.subarray(i * size, (i + 1) * size));
}

/** Joins the parts of each sender's payload (see the header). */
export class FrameJoiner {
  readonly #parts = new Map<string, { got: Buffer[]; count: number }>();

  /** The whole payload once `f` is its last part; undefined until then. */
  add(f: Frame): Buffer | undefined {
    if (f.parts === 0) return undefined;
    let entry = this.#parts.get(f.node);
    if (entry === undefined || f.part === 0) this.#parts.set(f.node, (entry = { got: [], count: 0 }));
    entry.got[f.part] = f.bytes;
    if (++entry.count < f.parts) return undefined;
    this.#parts.delete(f.node);
    return Buffer.concat(entry.got);
  }
}
