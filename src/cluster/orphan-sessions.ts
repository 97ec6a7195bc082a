/**
 * Sessions whose node is gone are adopted by a surviving node (issue 19): a persistent session
 * keeps its subscriptions live, so what is published for it while its client is away is queued
 * (and journaled) as on one node, its expiry runs, and its client resumes it anywhere (asked of
 * the adopting node). Without this a dead node's sessions would be no node's until their client
 * came back: nothing would be queued for them meanwhile, and a session whose client never came
 * back would stay in the journal.
 *
 * - When: whenever the membership forgets a node (silent for 6 s, or it said goodbye), the live
 *   node whose name sorts first (this one, when so) scans the journal; a scan asked while one
 *   runs runs again after it.
 * - What: the last message of every session's subject (one ordered consumer, last per subject)
 *   says who wrote it (journal-restart.ts `writerOf`); a session whose writer is no live node
 *   (nor this one) and which was not removed is an orphan. Then one pass over the stream up to
 *   the orphans' last messages rebuilds them (journal-replay.ts).
 * - Claim, then adopt: for each, a claim (an empty record of this node's) is published with the
 *   expected last sequence being the one the scan saw; taken, the session is adopted here
 *   detached, as a handed-over one (session-moves.ts), without its will: the will records
 *   publish a dead node's wills (will-records.ts), once. Not taken (someone wrote since: a client
 *   resumed it elsewhere, or another node claimed it), it is left alone. A CONNECT reading the
 *   journal claims the same way (session-handover.ts), so one node holds a session.
 * - Bound: the journal's whole last-per-subject set and the orphans' messages are read once per
 *   scan; sessions of brokers not open here are left alone.
 */
import { DeliverPolicy, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { Broker } from '../broker/index.ts';
import { decodeJournal } from './journal-codec.ts';
import { JournalReplay, readStream } from './journal-replay.ts';
import { writerOf } from './journal-restart.ts';
import { claimSession, inParallel, JOURNAL_STREAM } from './journal-stream.ts';
import { escapeLevel, ROOT } from './subjects.ts';

/** The longest a scan's read takes before it is given up (tried again at the next forget). */
const SCAN_TIMEOUT_MS = 60_000;

export interface OrphanHost {
  readonly nodeName: string;
  readonly logger: Logger;
  connection(): NatsConnection | undefined;
  /** The other nodes known now. */
  peers(): string[];
  brokers(): Iterable<Broker>;
  /** The journal's clients while it is usable (undefined: not now). */
  journal(): { js: JetStreamClient; jsm: JetStreamManager } | undefined;
}

export class OrphanSessions {
  readonly #host: OrphanHost;
  /** Sessions adopted (metrics: pubsub_cluster_orphan_sessions_adopted_total). */
  adopted = 0;
  #running: Promise<void> | undefined;
  #again = false;

  constructor(host: OrphanHost) {
    this.#host = host;
  }

  /** A node was forgotten: its sessions (and any other orphan's) are adopted by the first live node. */
  nodeGone(): void {
    const self = this.#host.nodeName;
    if (this.#host.peers().some((name) => name < self)) return; // another live node sorts first
    if (this.#running !== undefined) {
      this.#again = true;
      return;
    }
    this.#running = this.#scan()
      .catch((err: Error) =>
        this.#host.logger.warn(
          { event: 'cluster_orphans_scan_failed', err: err.message },
          'cluster: sessions of a node gone were not adopted',
        ),
      )
      .finally(() => {
        this.#running = undefined;
        if (this.#again) {
          this.#again = false;
          this.nodeGone();
        }
      });
  }

  async #scan(): Promise<void> {
    const nc = this.#host.connection();
    const journal = this.#host.journal();
    if (nc === undefined || journal === undefined) return;
    const info = await journal.jsm.streams.info(JOURNAL_STREAM);
    if (info.state.messages === 0) return;
    const live = new Set([...this.#host.peers(), this.#host.nodeName]);
    const brokers = new Map([...this.#host.brokers()].map((b) => [escapeLevel(b.id), b] as const));
    // Pass 1: the last message of every session's subject, and so its writer.
    const orphans = new Map<string, number>();
    let until = 0;
    await this.#read(nc, DeliverPolicy.LastPerSubject, (m) => {
      const writer = writerOf(m.data, m.headers);
      if (writer === '' || live.has(writer) || removed(m.data, m.headers?.has('Pubsub-Snapshot')))
        return false;
      if (!brokers.has(m.subject.split('.')[2]!)) return false;
      orphans.set(m.subject, m.seq);
      until = Math.max(until, m.seq);
      return false;
    });
    if (orphans.size === 0) return;
    // Pass 2: the orphans rebuilt from their messages, up to the last one pass 1 saw.
    const replays = new Map<string, JournalReplay>();
    await this.#read(nc, DeliverPolicy.All, (m) => {
      if (orphans.has(m.subject)) {
        let replay = replays.get(m.subject);
        if (replay === undefined) replays.set(m.subject, (replay = new JournalReplay('')));
        replay.apply(m.data, m.headers?.get('Pubsub-Snapshot'));
      }
      return m.seq >= until;
    });
    // Claimed and adopted, several claims in flight at once.
    let adopted = 0;
    await inParallel([...orphans], async ([subject, seq]) => {
      const session = replays.get(subject)?.session();
      const broker = brokers.get(subject.split('.')[2]!);
      if (session === undefined || broker === undefined || broker.closed) return;
      if (broker.sessions.has(session.clientId)) return; // its client connected here meanwhile
      if (!(await claimSession(journal.js, subject, seq, this.#host.nodeName))) return;
      broker.adoptSession({ ...session, will: undefined });
      adopted++;
    });
    this.adopted += adopted;
    if (adopted > 0)
      this.#host.logger.info(
        { event: 'cluster_sessions_adopted', sessions: adopted },
        `cluster: ${adopted} session(s) of nodes gone adopted here`,
      );
  }

  /**
   * Reads the journal's session subjects from `policy` until `done` says so or nothing is left;
   * a message that does not decode is skipped (logged).
   */
  async #read(nc: NatsConnection, policy: DeliverPolicy, done: (m: JsMsg) => boolean): Promise<void> {
    const finished = await readStream(nc, JOURNAL_STREAM, `${ROOT}.s.>`, policy, SCAN_TIMEOUT_MS, (m) => {
      try {
        if (done(m)) return true;
      } catch (err) {
        this.#host.logger.warn(
          { err: (err as Error).message, subject: m.subject },
          'cluster: a journal message was skipped',
        );
      }
      return m.info.pending === 0;
    });
    if (!finished) throw new Error(`the session journal was not read within ${SCAN_TIMEOUT_MS} ms`);
  }
}

/** Whether a subject's last message is a session's removal. */
function removed(data: Uint8Array, part: boolean | undefined): boolean {
  if (part === true) return false;
  try {
    return decodeJournal(data).ops.some((op) => op.t === 'del');
  } catch {
    return false;
  }
}
