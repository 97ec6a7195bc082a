/**
 * The SQL side of the SQLite message store: the operations a batch holds, how each becomes
 * rows (`applyOp`), and how a broker's state is read back (`loadBrokerState`), with the row
 * codecs of messages, properties and wills. The group-commit writer
 * (sqlite-message-store.ts) decides when these run; this file decides what they write.
 *
 * Invariants:
 * - The schema is the one `MIGRATIONS` (database.ts) creates; every statement goes through the
 *   caller's prepared-statement cache (`Statements`), never prepared per call.
 * - Every row read back decodes to exactly what was written: payloads as BLOBs (read back as
 *   Buffers over the same memory), properties as JSON with Correlation Data in base64, wills
 *   as one JSON text, outbound states as small integers (STATE_CODE).
 * - Deleting a session or a broker deletes its rows in every table that names it.
 */
import type { SQLInputValue, StatementSync } from 'node:sqlite';
import type { Properties, QoS } from '../protocol/index.ts';
import type {
  BrokerState,
  OutboundState,
  StoredMessage,
  StoredOutbound,
  StoredSession,
  StoredSessionState,
  StoredSubscription,
  StoredWill,
} from './message-store.ts';

/** The store's prepared statement for `sql` (prepared once, then reused). */
export type Statements = (sql: string) => StatementSync;

const STATE_CODE: Record<OutboundState, number> = { queued: 0, sent: 1, released: 2 };
const STATE_NAME: OutboundState[] = ['queued', 'sent', 'released'];

/** One write of a batch, applied at commit. */
export type Op =
  | { k: 'retained'; broker: string; topic: string; message: StoredMessage | undefined }
  | { k: 'session'; broker: string; state: StoredSessionState }
  | { k: 'deleteSession'; broker: string; client: string }
  | { k: 'subscription'; broker: string; client: string; sub: StoredSubscription }
  | { k: 'deleteSubscription'; broker: string; client: string; filter: string }
  | OutboundOp
  | {
      k: 'outboundState';
      broker: string;
      client: string;
      seq: number;
      state: OutboundState;
      packetId: number;
    }
  | { k: 'deleteOutbound'; broker: string; client: string; seq: number }
  | { k: 'inbound'; broker: string; client: string; packetId: number }
  | { k: 'deleteInbound'; broker: string; client: string; packetId: number }
  | { k: 'deleteBroker'; broker: string };

export interface OutboundOp {
  k: 'outbound';
  broker: string;
  client: string;
  entry: StoredOutbound;
  state: OutboundState;
  packetId: number;
  /** Acknowledged within the batch it was queued in: nothing to write. */
  cancelled: boolean;
}

type Row = Record<string, unknown>;

/** The highest outbound sequence number stored (0 when none): new ones continue after it. */
export function lastOutboundSeq(q: Statements): number {
  const max = q('SELECT max(seq) AS m FROM outbound').get() as Row;
  return Number(max.m ?? 0);
}

/**
 * Deletes acknowledged outbound rows: each run of consecutive sequence numbers (acknowledgements
 * mostly come in the order messages were queued) as one range, the rest in chunked statements
 * (one per 10 000 rows). Sorts `seqs`.
 */
export function deleteOutboundRows(q: Statements, seqs: number[]): void {
  seqs.sort((a, b) => a - b);
  const scattered: number[] = [];
  for (let i = 0; i < seqs.length; ) {
    let end = i;
    while (end + 1 < seqs.length && seqs[end + 1] === seqs[end]! + 1) end++;
    // Every number from first to last is in the list, so the range deletes only these rows.
    if (end - i >= MIN_RANGE - 1)
      q('DELETE FROM outbound WHERE seq BETWEEN ? AND ?').run(seqs[i]!, seqs[end]!);
    else for (let k = i; k <= end; k++) scattered.push(seqs[k]!);
    i = end + 1;
  }
  const CHUNK = 10_000;
  for (let i = 0; i < scattered.length; i += CHUNK)
    q('DELETE FROM outbound WHERE seq IN (SELECT value FROM json_each(?))').run(
      JSON.stringify(scattered.slice(i, i + CHUNK)),
    );
}

/** Shortest run of consecutive sequence numbers deleted as a range. */
const MIN_RANGE = 4;

const OUTBOUND_COLUMNS = `seq, broker_id, client_id, state, packet_id, qos, retain, subscription_ids,
  topic, payload, message_qos, message_retain, properties, sender_id, received_at, expires_at`;
const OUTBOUND_ROW = `(${new Array(16).fill('?').join(', ')})`;
/** Rows per multi-row INSERT: one statement's fixed cost spread over them, 512 parameters. */
const OUTBOUND_ROWS_PER_INSERT = 32;

/**
 * Inserts the outbound rows of consecutive `outbound` ops (not cancelled), in multi-row
 * statements of up to OUTBOUND_ROWS_PER_INSERT rows (one prepared statement per row count):
 * one statement per row was most of the store's CPU in the persistent fan-in bench.
 */
export function insertOutboundRows(q: Statements, ops: readonly OutboundOp[]): void {
  const values: SQLInputValue[] = [];
  let rows = 0;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    if (op.cancelled) continue;
    const e = op.entry;
    const m = e.message;
    values.push(
      e.seq,
      op.broker,
      op.client,
      STATE_CODE[op.state],
      op.packetId,
      e.qos,
      e.retain ? 1 : 0,
      e.subscriptionIds === undefined ? null : e.subscriptionIds.join(','),
      m.topic,
      m.payload,
      m.qos,
      m.retain ? 1 : 0,
      encodeProperties(m.properties),
      m.senderId ?? null,
      m.receivedAt,
      m.expiresAt ?? null,
    );
    if (++rows === OUTBOUND_ROWS_PER_INSERT) {
      insertRows(q, rows, values);
      values.length = 0;
      rows = 0;
    }
  }
  if (rows > 0) insertRows(q, rows, values);
}

/** The INSERT of `n` outbound rows, by n (built once each). */
const INSERT_SQL: string[] = [];

function insertRows(q: Statements, rows: number, values: SQLInputValue[]): void {
  const sql = (INSERT_SQL[rows] ??=
    `INSERT OR REPLACE INTO outbound (${OUTBOUND_COLUMNS}) VALUES ${new Array(rows).fill(OUTBOUND_ROW).join(', ')}`);
  q(sql).run(...values);
}

/** Writes one operation of a committing batch (inside its transaction). */
export function applyOp(q: Statements, op: Op): void {
  switch (op.k) {
    case 'retained': {
      const m = op.message;
      if (m === undefined) {
        q('DELETE FROM retained WHERE broker_id = ? AND topic = ?').run(op.broker, op.topic);
        return;
      }
      q(
        `INSERT INTO retained (broker_id, topic, payload, qos, properties, sender_id, received_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (broker_id, topic) DO UPDATE SET payload = excluded.payload, qos = excluded.qos,
           properties = excluded.properties, sender_id = excluded.sender_id,
           received_at = excluded.received_at, expires_at = excluded.expires_at`,
      ).run(
        op.broker,
        m.topic,
        m.payload,
        m.qos,
        encodeProperties(m.properties),
        m.senderId ?? null,
        m.receivedAt,
        m.expiresAt ?? null,
      );
      return;
    }
    case 'session': {
      const s = op.state;
      q(
        `INSERT OR REPLACE INTO sessions (broker_id, client_id, expiry_interval, expires_at, will) VALUES (?, ?, ?, ?, ?)`,
      ).run(op.broker, s.clientId, s.expiryInterval, s.expiresAt ?? null, encodeWill(s.will));
      return;
    }
    case 'deleteSession':
      for (const table of ['sessions', 'subscriptions', 'outbound', 'inbound_qos2'])
        q(`DELETE FROM ${table} WHERE broker_id = ? AND client_id = ?`).run(op.broker, op.client);
      return;
    case 'subscription': {
      const s = op.sub;
      q(
        `INSERT OR REPLACE INTO subscriptions (broker_id, client_id, topic_filter, qos, no_local,
           retain_as_published, retain_handling, subscription_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        op.broker,
        op.client,
        s.topicFilter,
        s.qos,
        s.noLocal ? 1 : 0,
        s.retainAsPublished ? 1 : 0,
        s.retainHandling,
        s.subscriptionId ?? null,
      );
      return;
    }
    case 'deleteSubscription':
      q('DELETE FROM subscriptions WHERE broker_id = ? AND client_id = ? AND topic_filter = ?').run(
        op.broker,
        op.client,
        op.filter,
      );
      return;
    case 'outbound':
      insertOutboundRows(q, [op]);
      return;
    case 'outboundState':
      q('UPDATE outbound SET state = ?, packet_id = ? WHERE seq = ?').run(
        STATE_CODE[op.state],
        op.packetId,
        op.seq,
      );
      return;
    case 'deleteOutbound':
      q('DELETE FROM outbound WHERE seq = ?').run(op.seq);
      return;
    case 'inbound':
      q('INSERT OR IGNORE INTO inbound_qos2 (broker_id, client_id, packet_id) VALUES (?, ?, ?)').run(
        op.broker,
        op.client,
        op.packetId,
      );
      return;
    case 'deleteInbound':
      q('DELETE FROM inbound_qos2 WHERE broker_id = ? AND client_id = ? AND packet_id = ?').run(
        op.broker,
        op.client,
        op.packetId,
      );
      return;
    case 'deleteBroker':
      for (const table of ['retained', 'sessions', 'subscriptions', 'outbound', 'inbound_qos2'])
        q(`DELETE FROM ${table} WHERE broker_id = ?`).run(op.broker);
      return;
  }
}

/** Everything stored for one broker, read back at start-up (see MessageStore.load). */
export function loadBrokerState(q: Statements, brokerId: string): BrokerState {
  const retained: StoredMessage[] = [];
  for (const r of q(
    'SELECT topic, payload, qos, properties, sender_id, received_at, expires_at FROM retained WHERE broker_id = ? ORDER BY topic',
  ).iterate(brokerId) as Iterable<Row>) {
    retained.push(messageOf(r, true));
  }
  const sessions = new Map<string, StoredSession>();
  for (const r of q('SELECT * FROM sessions WHERE broker_id = ? ORDER BY client_id').iterate(
    brokerId,
  ) as Iterable<Row>) {
    const clientId = r.client_id as string;
    sessions.set(clientId, {
      clientId,
      expiryInterval: Number(r.expiry_interval),
      expiresAt: optionalNumber(r.expires_at),
      will: decodeWill(r.will as string | null),
      subscriptions: [],
      outbound: [],
      inboundQos2: [],
    });
  }
  for (const r of q(
    'SELECT * FROM subscriptions WHERE broker_id = ? ORDER BY client_id, topic_filter',
  ).iterate(brokerId) as Iterable<Row>) {
    sessions.get(r.client_id as string)?.subscriptions.push({
      topicFilter: r.topic_filter as string,
      qos: Number(r.qos) as QoS,
      noLocal: r.no_local === 1,
      retainAsPublished: r.retain_as_published === 1,
      retainHandling: Number(r.retain_handling) as 0 | 1 | 2,
      subscriptionId: optionalNumber(r.subscription_id),
    });
  }
  for (const r of q('SELECT * FROM outbound WHERE broker_id = ? ORDER BY seq').iterate(
    brokerId,
  ) as Iterable<Row>) {
    const ids = r.subscription_ids as string | null;
    sessions.get(r.client_id as string)?.outbound.push({
      seq: Number(r.seq),
      state: STATE_NAME[Number(r.state)]!,
      packetId: Number(r.packet_id),
      qos: Number(r.qos) as 1 | 2,
      retain: r.retain === 1,
      subscriptionIds: ids === null ? undefined : ids.split(',').map(Number),
      message: {
        ...messageOf(r, r.message_retain === 1),
        topic: r.topic as string,
        qos: Number(r.message_qos) as QoS,
      },
    });
  }
  for (const r of q(
    'SELECT client_id, packet_id FROM inbound_qos2 WHERE broker_id = ? ORDER BY client_id, packet_id',
  ).iterate(brokerId) as Iterable<Row>) {
    sessions.get(r.client_id as string)?.inboundQos2.push(Number(r.packet_id));
  }
  return { retained, sessions: [...sessions.values()] };
}

function optionalNumber(v: unknown): number | undefined {
  return v === null || v === undefined ? undefined : Number(v);
}

/** A BLOB column as a Buffer over the same memory (node:sqlite returns Uint8Array). */
function bufferOf(v: unknown): Buffer {
  const u = v as Uint8Array;
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

function messageOf(r: Row, retain: boolean): StoredMessage {
  return {
    topic: r.topic as string,
    payload: bufferOf(r.payload),
    qos: Number(r.qos) as QoS,
    retain,
    properties: decodeProperties(r.properties as string | null),
    senderId: (r.sender_id as string | null) ?? undefined,
    receivedAt: Number(r.received_at),
    expiresAt: optionalNumber(r.expires_at),
  };
}

/** Properties as JSON; Correlation Data (the one binary one a message carries) as base64. */
function encodeProperties(p: Properties | undefined): string | null {
  if (p === undefined) return null;
  if (p.correlationData === undefined) return JSON.stringify(p);
  return JSON.stringify({ ...p, correlationData: p.correlationData.toString('base64') });
}

function decodeProperties(s: string | null): Properties | undefined {
  if (s === null) return undefined;
  const p = JSON.parse(s) as Properties & { correlationData?: unknown };
  if (typeof p.correlationData === 'string') p.correlationData = Buffer.from(p.correlationData, 'base64');
  return p;
}

function encodeWill(w: StoredWill | undefined): string | null {
  if (w === undefined) return null;
  const m = w.message;
  return JSON.stringify({
    publishAt: w.publishAt,
    topic: m.topic,
    payload: m.payload.toString('base64'),
    qos: m.qos,
    retain: m.retain,
    properties: encodeProperties(m.properties),
    senderId: m.senderId,
    receivedAt: m.receivedAt,
    expiresAt: m.expiresAt,
  });
}

function decodeWill(s: string | null): StoredWill | undefined {
  if (s === null) return undefined;
  const w = JSON.parse(s);
  return {
    publishAt: w.publishAt,
    message: {
      topic: w.topic,
      payload: Buffer.from(w.payload, 'base64'),
      qos: w.qos,
      retain: w.retain,
      properties: decodeProperties(w.properties ?? null),
      senderId: w.senderId ?? undefined,
      receivedAt: w.receivedAt,
      expiresAt: w.expiresAt ?? undefined,
    },
  };
}
