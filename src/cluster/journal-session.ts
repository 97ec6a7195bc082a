/**
 * One session as the journal writes it (session-journal.ts): its subject, its epoch, the records
 * of the current commit window, and what the journal knows of what it wrote.
 *
 * Invariant: within a window, a delivery's state change or removal folds into the window's `out`
 * record of it, as the SQLite store does, so a delivery put and acknowledged within one window
 * is never written; records keep their order otherwise.
 */
import type { JournalOp } from '../store/index.ts';
import { journalSubject } from './journal-stream.ts';

export class JournalSession {
  readonly brokerId: string;
  readonly clientId: string;
  readonly subject: string;
  /** Set by each snapshot (the records after it carry it); '' before the first. */
  epoch = '';
  /** This window's records; one put and then removed within it is left out (undefined). */
  #ops: (JournalOp | undefined)[] = [];
  /** Where this window's `out` records are, by seq. */
  #outs: Map<number, number> | undefined;
  /** Epoch ms of the last window it had records in (an idle one is let go). */
  writtenAt = 0;
  /** Its last write in flight, and the one before the write under way. */
  inflight: Promise<unknown> | undefined;
  before: Promise<unknown> | undefined;
  /** The stream sequence of the last message of it the stream took. */
  lastSeq: number | undefined;
  /** Removed (`del`): its last write empties the subject. */
  deleted = false;
  /** Its next write is a snapshot (new here, or records were lost). */
  needSnapshot = true;
  bytesSinceSnapshot = 0;
  snapshotBytes = 0;

  constructor(brokerId: string, clientId: string) {
    this.brokerId = brokerId;
    this.clientId = clientId;
    this.subject = journalSubject(brokerId, clientId);
  }

  /** Whether the window holds records. */
  get written(): boolean {
    return this.#ops.length > 0;
  }

  add(op: JournalOp): void {
    if (op.t === 'del') {
      this.deleted = true;
      this.#ops = [op];
      this.#outs = undefined;
      return;
    }
    if (op.t === 'ost' || op.t === 'dout') {
      const at = this.#outs?.get(op.seq);
      if (at !== undefined) {
        const put = this.#ops[at] as Extract<JournalOp, { t: 'out' }>;
        if (op.t === 'dout') {
          this.#ops[at] = undefined;
          this.#outs!.delete(op.seq);
        } else this.#ops[at] = { t: 'out', entry: { ...put.entry, state: op.state, packetId: op.packetId } };
        return;
      }
    }
    if (op.t === 'out') (this.#outs ??= new Map()).set(op.entry.seq, this.#ops.length);
    this.#ops.push(op);
  }

  /** The window's records, taken: the next window starts empty. */
  take(): JournalOp[] {
    const ops = this.#ops.filter((op) => op !== undefined);
    this.#ops = [];
    this.#outs = undefined;
    return ops;
  }
}

/**
 * The sessions the journal writes, by broker id and client id (session-journal.ts); the last one
 * asked for is kept at hand, as a session's writes come in runs.
 */
export class JournalSessions {
  readonly #open = new Map<string, Map<string, JournalSession>>();
  #last: JournalSession | undefined;

  /** The session's, made when missing. */
  get(brokerId: string, clientId: string): JournalSession {
    const last = this.#last;
    if (last !== undefined && last.clientId === clientId && last.brokerId === brokerId) return last;
    const open = this.find(brokerId, clientId) ?? this.keep(new JournalSession(brokerId, clientId));
    this.#last = open;
    return open;
  }

  find(brokerId: string, clientId: string): JournalSession | undefined {
    return this.#open.get(brokerId)?.get(clientId);
  }

  keep(open: JournalSession): JournalSession {
    let sessions = this.#open.get(open.brokerId);
    if (sessions === undefined) this.#open.set(open.brokerId, (sessions = new Map()));
    sessions.set(open.clientId, open);
    return open;
  }

  delete(brokerId: string, clientId: string): void {
    this.#open.get(brokerId)?.delete(clientId);
    if (this.#last?.clientId === clientId && this.#last.brokerId === brokerId) this.#last = undefined;
  }

  /** Lets go of every session `idle` says may go. */
  sweep(idle: (open: JournalSession) => boolean): void {
    for (const sessions of this.#open.values())
      for (const [clientId, open] of sessions)
        if (idle(open)) {
          sessions.delete(clientId);
          if (this.#last === open) this.#last = undefined;
        }
  }

  *all(): Iterable<JournalSession> {
    for (const sessions of this.#open.values()) yield* sessions.values();
  }
}
