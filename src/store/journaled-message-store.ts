/**
 * A message store whose session writes also go to a journal outside the node (cluster mode:
 * src/cluster/session-journal.ts, a JetStream stream), so that another node can resume a
 * session when this one dies with its disk. The wrapped store (SQLite) stays the node's own
 * copy, loaded at start as on one node.
 *
 * Invariants:
 * - Every call goes to the wrapped store first, unchanged; the session writes (a session's
 *   record, subscriptions, outbound entries and states, inbound QoS 2 ids, a session's removal)
 *   are then recorded in the journal, in call order. Retained messages are not: the cluster
 *   keeps those in a stream of its own (src/cluster/retained-sync.ts).
 * - `afterJournal(fn)` runs `fn` once the wrapped store committed every earlier write and the
 *   journal holds every earlier record (or gave up on it: it says so itself), with the error of
 *   either (a journal that will not have them: a node cut off from the cluster). Without a
 *   journal attached yet (at start, before the cluster link) it is the wrapped store's.
 * - `afterCommit(fn)`, what acknowledgements wait for, also waits for the gates (src/cluster:
 *   delivery-confirms.ts, the other nodes a QoS 1/2 message crossed to hold it; retained-sync.ts,
 *   the cluster's retained stream holds the retained writes), so a PUBACK vouches for the
 *   message wherever it went. The gate's own answers to other
 *   nodes wait for `afterJournal` only, so two nodes never wait for each other.
 * - `forget` takes a session out of this store without a journal record: a session handed to
 *   another node lives on there, and that node's journal records supersede this node's.
 */
import type { DurationHistogram } from '../observability/index.ts';
import type {
  BrokerState,
  CommitCallback,
  MessageStore,
  OutboundState,
  StoredOutbound,
  StoredSessionState,
  StoredSubscription,
} from './message-store.ts';

/** A session write as the journal records it. */
export type JournalOp =
  | { readonly t: 'state'; readonly state: StoredSessionState }
  | { readonly t: 'del' }
  | { readonly t: 'sub'; readonly sub: StoredSubscription }
  | { readonly t: 'unsub'; readonly filter: string }
  | { readonly t: 'out'; readonly entry: StoredOutbound }
  | { readonly t: 'ost'; readonly seq: number; readonly state: OutboundState; readonly packetId: number }
  | { readonly t: 'dout'; readonly seq: number }
  | { readonly t: 'in'; readonly packetId: number }
  | { readonly t: 'din'; readonly packetId: number };

/** What acknowledgements also wait for beyond this node's writes (a settled-in-order ticket queue). */
export interface CommitGate {
  readonly pending: boolean;
  /** Runs `fn` once everything before the call is settled, with the error of what failed. */
  whenConfirmed(fn: (error?: Error) => void): void;
}

/** Where session writes are recorded beyond this node. */
export interface SessionJournal {
  record(brokerId: string, clientId: string, op: JournalOp): void;
  /** The session left this node (handed over): nothing is recorded, its next write starts afresh. */
  forget(brokerId: string, clientId: string): void;
  /**
   * Runs `fn` once every record made so far is held (or given up on, logged and counted), with
   * an error when the journal will not have them and says so (a node cut off: session-fence.ts).
   */
  whenRecorded(fn: (error?: Error) => void): void;
  /** Records made that are not yet held (nor given up on). */
  readonly pending: boolean;
}

export class JournaledMessageStore implements MessageStore {
  readonly #inner: MessageStore;
  #journal: SessionJournal | undefined;
  #gates: readonly CommitGate[] = [];

  constructor(inner: MessageStore) {
    this.#inner = inner;
  }

  /** Session writes from now on also go to `journal`. */
  attach(journal: SessionJournal | undefined): void {
    this.#journal = journal;
  }

  /** Acknowledgements from now on also wait for `gates` (none: no longer). */
  gate(...gates: CommitGate[]): void {
    this.#gates = gates;
  }

  get pending(): boolean {
    return this.#inner.pending || this.#journal?.pending === true || this.#gates.some((g) => g.pending);
  }
  get writes(): number {
    return this.#inner.writes;
  }
  get failed(): Error | undefined {
    return this.#inner.failed;
  }
  get commitSeconds(): DurationHistogram {
    return this.#inner.commitSeconds;
  }
  get commitErrors(): number {
    return this.#inner.commitErrors;
  }

  nextSeq(): number {
    return this.#inner.nextSeq();
  }

  putRetained(brokerId: string, message: Parameters<MessageStore['putRetained']>[1]): void {
    this.#inner.putRetained(brokerId, message);
  }
  deleteRetained(brokerId: string, topic: string): void {
    this.#inner.deleteRetained(brokerId, topic);
  }

  putSession(brokerId: string, state: StoredSessionState): void {
    this.#inner.putSession(brokerId, state);
    this.#journal?.record(brokerId, state.clientId, { t: 'state', state });
  }
  deleteSession(brokerId: string, clientId: string): void {
    this.#inner.deleteSession(brokerId, clientId);
    this.#journal?.record(brokerId, clientId, { t: 'del' });
  }
  forget(brokerId: string, clientId: string): void {
    this.#inner.deleteSession(brokerId, clientId);
    this.#journal?.forget(brokerId, clientId);
  }

  putSubscription(brokerId: string, clientId: string, sub: StoredSubscription): void {
    this.#inner.putSubscription(brokerId, clientId, sub);
    this.#journal?.record(brokerId, clientId, { t: 'sub', sub });
  }
  deleteSubscription(brokerId: string, clientId: string, topicFilter: string): void {
    this.#inner.deleteSubscription(brokerId, clientId, topicFilter);
    this.#journal?.record(brokerId, clientId, { t: 'unsub', filter: topicFilter });
  }

  putOutbound(brokerId: string, clientId: string, entry: StoredOutbound): void {
    this.#inner.putOutbound(brokerId, clientId, entry);
    this.#journal?.record(brokerId, clientId, { t: 'out', entry });
  }
  setOutboundState(
    brokerId: string,
    clientId: string,
    seq: number,
    state: OutboundState,
    packetId: number,
  ): void {
    this.#inner.setOutboundState(brokerId, clientId, seq, state, packetId);
    this.#journal?.record(brokerId, clientId, { t: 'ost', seq, state, packetId });
  }
  deleteOutbound(brokerId: string, clientId: string, seq: number): void {
    this.#inner.deleteOutbound(brokerId, clientId, seq);
    this.#journal?.record(brokerId, clientId, { t: 'dout', seq });
  }

  addInboundQos2(brokerId: string, clientId: string, packetId: number): void {
    this.#inner.addInboundQos2(brokerId, clientId, packetId);
    this.#journal?.record(brokerId, clientId, { t: 'in', packetId });
  }
  deleteInboundQos2(brokerId: string, clientId: string, packetId: number): void {
    this.#inner.deleteInboundQos2(brokerId, clientId, packetId);
    this.#journal?.record(brokerId, clientId, { t: 'din', packetId });
  }

  deleteBroker(brokerId: string): void {
    this.#inner.deleteBroker(brokerId);
  }

  load(brokerId: string): BrokerState {
    return this.#inner.load(brokerId);
  }

  afterCommit(fn: CommitCallback): void {
    if (!this.#gates.some((g) => g.pending)) return this.afterJournal(fn);
    const waits: ((done: CommitCallback) => void)[] = [(done) => this.afterJournal(done)];
    for (const gate of this.#gates) if (gate.pending) waits.push((done) => gate.whenConfirmed(done));
    allOf(fn, waits);
  }

  /** `fn` once the wrapped store and the journal hold every earlier write (see the header). */
  afterJournal(fn: CommitCallback): void {
    const journal = this.#journal;
    if (journal === undefined) return this.#inner.afterCommit(fn);
    allOf(fn, [(done) => this.#inner.afterCommit(done), (done) => journal.whenRecorded(done)]);
  }

  flush(): void {
    this.#inner.flush();
  }
  close(): void {
    this.#journal = undefined;
    this.#inner.close();
  }
}

/** `fn` once every one of `waits` has called back, with the first error any gave. */
function allOf(fn: CommitCallback, waits: readonly ((done: CommitCallback) => void)[]): void {
  let waiting = waits.length;
  let error: Error | undefined;
  const done = (e?: Error): void => {
    error ??= e;
    if (--waiting === 0) fn(error);
  };
  for (const wait of waits) wait(done);
}
