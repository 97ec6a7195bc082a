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
 *   under max_payload) starts an epoch (`<node name>/<sender>.<count>`: this node, this process,
 *   a count) that the records after it carry; once its parts are acknowledged everything before them on the
 *   subject is purged. A session opened on this node writes a snapshot first, and another
 *   when the records since the last one outweigh it (16 KB at least), so a subject holds about
 *   one session's worth, whatever its age.
 * - Reading (`read`; journal-replay.ts): the subject from its start; the last complete snapshot
 *   is the state, and only the records of its epoch after it apply. Records another node wrote
 *   after a newer snapshot (a node that handed the session over, still flushing) are ignored,
 *   and so is anything before the first snapshot. A session removed (`del`) leaves only that.
 * - A session handed to another node leaves nothing here (the store's `forget`): the new
 *   owner's snapshot supersedes it. Before the journal is first used, the sessions restored from
 *   disk that another node wrote since are let go (journal-restart.ts; `opening` until then).
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
import type { NatsConnection } from '@nats-io/transport-node';
import type { JournalOp, SessionJournal, StoredSession } from '../store/index.ts';
import { splitParts } from './framed-parts.ts';
import { encodeJournal, snapshotOps } from './journal-codec.ts';
import { type JournalRead, readJournaled } from './journal-replay.ts';
import { checkRestored, type RestartHost } from './journal-restart.ts';
import { type JournalSession, JournalSessions } from './journal-session.ts';
import { ensureJournalStream, JOURNAL_STREAM, journalSubject, publishToJournal } from './journal-stream.ts';

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
/** ... and when the journal did not take it (no quorum, or not answering). */
const JOURNAL_DOWN = new Error('the session journal did not take it');

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

export interface JournalHost extends RestartHost {
  readonly replicas: () => number;
  /** The commit window, ms (`--store-batch-ms`, as the SQLite store's; 0: each event-loop turn). */
  readonly batchMs: number;
  /** The session as it is now on this node (undefined: not here, or not persistent). */
  session(brokerId: string, clientId: string): StoredSession | undefined;
  maxPayload(): number;
}

export class NatsSessionJournal implements SessionJournal {
  readonly #host: JournalHost;
  readonly stats: JournalStats = { records: 0, messages: 0, snapshots: 0, dropped: 0, recovered: 0 };
  readonly #sender = randomInt(1, 0xffff_ffff);
  #epochs = 0;
  /** The sessions this node journals, by broker id and client id; the last one written. */
  readonly #open = new JournalSessions();
  #dirty = new Set<JournalSession>();
  #scheduled = false;
  /** Records made, and how many of them are held (or given up on): tickets, in order. */
  #recorded = 0;
  #settled = 0;
  #waiters: { ticket: number; fn: (error?: Error) => void }[] = [];
  /** Sessions written to while the link was down, written when it is back. */
  readonly #deferred = new Set<JournalSession>();
  #fenced = false;
  /** No JetStream on the servers: nothing is journaled, nothing waits. */
  #off = false;
  /** Whether the journal has been usable on this process (a node cut off then has one to defer to). */
  available = false;
  /** Until the sessions restored from disk are checked against the journal (or there is none). */
  opening = true;
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
        const js = jetstream(nc);
        if (this.opening) await checkRestored(js, jsm, direct, this.#host, this.#fresh);
        this.opening = false;
        if (generation !== this.#generation) return false;
        this.#direct = direct;
        this.#jsm = jsm;
        this.#js = js;
        this.available = true;
        this.#outageSaid = false;
        for (const open of this.#deferred) this.#dirty.add(open);
        this.#deferred.clear();
        for (const open of this.#open.all()) if (open.needSnapshot) this.#dirty.add(open);
        if (this.#dirty.size > 0 || this.#settled < this.#recorded) this.#schedule();
        return true;
      } catch (err) {
        if (generation !== this.#generation) return false;
        const message = (err as Error).message;
        const none = /no responders|not enabled/i.test(message);
        if (none || Date.now() - started > READ_DEADLINE_MS) {
          this.#host.logger.warn(
            { event: 'cluster_journal_unavailable', err: message },
            none
              ? 'cluster: no session journal (JetStream is not on the NATS servers): sessions are durable on this node only'
              : 'cluster: the session journal does not answer: acknowledgements waiting for it fail until it does (asked again every 5 s)',
          );
          // Without JetStream there is no journal: writes go on, durable here only. A journal
          // that does not answer fails what waits for it, and is asked again.
          this.#off = none;
          if (none) this.opening = false; // no journal: the sessions here are the only ones
          this.#failHeld(none ? undefined : JOURNAL_DOWN);
          if (!none) setTimeout(() => void (generation === this.#generation && this.up(nc)), 5000).unref();
          return false;
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }

  /** A restored copy the journal does not hold: its next write (now) is a snapshot. */
  readonly #fresh = (brokerId: string, clientId: string): void => {
    this.#dirty.add(this.#open.get(brokerId, clientId));
  };

  /**
   * Contact is back after the fence: the sessions held here are checked as at a start
   * (journal-restart.ts: kept when this node wrote them last, else let go), tried every second
   * until the journal answers; persistent sessions are refused meanwhile (`opening`).
   */
  recheck(): void {
    this.opening = true;
    const generation = this.#generation;
    const [js, jsm] = [this.#js, this.#jsm];
    if (js === undefined || jsm === undefined) return; // the link's next up checks them
    checkRestored(js, jsm, this.#direct, this.#host, this.#fresh).then(
      () => {
        if (generation !== this.#generation) return;
        this.opening = false; // what was held meanwhile is written now
        for (const open of this.#deferred) this.#dirty.add(open);
        this.#deferred.clear();
        this.#schedule();
      },
      () => setTimeout(() => generation === this.#generation && this.opening && this.recheck(), 1000).unref(),
    );
  }

  down(): void {
    this.#generation++;
    this.#ready = Promise.resolve(false);
    this.#js = undefined;
    this.#jsm = undefined;
  }

  record(brokerId: string, clientId: string, op: JournalOp): void {
    const open = this.#open.get(brokerId, clientId);
    open.add(op);
    if (op.t === 'del') this.forget(brokerId, clientId); // a later write opens a new epoch
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
    this.#empty.clear(); // a hint for the next snapshot; one not taken within a sweep is stale
    const before = Date.now() - IDLE_MS;
    this.#open.sweep(
      (open) => open.writtenAt < before && !open.needSnapshot && !open.written && !this.#dirty.has(open),
    );
  }

  /** This node holds the session no more (handed over): its next write here starts afresh. */
  forget(brokerId: string, clientId: string): void {
    const open = this.#open.find(brokerId, clientId);
    this.#open.delete(brokerId, clientId);
    if (open === undefined || open.deleted) return;
    // Its records not yet written go too: written after the new owner's, they would name this
    // node as the session's last writer (orphan-sessions.ts, journal-restart.ts).
    this.#dirty.delete(open);
    this.#deferred.delete(open);
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
    const now = Date.now(); // once per window, not per record
    for (const open of dirty) open.writtenAt = now;
    const js = this.#js;
    if (this.#fenced) {
      for (const open of dirty) this.#drop(open, 'the node is fenced');
      this.#last = this.#last.then(() => this.#settle(ticket, FENCED));
      return;
    }
    if (js === undefined && (this.#off || !this.available)) {
      // No journal (no JetStream, or none reached yet): durable on this node only, as before.
      for (const open of dirty) this.#drop(open, 'no session journal');
      this.#last = this.#last.then(() => this.#settle(ticket));
      return;
    }
    if (js === undefined || this.opening) {
      // The link is down, or this node is checking its copies after the fence (`recheck`): held
      // (their acknowledgements wait) until it is back and checked, or the fence.
      for (const open of dirty) {
        if (!open.deleted) open.needSnapshot = true;
        this.#deferred.add(open);
      }
      return;
    }
    const writes: Promise<boolean>[] = [];
    for (const open of dirty) {
      const write = this.#write(js!, open).catch((err: Error) => {
        this.#drop(open, err.message);
        return false;
      });
      open.inflight = write;
      writes.push(write);
    }
    // A turn whose records did not all reach the stream fails its acknowledgements (0x80).
    this.#last = Promise.all([this.#last, ...writes])
      .then(([, ...done]) => this.#settle(ticket, done.every(Boolean) ? undefined : JOURNAL_DOWN))
      .catch((err) => this.#host.logger.error({ err }, 'cluster: settling journal writes failed'));
  }

  /**
   * The node's fence (session-fence.ts) went up: what is held, and what comes while it stands,
   * is dropped and its acknowledgements told so; down: the journal writes again.
   */
  setFenced(up: boolean): void {
    this.#fenced = up;
    if (!up) return;
    this.#failHeld(FENCED);
  }

  /** Drops what waits for the link, and settles every waiting acknowledgement with `error`. */
  #failHeld(error: Error | undefined): void {
    for (const open of this.#deferred) this.#drop(open, error?.message ?? 'no session journal');
    this.#deferred.clear();
    this.#settle(this.#recorded, error);
  }

  /**
   * Publishes one session's turn: its records, or a snapshot, or its removal. A publish the
   * stream does not take is followed by a snapshot of the session as it is then (a new epoch:
   * whatever landed before it is superseded), tried every 100 ms for `GIVE_UP_MS`.
   */
  async #write(js: JetStreamClient, open: JournalSession): Promise<boolean> {
    let started = Date.now();
    let ok = await this.#attempt(js, open);
    while (!ok) {
      if (open.deleted || this.#fenced || this.#off || Date.now() - started > GIVE_UP_MS) {
        this.#drop(open, "the stream did not take the session's records");
        return false;
      }
      open.needSnapshot = true;
      await new Promise((resolve) => setTimeout(resolve, 100));
      const current = this.#js;
      if (current === undefined) continue; // the link is down: wait for it, or the fence
      if (current !== js) [js, started] = [current, Date.now()]; // back: a snapshot on the new link
      ok = await this.#attempt(js, open);
    }
    return true;
  }

  async #attempt(js: JetStreamClient, open: JournalSession): Promise<boolean> {
    const ops = open.take();
    open.before = open.inflight;
    if (open.deleted) {
      // After this session's earlier writes, and only if nobody wrote since: then the subject
      // is ours to empty (a node that resumed the session meanwhile wrote after us).
      await open.before;
      const epoch = open.epoch || `${this.#host.nodeName}/`; // who removed it (journal-restart.ts)
      const seq = await this.#publish(
        js,
        open.subject,
        encodeJournal(epoch, false, ops),
        undefined,
        open.lastSeq,
      );
      if (seq === 'conflict') return true;
      if (seq === undefined) return false;
      // Ours to empty only when nobody wrote after our last message (what comes after stays);
      // the removal itself stays, saying who removed it.
      if (open.lastSeq !== undefined) this.#purgeBelow(open.subject, seq);
      return true;
    }
    const body = open.needSnapshot ? undefined : encodeJournal(open.epoch, false, ops);
    const fits = body !== undefined && body.length < this.#host.maxPayload() - 1024;
    const due =
      open.bytesSinceSnapshot + (body?.length ?? 0) > Math.max(SNAPSHOT_MIN_BYTES, open.snapshotBytes);
    if (fits && !due) {
      open.bytesSinceSnapshot += body.length;
      return this.#taken(open, await this.#publish(js, open.subject, body));
    }
    const state = this.#host.session(open.brokerId, open.clientId);
    if (state === undefined) {
      // Not a live persistent session here (any more): its removal follows, or nothing does.
      return !fits || this.#taken(open, await this.#publish(js, open.subject, body));
    }
    open.epoch = `${this.#host.nodeName}/${this.#sender}.${++this.#epochs}`;
    open.needSnapshot = false;
    open.bytesSinceSnapshot = 0;
    const bytes = encodeJournal(open.epoch, true, snapshotOps(state));
    open.snapshotBytes = bytes.length;
    const parts = splitParts(bytes, this.#host.maxPayload());
    const seqs = await Promise.all(
      parts.map((part, i) => this.#publish(js, open.subject, part, `${i}/${parts.length}`)),
    );
    if (!seqs.every((seq) => this.#taken(open, seq))) return false;
    this.stats.snapshots++;
    // Nothing before it to purge when a read just found the subject empty (a new session).
    if (!this.#empty.delete(open.subject)) this.#purgeBelow(open.subject, seqs[0]!);
    return true;
  }

  /** Whether a publish was taken; its sequence is then the session's last known one. */
  #taken(open: JournalSession, seq: number | undefined | 'conflict'): seq is number {
    if (typeof seq !== 'number') return false;
    if (seq > (open.lastSeq ?? 0)) open.lastSeq = seq;
    return true;
  }

  async #publish(
    js: JetStreamClient,
    subject: string,
    data: Buffer,
    part?: string,
    after?: number,
  ): Promise<number | undefined | 'conflict'> {
    const seq = await publishToJournal(js, subject, data, { part, node: this.#host.nodeName, after });
    if (typeof seq === 'number') this.stats.messages++;
    return seq;
  }

  #purgeBelow(subject: string, seq: number): void {
    this.#jsm?.streams.purge(JOURNAL_STREAM, { filter: subject, seq }).catch((err: Error) => {
      this.#host.logger.debug({ err: err.message, subject }, 'cluster: a session journal purge failed');
    });
  }

  /** A session's records did not reach the stream: counted, said once per outage, snapshot next time. */
  #drop(open: JournalSession, why: string): void {
    this.stats.dropped++;
    if (!open.deleted) {
      open.needSnapshot = true;
      if (this.#open.find(open.brokerId, open.clientId) === undefined) this.#open.keep(open);
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
   * The session of `clientId` on broker `brokerId` as its journal holds it, with the sequence
   * and the writer of the subject's last message (undefined: nothing on the subject). A stream
   * that does not answer (a leader being elected) is asked again every 250 ms for
   * `READ_DEADLINE_MS`; then this throws (the caller resumes without it, and says so).
   */
  async read(nc: NatsConnection, brokerId: string, clientId: string): Promise<JournalRead | undefined> {
    if (!(await this.#ready)) return undefined;
    const subject = journalSubject(brokerId, clientId);
    const started = Date.now();
    for (;;) {
      try {
        if (this.#jsm === undefined) throw new Error('the NATS link is down');
        const read = await readJournaled(nc, this.#jsm, this.#direct, subject, clientId, READ_TIMEOUT_MS);
        if (read === undefined) this.#empty.add(subject);
        else if (read.session !== undefined) this.stats.recovered++;
        return read;
      } catch (err) {
        if (Date.now() - started > READ_DEADLINE_MS) throw err;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  }

  /** The stream's clients while the journal is usable (orphan-sessions.ts reads and claims through them). */
  get usable(): { js: JetStreamClient; jsm: JetStreamManager; direct: boolean } | undefined {
    return this.#js === undefined || this.#jsm === undefined || this.#fenced
      ? undefined
      : { js: this.#js, jsm: this.#jsm, direct: this.#direct };
  }

  close(): void {
    clearInterval(this.#sweeper);
    this.down();
  }
}
