/**
 * The SQLite adapter of MessageStore, on the server's embedded database (WAL,
 * synchronous=NORMAL: a committed transaction survives SIGKILL).
 *
 * Group commit: a write only appends an operation to the current batch; the first write of a
 * batch arms a timer (`batchMs`, 0: the next event-loop turn) that runs the whole batch in one
 * transaction and then calls every `afterCommit` callback of it, in order. Never one
 * transaction per message.
 *
 * Within a batch, an outbound entry inserted and then acknowledged (the subscriber was online
 * and fast) is never written at all, and its state changes fold into the pending insert; a
 * retained topic written twice keeps only its last value. Both keep disk writes proportional
 * to what must survive, not to traffic.
 *
 * A failed commit (disk full, I/O error) rolls back, keeps the batch, logs once per failure
 * spell and retries every second; `failed` is set until a commit succeeds.
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { Logger } from 'pino';
import type { Properties, QoS } from '../protocol/index.ts';
import type {
  BrokerState,
  CommitCallback,
  MessageStore,
  OutboundState,
  StoredMessage,
  StoredOutbound,
  StoredSession,
  StoredSessionState,
  StoredSubscription,
  StoredWill,
} from './message-store.ts';

const RETRY_MS = 1000;
const STATE_CODE: Record<OutboundState, number> = { queued: 0, sent: 1, released: 2 };
const STATE_NAME: OutboundState[] = ['queued', 'sent', 'released'];

type Op =
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

interface OutboundOp {
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

export interface SqliteMessageStoreOptions {
  /** Milliseconds a batch collects writes before it commits; 0: the next event-loop turn. */
  batchMs: number;
  logger: Logger;
}

export class SqliteMessageStore implements MessageStore {
  readonly #db: DatabaseSync;
  readonly #batchMs: number;
  readonly #log: Logger;
  readonly #stmts = new Map<string, StatementSync>();
  #ops: Op[] = [];
  /** Ops of the batch not cancelled: with none, the batch needs no transaction. */
  #live = 0;
  #callbacks: CommitCallback[] = [];
  /** Outbound inserts of the current batch, by seq. */
  #pendingOutbound = new Map<number, OutboundOp>();
  /** Retained writes of the current batch, by broker and topic. */
  #pendingRetained = new Map<string, Op & { k: 'retained' }>();
  #timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  #seq: number;
  #closed = false;
  writes = 0;
  failed: Error | undefined;

  constructor(db: DatabaseSync, options: SqliteMessageStoreOptions) {
    this.#db = db;
    this.#batchMs = options.batchMs;
    this.#log = options.logger;
    const max = db.prepare('SELECT max(seq) AS m FROM outbound').get() as Row;
    this.#seq = Number(max.m ?? 0);
  }

  get pending(): boolean {
    return this.#ops.length > 0 || this.#callbacks.length > 0;
  }

  nextSeq(): number {
    return ++this.#seq;
  }

  #push(op: Op): void {
    if (this.#closed) return;
    this.writes++;
    this.#ops.push(op);
    this.#live++;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#timer !== undefined) return;
    this.#timer = this.#batchMs === 0 ? setImmediate(this.#commit) : setTimeout(this.#commit, this.#batchMs);
  }

  putRetained(brokerId: string, message: StoredMessage): void {
    this.#retained(brokerId, message.topic, message);
  }

  deleteRetained(brokerId: string, topic: string): void {
    this.#retained(brokerId, topic, undefined);
  }

  #retained(broker: string, topic: string, message: StoredMessage | undefined): void {
    if (this.#closed) return;
    const key = `${broker}\0${topic}`;
    const earlier = this.#pendingRetained.get(key);
    if (earlier !== undefined) {
      this.writes++;
      earlier.message = message;
      return;
    }
    const op: Op & { k: 'retained' } = { k: 'retained', broker, topic, message };
    this.#pendingRetained.set(key, op);
    this.#push(op);
  }

  putSession(brokerId: string, state: StoredSessionState): void {
    this.#push({ k: 'session', broker: brokerId, state });
  }

  deleteSession(brokerId: string, clientId: string): void {
    this.#push({ k: 'deleteSession', broker: brokerId, client: clientId });
  }

  putSubscription(brokerId: string, clientId: string, sub: StoredSubscription): void {
    this.#push({ k: 'subscription', broker: brokerId, client: clientId, sub });
  }

  deleteSubscription(brokerId: string, clientId: string, topicFilter: string): void {
    this.#push({ k: 'deleteSubscription', broker: brokerId, client: clientId, filter: topicFilter });
  }

  putOutbound(brokerId: string, clientId: string, entry: StoredOutbound): void {
    if (this.#closed) return;
    const op: OutboundOp = {
      k: 'outbound',
      broker: brokerId,
      client: clientId,
      entry,
      state: entry.state,
      packetId: entry.packetId,
      cancelled: false,
    };
    this.#pendingOutbound.set(entry.seq, op);
    this.#push(op);
  }

  setOutboundState(
    brokerId: string,
    clientId: string,
    seq: number,
    state: OutboundState,
    packetId: number,
  ): void {
    const pending = this.#pendingOutbound.get(seq);
    if (pending !== undefined) {
      this.writes++;
      pending.state = state;
      pending.packetId = packetId;
      return;
    }
    this.#push({ k: 'outboundState', broker: brokerId, client: clientId, seq, state, packetId });
  }

  deleteOutbound(brokerId: string, clientId: string, seq: number): void {
    const pending = this.#pendingOutbound.get(seq);
    if (pending !== undefined) {
      this.writes++;
      this.#live--;
      pending.cancelled = true;
      this.#pendingOutbound.delete(seq);
      return;
    }
    this.#push({ k: 'deleteOutbound', broker: brokerId, client: clientId, seq });
  }

  addInboundQos2(brokerId: string, clientId: string, packetId: number): void {
    this.#push({ k: 'inbound', broker: brokerId, client: clientId, packetId });
  }

  deleteInboundQos2(brokerId: string, clientId: string, packetId: number): void {
    this.#push({ k: 'deleteInbound', broker: brokerId, client: clientId, packetId });
  }

  deleteBroker(brokerId: string): void {
    this.#pendingRetained.clear(); // later writes for a topic must not fold into ops before the delete
    this.#push({ k: 'deleteBroker', broker: brokerId });
  }

  afterCommit(fn: CommitCallback): void {
    if (!this.pending && this.failed === undefined) {
      fn(undefined);
      return;
    }
    this.#callbacks.push(fn);
    this.#schedule();
  }

  flush(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer as NodeJS.Timeout);
      clearImmediate(this.#timer as NodeJS.Immediate);
    }
    this.#commit();
  }

  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
  }

  #commit = (): void => {
    this.#timer = undefined;
    const ops = this.#ops;
    const callbacks = this.#callbacks;
    if (ops.length === 0 && callbacks.length === 0) return;
    this.#callbacks = [];
    // Every write of the batch cancelled (acknowledged before commit): nothing to write.
    const error = this.#live > 0 ? this.#transaction(ops) : undefined;
    if (error === undefined) {
      this.#ops = [];
      this.#live = 0;
      this.#pendingOutbound.clear();
      this.#pendingRetained.clear();
      if (this.failed !== undefined)
        this.#log.warn({ writes: ops.length }, 'message store: commits succeed again');
      this.failed = undefined;
    } else {
      // Keep the batch: it is retried as a whole, with whatever is written meanwhile.
      if (this.failed === undefined)
        this.#log.error(
          { err: error.message, writes: ops.length },
          'message store: commit failed; QoS 1/2 messages are refused until a commit succeeds (retrying every second)',
        );
      this.failed = error;
      if (!this.#closed) this.#timer = setTimeout(this.#commit, RETRY_MS);
    }
    for (let i = 0; i < callbacks.length; i++) callbacks[i]!(error);
  };

  /** Runs the batch in one transaction; the error when it failed (rolled back). */
  #transaction(ops: Op[]): Error | undefined {
    try {
      this.#db.exec('BEGIN IMMEDIATE');
      try {
        // Acknowledged outbound rows are deleted together at the end, in one statement: no
        // later op of a batch can need such a row (sequence numbers are never reused, and a
        // state change before a delete is moot), and one statement per row was a third of the
        // store's CPU in the persistent fan-in bench.
        const deleted: number[] = [];
        for (let i = 0; i < ops.length; i++) {
          const op = ops[i]!;
          if (op.k === 'deleteOutbound') deleted.push(op.seq);
          else this.#apply(op);
        }
        this.#deleteOutbound(deleted);
        this.#db.exec('COMMIT');
      } catch (err) {
        if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
        throw err;
      }
      return undefined;
    } catch (err) {
      return err instanceof Error ? err : new Error(String(err));
    }
  }

  #deleteOutbound(seqs: number[]): void {
    const CHUNK = 10_000;
    for (let i = 0; i < seqs.length; i += CHUNK)
      this.#q('DELETE FROM outbound WHERE seq IN (SELECT value FROM json_each(?))').run(
        JSON.stringify(seqs.slice(i, i + CHUNK)),
      );
  }

  #q(sql: string): StatementSync {
    let s = this.#stmts.get(sql);
    if (s === undefined) {
      s = this.#db.prepare(sql);
      this.#stmts.set(sql, s);
    }
    return s;
  }

  #apply(op: Op): void {
    switch (op.k) {
      case 'retained': {
        const m = op.message;
        if (m === undefined) {
          this.#q('DELETE FROM retained WHERE broker_id = ? AND topic = ?').run(op.broker, op.topic);
          return;
        }
        this.#q(
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
        this.#q(
          `INSERT OR REPLACE INTO sessions (broker_id, client_id, expiry_interval, expires_at, will) VALUES (?, ?, ?, ?, ?)`,
        ).run(op.broker, s.clientId, s.expiryInterval, s.expiresAt ?? null, encodeWill(s.will));
        return;
      }
      case 'deleteSession':
        for (const table of ['sessions', 'subscriptions', 'outbound', 'inbound_qos2'])
          this.#q(`DELETE FROM ${table} WHERE broker_id = ? AND client_id = ?`).run(op.broker, op.client);
        return;
      case 'subscription': {
        const s = op.sub;
        this.#q(
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
        this.#q('DELETE FROM subscriptions WHERE broker_id = ? AND client_id = ? AND topic_filter = ?').run(
          op.broker,
          op.client,
          op.filter,
        );
        return;
      case 'outbound': {
        if (op.cancelled) return;
        const e = op.entry;
        const m = e.message;
        this.#q(
          `INSERT OR REPLACE INTO outbound (seq, broker_id, client_id, state, packet_id, qos, retain, subscription_ids,
             topic, payload, message_qos, message_retain, properties, sender_id, received_at, expires_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ).run(
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
        return;
      }
      case 'outboundState':
        this.#q('UPDATE outbound SET state = ?, packet_id = ? WHERE seq = ?').run(
          STATE_CODE[op.state],
          op.packetId,
          op.seq,
        );
        return;
      case 'deleteOutbound':
        this.#q('DELETE FROM outbound WHERE seq = ?').run(op.seq);
        return;
      case 'inbound':
        this.#q('INSERT OR IGNORE INTO inbound_qos2 (broker_id, client_id, packet_id) VALUES (?, ?, ?)').run(
          op.broker,
          op.client,
          op.packetId,
        );
        return;
      case 'deleteInbound':
        this.#q('DELETE FROM inbound_qos2 WHERE broker_id = ? AND client_id = ? AND packet_id = ?').run(
          op.broker,
          op.client,
          op.packetId,
        );
        return;
      case 'deleteBroker':
        for (const table of ['retained', 'sessions', 'subscriptions', 'outbound', 'inbound_qos2'])
          this.#q(`DELETE FROM ${table} WHERE broker_id = ?`).run(op.broker);
        return;
    }
  }

  load(brokerId: string): BrokerState {
    const retained: StoredMessage[] = [];
    for (const r of this.#q(
      'SELECT topic, payload, qos, properties, sender_id, received_at, expires_at FROM retained WHERE broker_id = ? ORDER BY topic',
    ).iterate(brokerId) as Iterable<Row>) {
      retained.push(messageOf(r, true));
    }
    const sessions = new Map<string, StoredSession>();
    for (const r of this.#q('SELECT * FROM sessions WHERE broker_id = ? ORDER BY client_id').iterate(
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
    for (const r of this.#q(
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
    for (const r of this.#q('SELECT * FROM outbound WHERE broker_id = ? ORDER BY seq').iterate(
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
    for (const r of this.#q(
      'SELECT client_id, packet_id FROM inbound_qos2 WHERE broker_id = ? ORDER BY client_id, packet_id',
    ).iterate(brokerId) as Iterable<Row>) {
      sessions.get(r.client_id as string)?.inboundQos2.push(Number(r.packet_id));
    }
    return { retained, sessions: [...sessions.values()] };
  }
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
