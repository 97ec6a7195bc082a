/**
 * The format a batch and an answer take between the host and the sandbox's prelude
 * (prelude.ts reads and writes the other side).
 *
 * In: one JSON text `{ broker, rows, b }` plus, when the batch has binary payloads, one buffer.
 * A row is `[mid, topic, clientId, receivedAt, contentType, payloadFormatIndicator, payload,
 * jti, broker]`: arrays, because QuickJS parses them in about half the time of objects with
 * repeated keys (the prelude builds the message objects). `payload` is null for a binary payload,
 * whose bytes are in the buffer at the `[row index, offset, length]` triples of `b`; `jti` is
 * null when absent; the row's broker is 0 when it is the envelope's. The row layout mirrors
 * HookMessage: a field added there must be added here and in the prelude.
 *
 * Out: the prelude's JSON text `{ r, b? }` (r: what onPublish returned, array entries reduced to
 * mid/topic/payload/encoding) and the bytes that `b` points into; the host turns those into
 * base64 payloads with `encoding: 'base64'`, the shape readVerdict reads.
 */

import type { HookMessage } from '../contract/index.ts';
import { FunctionRuntimeError } from './errors.ts';

export function encodeBatch(batch: readonly HookMessage[]): {
  envelope: string;
  bytes: Uint8Array | undefined;
} {
  const broker = batch[0]?.broker ?? '';
  const layout: number[] = [];
  const binaries: Buffer[] = [];
  let total = 0;
  const rows = batch.map((message, index) => {
    let payload: string | null = message.payload;
    if (message.encoding === 'base64') {
      const bytes = Buffer.from(message.payload, 'base64');
      layout.push(index, total, bytes.length);
      binaries.push(bytes);
      total += bytes.length;
      payload = null;
    }
    return [
      message.mid,
      message.topic,
      message.clientId,
      message.receivedAt,
      message.contentType,
      message.payloadFormatIndicator,
      payload,
      message.jti ?? null,
      message.broker === broker ? 0 : message.broker,
    ];
  });
  const envelope = JSON.stringify({ broker, rows, b: layout });
  if (binaries.length === 0) return { envelope, bytes: undefined };
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const payload of binaries) {
    bytes.set(payload, offset);
    offset += payload.length;
  }
  return { envelope, bytes };
}

/** The function's return value as JSON values, byte payloads as base64 with `encoding`. */
export function decodeAnswer(answer: { json: string; bytes: Buffer | undefined }): unknown {
  let parsed: { r?: unknown; b?: unknown };
  try {
    parsed = JSON.parse(answer.json) as { r?: unknown; b?: unknown };
  } catch {
    throw new FunctionRuntimeError('onPublish returned a value that is not JSON', '');
  }
  const result = parsed.r;
  const layout = parsed.b;
  if (layout === undefined) return result;
  const bytes = answer.bytes;
  if (!Array.isArray(layout) || layout.length % 3 !== 0 || bytes === undefined || !Array.isArray(result)) {
    throw new FunctionRuntimeError('onPublish returned byte payloads the sandbox could not read', '');
  }
  for (let k = 0; k < layout.length; k += 3) {
    const [index, offset, length] = layout.slice(k, k + 3) as unknown[];
    const entry = result[index as number] as Record<string, unknown> | undefined;
    if (
      !Number.isSafeInteger(index) ||
      !Number.isSafeInteger(offset) ||
      !Number.isSafeInteger(length) ||
      (offset as number) < 0 ||
      (length as number) < 0 ||
      (offset as number) + (length as number) > bytes.length ||
      typeof entry !== 'object' ||
      entry === null
    ) {
      throw new FunctionRuntimeError('onPublish returned byte payloads the sandbox could not read', '');
    }
    entry.payload = bytes.toString('base64', offset as number, (offset as number) + (length as number));
    entry.encoding = 'base64';
  }
  return result;
}
