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
 *
 * What each operation writes, and how a broker's state is read back, is in
 * sqlite-message-rows.ts; this file owns only when writes happen and in which transaction.
 */

import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { Logger } from 'pino';
import { DurationHistogram } from '../observability/index.ts';
import type {
  BrokerState,
  CommitCallback,
  MessageStore,
  OutboundState,
  StoredMessage,
  StoredOutbound,
  StoredSessionState,
  StoredSubscription,
} from './message-store.ts';
import {
  applyOp,
  deleteOutboundRows,
  insertOutboundRows,
  lastOutboundSeq,
  loadBrokerState,
  type Op,
  type OutboundOp,
  type Statements,
} from './sqlite-message-rows.ts';

const RETRY_MS = 1000;

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
  /** The prepared statement for `sql`, prepared once (a field: handed to the row functions). */
  readonly #q: Statements = (sql) => {
    let s = this.#stmts.get(sql);
    if (s === undefined) {
      s = this.#db.prepare(sql);
      this.#stmts.set(sql, s);
    }
    return s;
  };
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
  readonly commitSeconds = new DurationHistogram();
  commitErrors = 0;

  constructor(db: DatabaseSync, options: SqliteMessageStoreOptions) {
    this.#db = db;
    this.#batchMs = options.batchMs;
    this.#log = options.logger;
    this.#seq = lastOutboundSeq(this.#q);
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
    const error = this.#live > 0 ? this.#timedTransaction(ops) : undefined;
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

  /** `#transaction`, timed into `commitSeconds` and its failures counted. */
  #timedTransaction(ops: Op[]): Error | undefined {
    const started = performance.now();
    const error = this.#transaction(ops);
    this.commitSeconds.observe((performance.now() - started) / 1000);
    if (error !== undefined) this.commitErrors++;
    return error;
  }

  /** Runs the batch in one transaction; the error when it failed (rolled back). */
  #transaction(ops: Op[]): Error | undefined {
    try {
      this.#db.exec('BEGIN IMMEDIATE');
      try {
        // Acknowledged outbound rows are deleted together at the end, in one statement: no
        // later op of a batch can need such a row (sequence numbers are never reused, and a
        // state change before a delete is moot), and one statement per row was a third of the
        // store's CPU in the persistent fan-in bench.
        // Consecutive outbound inserts go out together in multi-row statements, flushed before
        // any other write so that the batch's order holds (a session deleted after its
        // deliveries were queued deletes them).
        const deleted: number[] = [];
        const inserts: OutboundOp[] = [];
        for (let i = 0; i < ops.length; i++) {
          const op = ops[i]!;
          if (op.k === 'outbound') inserts.push(op);
          else if (op.k === 'deleteOutbound') deleted.push(op.seq);
          else {
            if (inserts.length > 0) {
              insertOutboundRows(this.#q, inserts);
              inserts.length = 0;
            }
            applyOp(this.#q, op);
          }
        }
        insertOutboundRows(this.#q, inserts);
        deleteOutboundRows(this.#q, deleted);
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

  load(brokerId: string): BrokerState {
    return loadBrokerState(this.#q, brokerId);
  }
}
