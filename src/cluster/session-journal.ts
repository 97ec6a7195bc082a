/**
 * Persistent sessions journaled in JetStream (issue 19, "durable in the engine"): every session
 * write of this node's store (store/journaled-message-store.ts) is also recorded in the stream
 * `PUBSUB_SESSIONS` (file storage, `--cluster-replicas`), so that when this node dies with its
 * disk another node resumes the session from there (session-handover.ts asks the journal when
 * no node holds the session). An acknowledgement that waits for the store's commit (durable
 * acks) also waits for the journal: what a PUBACK/PUBREC vouches for is in the stream.
 *
 * - One subject per session, `pubsub.s.<broker>.<hash of the client id>`. Per commit window
 *   (`--store-batch-ms`, as the SQLite store's), each session written to gets one NATS message
 *   with that window's records (binary, journal-codec.ts), all sessions' messages published together
 *   and their PubAcks awaited as one batch. A delivery put and acknowledged within the window
 *   is never written (its records fold away), as in the SQLite store.
 * - Each snapshot of a session (read from the live session: `JournalHost.session`; in parts
 *   under max_payload) starts an epoch (this process's sender number and a count) that the
 *   records after it carry; once its parts are acknowledged everything before them on the
 *   subject is purged. A session opened on this node writes a snapshot first, and another
 *   when the records since the last one outweigh it (16 KB at least), so a subject holds about
 *   one session's worth, whatever its age.
 * - Reading (`read`; journal-replay.ts): the subject from its start; the last complete snapshot
 *   is the state, and only the records of its epoch after it apply. Records another node wrote
 *   after a newer snapshot (a node that handed the session over, still flushing) are ignored,
 *   and so is anything before the first snapshot. A session removed (`del`) leaves it empty.
 * - A session handed to another node leaves nothing here (the store's `forget`): the new
 *   owner's snapshot supersedes it.
 * - A publish the stream does not take (a leader being elected) is followed by a snapshot,
 *   retried. The link down: records are held, and the acknowledgements waiting for them, until
 *   it is back (then written as snapshots) or the node is fenced (session-fence.ts: then
 *   dropped, and each acknowledgement says the store failed). Nothing taken for `GIVE_UP_MS`:
 *   the turn's records are dropped (logged once, counted), the acknowledgements go on
 *   (the node's own store still holds the state: durable on this node only meanwhile), and
 *   every session written to meanwhile writes a snapshot when the link is back.
 * - Nothing here throws into the store's callers; `whenRecorded` callbacks run in record order.
 */
import { randomInt } from 'node:crypto';
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { JournalOp, SessionJournal, StoredSession } from '../store/index.ts';
import { encodeJournal, snapshotOps } from './journal-codec.ts';
import { readSession } from './journal-replay.ts';
import { ensureJournalStream, JOURNAL_STREAM, journalSubject, lastOnSubject } from './journal-stream.ts';

/** A snapshot is written again once the records since the last one pass its size, and this. */
const SNAPSHOT_MIN_BYTES = 16 * 1024;
/** How long a turn's records are retried (a stream electing a leader) before they are dropped. */
export const GIVE_UP_MS = 10_000;
/** A session not written to for this long is let go (`#sweep`), swept as often. */
const IDLE_MS = 60_000;
/** The longest one read of a session's journal takes, and a read with its retries. */
const READ_TIMEOUT_MS = 2000;
export const READ_DEADLINE_MS = 15_000;

/** What an acknowledgement waiting for the journal is told when the node is fenced. */
const FENCED = new Error('cut off from the cluster: the session journal cannot take it');

/** Journal counters (metrics: pubsub_cluster_journal_*). */
export interface JournalStats {
  /** Session writes recorded, and NATS messages (turns × sessions) and snapshots published. */
  records: number;
  messages: number;
  snapshots: number;
  /** Records dropped: the link was down or the stream did not take them (see the header). */
  dropped: number;
  /** Sessions read from the journal for a client resuming on this node. */
  recovered: number;
}

export interface JournalHost {
  readonly logger: Logger;
  readonly replicas: () => number;
  /** The commit window, ms (`--store-batch-ms`, as the SQLite store's; 0: each event-loop turn). */
  readonly batchMs: number;
  /** The session as it is now on this node (undefined: not here, or not persistent). */
  session(brokerId: string, clientId: string): StoredSession | undefined;
  maxPayload(): number;
}

interface OpenSession {
  readonly brokerId: string;
  readonly clientId: string;
  readonly subject: string;
  epoch: string;
  /** This window's records; an entry put and then removed within it is left out (undefined). */
  ops: (JournalOp | undefined)[];
  /** Where this window's `out` records are, by seq: a later state change folds into one. */
  outs: Map<number, number> | undefined;
  /** Epoch ms of its last record (an idle one is let go: `IDLE_MS`). */
  writtenAt: number;
  deleted: boolean;
  needSnapshot: boolean;
  bytesSinceSnapshot: number;
  snapshotBytes: number;
}

export class NatsSessionJournal implements SessionJournal {
  readonly #host: JournalHost;
  readonly stats: JournalStats = { records: 0, messages: 0, snapshots: 0, dropped: 0, recovered: 0 };
  readonly #sender = randomInt(1, 0xffff_ffff);
  #epochs = 0;
  /** The sessions this node journals, by broker id and client id; the last one written. */
  readonly #open = new Map<string, Map<string, OpenSession>>();
  #lastWritten: OpenSession | undefined;
  #dirty = new Set<OpenSession>();
  #scheduled = false;
  /** Records made, and how many of them are held (or given up on): tickets, in order. */
  #recorded = 0;
  #settled = 0;
  #waiters: { ticket: number; fn: (error?: Error) => void }[] = [];
  /** Sessions written to while the link was down, written when it is back. */
  readonly #deferred = new Set<OpenSession>();
  #fenced = false;
  /** Whether the journal has been usable on this process (a node cut off then has one to defer to). */
  available = false;
  /** Each turn's publishes settle in turn order. */
  #last: Promise<void> = Promise.resolve();
  #js: JetStreamClient | undefined;
  #jsm: JetStreamManager | undefined;
  /** Whether the journal is usable on this link (`up`); counts links so a stale `up` stops. */
  #ready: Promise<boolean> = Promise.resolve(false);
  #generation = 0;
  #outageSaid = false;

  readonly #sweeper: NodeJS.Timeout;
  /** Subjects a read found empty: the first snapshot there has nothing to purge. */
  readonly #empty = new Set<string>();
  /** Whether the stream serves direct gets (any replica answers, no API leader). */
  #direct = false;

  constructor(host: JournalHost) {
    this.#host = host;
    this.#sweeper = setInterval(() => this.#sweep(), IDLE_MS);
    this.#sweeper.unref();
  }

  /**
   * The link is up: make sure of the stream (asked again every 500 ms while it does not answer,
   * a leader being elected, for `READ_DEADLINE_MS`; at once false when JetStream is not on the
   * servers), then sessions written while it was down snapshot. True once the journal is usable.
   */
  up(nc: NatsConnection): Promise<boolean> {
    const generation = ++this.#generation;
    this.#ready = this.#ensure(nc, generation);
    return this.#ready;
  }

  async #ensure(nc: NatsConnection, generation: number): Promise<boolean> {
    const started = Date.now();
    for (;;) {
      try {
        const jsm = await jetstreamManager(nc, { checkAPI: false });
        const direct = await ensureJournalStream(jsm, this.#host.replicas());
        if (generation !== this.#generation) return false;
        this.#direct = direct;
        this.#jsm = jsm;
        this.#js = jetstream(nc);
        this.available = true;
        this.#outageSaid = false;
        for (const open of this.#deferred) this.#dirty.add(open);
        this.#deferred.clear();
        for (const open of [...this.#open.values()].flatMap((m) => [...m.values()]))
          if (open.needSnapshot) this.#dirty.add(open);
        if (this.#dirty.size > 0 || this.#settled < this.#recorded) this.#schedule();
        return true;
      } catch (err) {
        if (generation !== this.#generation) return false;
        const message = (err as Error).message;
        if (/no responders|not enabled/i.test(message) || Date.now() - started > READ_DEADLINE_MS) {
          this.#host.logger.warn(
            { event: 'cluster_journal_unavailable', err: message },
            'cluster: the session journal is not available (JetStream on the NATS servers?): sessions are durable on this node only; asked again at the next reconnection',
          );
          return false;
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }

  down(): void {
    this.#generation++;
    this.#ready = Promise.resolve(false);
    this.#js = undefined;
    this.#jsm = undefined;
  }

  record(brokerId: string, clientId: string, op: JournalOp): void {
    let open = this.#lastWritten;
    if (open === undefined || open.clientId !== clientId || open.brokerId !== brokerId) {
      open = this.#opened(brokerId, clientId) ?? this.#openSession(brokerId, clientId);
      this.#lastWritten = open;
    }
    if (op.t === 'del') {
      open.deleted = true;
      open.ops = [op];
      open.outs = undefined;
      this.forget(brokerId, clientId); // a later write opens a new epoch
    } else if (!this.#fold(open, op)) {
      if (op.t === 'out') (open.outs ??= new Map()).set(op.entry.seq, open.ops.length);
      open.ops.push(op);
    }
    open.writtenAt = Date.now();
    this.#dirty.add(open);
    this.#recorded++;
    this.stats.records++;
    this.#schedule();
  }

  /**
   * Lets go of sessions not written to for `IDLE_MS` whose journal is complete: an offline
   * session costs the journal nothing here; its next write starts a new epoch with a snapshot.
   */
  #sweep(): void {
    const before = Date.now() - IDLE_MS;
    for (const sessions of this.#open.values())
      for (const [clientId, open] of sessions)
        if (
          open.writtenAt < before &&
          !open.needSnapshot &&
          open.ops.length === 0 &&
          !this.#dirty.has(open)
        ) {
          sessions.delete(clientId);
          if (this.#lastWritten === open) this.#lastWritten = undefined;
        }
  }

  /** This node holds the session no more (handed over): its next write here starts afresh. */
  forget(brokerId: string, clientId: string): void {
    this.#open.get(brokerId)?.delete(clientId);
    if (this.#lastWritten?.clientId === clientId && this.#lastWritten.brokerId === brokerId)
      this.#lastWritten = undefined;
  }

  #opened(brokerId: string, clientId: string): OpenSession | undefined {
    return this.#open.get(brokerId)?.get(clientId);
  }

  #openSession(brokerId: string, clientId: string): OpenSession {
    const open: OpenSession = {
      brokerId,
      clientId,
      subject: journalSubject(brokerId, clientId),
      epoch: '', // set by its first snapshot
      ops: [],
      outs: undefined,
      writtenAt: 0,
      deleted: false,
      needSnapshot: true,
      bytesSinceSnapshot: 0,
      snapshotBytes: 0,
    };
    let sessions = this.#open.get(brokerId);
    if (sessions === undefined) this.#open.set(brokerId, (sessions = new Map()));
    sessions.set(clientId, open);
    return open;
  }

  /**
   * Folds a state change or removal of an entry put in this window into its `out` record, as
   * the SQLite store does: a delivery acknowledged within the window is never written.
   */
  #fold(open: OpenSession, op: JournalOp): boolean {
    if (op.t !== 'ost' && op.t !== 'dout') return false;
    const at = open.outs?.get(op.seq);
    if (at === undefined) return false;
    const put = open.ops[at] as Extract<JournalOp, { t: 'out' }>;
    if (op.t === 'dout') {
      open.ops[at] = undefined;
      open.outs!.delete(op.seq);
    } else open.ops[at] = { t: 'out', entry: { ...put.entry, state: op.state, packetId: op.packetId } };
    return true;
  }

  get pending(): boolean {
    return this.#settled < this.#recorded;
  }

  whenRecorded(fn: (error?: Error) => void): void {
    if (this.#settled >= this.#recorded) fn();
    else this.#waiters.push({ ticket: this.#recorded, fn });
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    const run = (): void => {
      this.#scheduled = false;
      this.#flush();
    };
    if (this.#host.batchMs === 0) setImmediate(run);
    else setTimeout(run, this.#host.batchMs);
  }

  #flush(): void {
    const ticket = this.#recorded;
    const dirty = this.#dirty;
    this.#dirty = new Set();
    const js = this.#js;
    if (this.#fenced) {
      for (const open of dirty) this.#drop(open, 'the node is fenced');
      this.#last = this.#last.then(() => this.#settle(ticket, FENCED));
      return;
    }
    if (js === undefined) {
      // The link is down: held (their acknowledgements wait) until it is back, or the fence.
      for (const open of dirty) {
        if (!open.deleted) open.needSnapshot = true;
        this.#deferred.add(open);
      }
      return;
    }
    const writes: Promise<void>[] = [];
    for (const open of dirty) {
      try {
        writes.push(this.#write(js, open));
      } catch (err) {
        this.#drop(open, (err as Error).message);
      }
    }
    const previous = this.#last;
    this.#last = Promise.all([previous, ...writes]).then(() => this.#settle(ticket));
  }

  /**
   * The node's fence (session-fence.ts) went up: what is held, and what comes while it stands,
   * is dropped and its acknowledgements told so; down: the journal writes again.
   */
  setFenced(up: boolean): void {
    this.#fenced = up;
    if (!up) return;
    for (const open of this.#deferred) this.#drop(open, 'the node is fenced');
    this.#deferred.clear();
    this.#settle(this.#recorded, FENCED);
  }

  /**
   * Publishes one session's turn: its records, or a snapshot, or its removal. A publish the
   * stream does not take is followed by a snapshot of the session as it is then (a new epoch:
   * whatever landed before it is superseded), tried every 100 ms for `GIVE_UP_MS`.
   */
  async #write(js: JetStreamClient, open: OpenSession): Promise<void> {
    const started = Date.now();
    let ok = await this.#attempt(js, open);
    while (!ok) {
      if (open.deleted || this.#js !== js || Date.now() - started > GIVE_UP_MS) {
        this.#drop(open, "the stream did not take the session's records");
        return;
      }
      open.needSnapshot = true;
      await new Promise((resolve) => setTimeout(resolve, 100));
      ok = await this.#attempt(js, open);
    }
  }

  async #attempt(js: JetStreamClient, open: OpenSession): Promise<boolean> {
    const ops = open.ops.filter((op) => op !== undefined);
    open.ops = [];
    open.outs = undefined;
    if (open.deleted) {
      const seq = await this.#publish(js, open.subject, encodeJournal(open.epoch, false, ops));
      if (seq === undefined) return false;
      // The subject goes empty, unless the client id's next session has written meanwhile.
      const reopened = this.#opened(open.brokerId, open.clientId) !== undefined;
      this.#purgeBelow(open.subject, reopened ? seq : seq + 1);
      return true;
    }
    const body = open.needSnapshot ? undefined : encodeJournal(open.epoch, false, ops);
    const fits = body !== undefined && body.length < this.#host.maxPayload() - 1024;
    const due =
      open.bytesSinceSnapshot + (body?.length ?? 0) > Math.max(SNAPSHOT_MIN_BYTES, open.snapshotBytes);
    if (fits && !due) {
      open.bytesSinceSnapshot += body.length;
      return (await this.#publish(js, open.subject, body)) !== undefined;
    }
    const state = this.#host.session(open.brokerId, open.clientId);
    if (state === undefined) {
      // Not a live persistent session here (any more): its removal follows, or nothing does.
      return !fits || (await this.#publish(js, open.subject, body)) !== undefined;
    }
    open.epoch = `${this.#sender}.${++this.#epochs}`;
    open.needSnapshot = false;
    open.bytesSinceSnapshot = 0;
    const bytes = encodeJournal(open.epoch, true, snapshotOps(state));
    open.snapshotBytes = bytes.length;
    const size = Math.max(1024, this.#host.maxPayload() - 1024);
    const count = Math.max(1, Math.ceil(bytes.length / size));
    const acks: Promise<number | undefined>[] = [];
    for (let i = 0; i < count; i++)
      acks.push(this.#publish(js, open.subject, bytes.subarray(i * size, (i + 1) * size), `${i}/${count}`));
    const seqs = await Promise.all(acks);
    if (seqs.some((seq) => seq === undefined)) return false;
    this.stats.snapshots++;
    // Nothing before it to purge when a read just found the subject empty (a new session).
    if (!this.#empty.delete(open.subject)) this.#purgeBelow(open.subject, seqs[0]!);
    return true;
  }

  /** One message to a session's subject: its stream sequence, or undefined when not taken. */
  async #publish(
    js: JetStreamClient,
    subject: string,
    data: Buffer,
    part?: string,
  ): Promise<number | undefined> {
    try {
      const h = part === undefined ? undefined : headers();
      h?.set('Pubsub-Snapshot', part!);
      const ack = await js.publish(subject, data, h === undefined ? undefined : { headers: h });
      this.stats.messages++;
      return ack.seq;
    } catch {
      return undefined;
    }
  }

  #purgeBelow(subject: string, seq: number): void {
    this.#jsm?.streams.purge(JOURNAL_STREAM, { filter: subject, seq }).catch((err: Error) => {
      this.#host.logger.debug({ err: err.message, subject }, 'cluster: a session journal purge failed');
    });
  }

  /** A session's records did not reach the stream: counted, said once per outage, snapshot next time. */
  #drop(open: OpenSession, why: string): void {
    this.stats.dropped++;
    if (!open.deleted) {
      open.needSnapshot = true;
      if (this.#opened(open.brokerId, open.clientId) === undefined) {
        let sessions = this.#open.get(open.brokerId);
        if (sessions === undefined) this.#open.set(open.brokerId, (sessions = new Map()));
        sessions.set(open.clientId, open);
      }
    }
    if (this.#outageSaid) return;
    this.#outageSaid = true;
    this.#host.logger.warn(
      { event: 'cluster_journal_behind', err: why },
      'cluster: session writes are not reaching the journal; sessions are durable on this node only until it is back',
    );
  }

  #settle(ticket: number, error?: Error): void {
    if (ticket > this.#settled) this.#settled = ticket;
    let i = 0;
    while (i < this.#waiters.length && this.#waiters[i]!.ticket <= this.#settled) i++;
    if (i === 0) return;
    const ready = this.#waiters.splice(0, i);
    for (const w of ready) {
      try {
        w.fn(error);
      } catch (err) {
        this.#host.logger.error({ err }, 'cluster: a journal callback threw');
      }
    }
  }

  /**
   * The session of `clientId` on broker `brokerId` as its journal holds it (undefined: none).
   * A stream that does not answer (a leader being elected) is asked again every 250 ms for
   * `READ_DEADLINE_MS`; then this throws (the caller resumes without it, and says so).
   */
  async read(nc: NatsConnection, brokerId: string, clientId: string): Promise<StoredSession | undefined> {
    if (!(await this.#ready)) return undefined;
    const subject = journalSubject(brokerId, clientId);
    const started = Date.now();
    for (;;) {
      try {
        const session = await this.#readOnce(nc, subject, clientId);
        if (session !== undefined) this.stats.recovered++;
        return session;
      } catch (err) {
        if (Date.now() - started > READ_DEADLINE_MS) throw err;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  }

  async #readOnce(nc: NatsConnection, subject: string, clientId: string): Promise<StoredSession | undefined> {
    const jsm = this.#jsm;
    if (jsm === undefined) throw new Error('the NATS link is down');
    const last = await lastOnSubject(jsm, subject, this.#direct);
    if (last === undefined) {
      this.#empty.add(subject);
      return undefined;
    }
    return readSession(nc, JOURNAL_STREAM, subject, last, clientId, READ_TIMEOUT_MS);
  }

  close(): void {
    clearInterval(this.#sweeper);
    this.down();
  }
}
