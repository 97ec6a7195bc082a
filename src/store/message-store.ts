/**
 * Message state of every broker (tenant) behind one interface: retained messages, persistent
 * sessions (subscriptions, expiry deadline, will), queued and in-flight outbound QoS 1/2
 * messages and inbound QoS 2 packet ids awaiting PUBREL. Two adapters run one contract suite
 * (test/store/message-store.contract.ts): memory (tests, `--data-dir :memory:`) and SQLite.
 *
 * Invariants:
 * - Writes are synchronous calls that only record the change; an adapter commits them in
 *   groups (SQLite: one transaction per batch window). `afterCommit(fn)` runs `fn` once every
 *   write made before it is durable, or with the error that stopped it; the memory adapter
 *   has nothing to wait for and runs `fn` at once.
 * - Writes within a batch apply in call order; `load` sees every committed write.
 * - `seq` numbers of outbound entries come from `nextSeq()`: increasing, and after a restart
 *   above every stored one, so a session's entries load in the order they were queued.
 * - Only persistent sessions (v5 Session Expiry > 0, v3 clean session 0) are written, and only
 *   QoS 1/2 messages; the broker decides, the store does not check.
 * - A failed commit keeps its writes and retries; `failed` holds the error until a commit
 *   succeeds, and the broker refuses new QoS>0 messages meanwhile rather than ack unsaved ones.
 */

/** An application message as stored. `Message` (src/router/message.ts) satisfies it. */
import type { DurationHistogram } from '../observability/index.ts';
import type { Properties, QoS } from '../protocol/index.ts';

export interface StoredMessage {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: QoS;
  readonly retain: boolean;
  readonly properties: Properties | undefined;
  readonly senderId: string | undefined;
  /** Epoch ms the broker received it. */
  readonly receivedAt: number;
  /** Epoch ms after which it is no longer delivered; undefined: never expires. */
  readonly expiresAt: number | undefined;
}

export interface StoredSubscription {
  readonly topicFilter: string;
  readonly qos: QoS;
  readonly noLocal: boolean;
  readonly retainAsPublished: boolean;
  readonly retainHandling: 0 | 1 | 2;
  readonly subscriptionId: number | undefined;
}

/** A will waiting for its delay to pass (or for the session to end, whichever is first). */
export interface StoredWill {
  readonly message: StoredMessage;
  /** Epoch ms at which it is published. */
  readonly publishAt: number;
}

/** A session's own record; its subscriptions and messages are written separately. */
export interface StoredSessionState {
  readonly clientId: string;
  /** Seconds; 0xFFFFFFFF never expires. */
  readonly expiryInterval: number;
  /** Epoch ms the disconnected session expires; undefined while connected or never expiring. */
  readonly expiresAt: number | undefined;
  readonly will: StoredWill | undefined;
}

/** Where an outbound QoS 1/2 message is: queued, PUBLISH sent, or (QoS 2) PUBREC received. */
export type OutboundState = 'queued' | 'sent' | 'released';

export interface StoredOutbound {
  readonly seq: number;
  readonly state: OutboundState;
  /** The packet id it was sent with; 0 while queued. */
  readonly packetId: number;
  /** QoS and retain flag of this delivery (the message's own are in `message`). */
  readonly qos: 1 | 2;
  readonly retain: boolean;
  readonly subscriptionIds: number[] | undefined;
  readonly message: StoredMessage;
}

export interface StoredSession extends StoredSessionState {
  readonly subscriptions: StoredSubscription[];
  /** In `seq` order. */
  readonly outbound: StoredOutbound[];
  readonly inboundQos2: number[];
}

/** Everything stored for one broker, as loaded at start. */
export interface BrokerState {
  readonly retained: StoredMessage[];
  readonly sessions: StoredSession[];
}

export type CommitCallback = (error: Error | undefined) => void;

export interface MessageStore {
  /** Writes recorded but not yet committed. */
  readonly pending: boolean;
  /**
   * Writes recorded since the store opened: a count for tests and metrics. Whether one action
   * wrote is what the broker and session methods that write return, never read from here.
   */
  readonly writes: number;
  /** The last commit's error while commits fail; undefined when healthy. */
  readonly failed: Error | undefined;
  /** Seconds each commit transaction took, failed ones included (none for the memory adapter). */
  readonly commitSeconds: DurationHistogram;
  /** Commits that failed since the store opened (each retry counts). */
  readonly commitErrors: number;

  nextSeq(): number;

  putRetained(brokerId: string, message: StoredMessage): void;
  deleteRetained(brokerId: string, topic: string): void;

  /** Creates or replaces the session's own record. */
  putSession(brokerId: string, state: StoredSessionState): void;
  /** Removes the session with its subscriptions, outbound entries and inbound ids. */
  deleteSession(brokerId: string, clientId: string): void;
  /**
   * Removes a session handed to another cluster node: as `deleteSession` here, but nothing is
   * recorded beyond this node (journaled-message-store.ts). Absent: `deleteSession` does.
   */
  forget?(brokerId: string, clientId: string): void;

  putSubscription(brokerId: string, clientId: string, sub: StoredSubscription): void;
  deleteSubscription(brokerId: string, clientId: string, topicFilter: string): void;

  putOutbound(brokerId: string, clientId: string, entry: StoredOutbound): void;
  setOutboundState(
    brokerId: string,
    clientId: string,
    seq: number,
    state: OutboundState,
    packetId: number,
  ): void;
  deleteOutbound(brokerId: string, clientId: string, seq: number): void;

  addInboundQos2(brokerId: string, clientId: string, packetId: number): void;
  deleteInboundQos2(brokerId: string, clientId: string, packetId: number): void;

  /** Removes everything of a deleted broker. */
  deleteBroker(brokerId: string): void;

  /** Everything committed for a broker. Sessions in client-id order, retained in topic order. */
  load(brokerId: string): BrokerState;

  /** Runs `fn` once every write made so far is committed (or failed). */
  afterCommit(fn: CommitCallback): void;
  /** Commits pending writes now (shutdown, tests). */
  flush(): void;
  /** Flushes and releases the store; later writes are ignored. */
  close(): void;
}
