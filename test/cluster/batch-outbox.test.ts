/**
 * The data plane's outgoing batches (src/cluster/batch-outbox.ts): one batch per subject and
 * turn, cut early at MAX_BATCH bytes so the receiving node starts on it while this one still
 * reads, never above the NATS server's max_payload, numbered in the order sent, every message
 * in its place.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { BatchOutbox, type ClusterStats, MAX_BATCH, zeroStats } from '../../src/cluster/batch-outbox.ts';
import { batchOrigin, decodeBatch } from '../../src/cluster/codec.ts';
import type { NatsLink } from '../../src/cluster/link.ts';
import { Message } from '../../src/router/index.ts';

/** An outbox on a link that records what it publishes (up, with a connection). */
function recordingOutbox(): { outbox: BatchOutbox; sent: [string, Buffer][]; stats: ClusterStats } {
  const sent: [string, Buffer][] = [];
  const connection = {
    publish: (subject: string, data: Uint8Array) => sent.push([subject, Buffer.from(data)]),
  };
  const link = { up: true, connection } as unknown as NatsLink;
  const stats = zeroStats();
  return { outbox: new BatchOutbox(7, link, stats, pino({ level: 'silent' })), sent, stats };
}

const message = (i: number, size = 64): Message =>
  new Message({ topic: 't/1', payload: Buffer.alloc(size, i % 251), qos: 0, retain: false });

test('a turn that appends more than MAX_BATCH bytes sends batches before it ends, in order, each message once', () => {
  const { outbox, sent, stats } = recordingOutbox();
  const count = Math.ceil((MAX_BATCH * 3) / 64);
  for (let i = 0; i < count; i++) outbox.add('s.t.1', message(i));
  assert.ok(sent.length >= 2, `sent ${sent.length} batches before the end of the turn`);
  outbox.flush();
  const payloads: number[] = [];
  let last = 0;
  for (const [subject, data] of sent) {
    assert.equal(subject, 's.t.1');
    assert.ok(data.length < MAX_BATCH + 200, `a batch of ${data.length} bytes`);
    const { sender, seq } = batchOrigin(data);
    assert.equal(sender, 7);
    assert.equal(seq, last + 1, 'numbered in the order sent');
    last = seq;
    decodeBatch(data, (m) => payloads.push(m.payload[0]!));
  }
  assert.deepEqual(
    payloads,
    Array.from({ length: count }, (_, i) => i % 251),
  );
  assert.equal(stats.sent, count);
  assert.equal(stats.batchesSent, sent.length);
});

test('no batch outgrows max_payload: a message that does not fit starts the next; one too large alone is dropped', () => {
  const { outbox, sent, stats } = recordingOutbox();
  outbox.maxPayload = 1000;
  outbox.add('s', message(1, 600));
  outbox.add('s', message(2, 600)); // does not fit beside the first
  outbox.add('s', message(3, 5000)); // larger than max_payload on its own
  outbox.flush();
  assert.ok(sent.every(([, data]) => data.length <= 1000));
  const payloads: number[] = [];
  for (const [, data] of sent) {
    const before = payloads.length;
    decodeBatch(data, (m) => payloads.push(m.payload[0]!));
    assert.ok(payloads.length > before, 'no empty batch is sent');
  }
  assert.deepEqual(payloads, [1, 2]);
  assert.equal(stats.dropped, 1);
});
