/**
 * The memory adapter of MessageStore: for tests and `--data-dir :memory:`. Every write applies
 * at once, so there is never anything pending and `afterCommit` runs its callback immediately:
 * a broker on this adapter acks without waiting. Records are kept by reference (a `Message`
 * is its own StoredMessage), never copied.
 */
import { DurationHistogram } from '../observability/index.ts';
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
} from './message-store.ts';

interface SessionEntry {
  state: StoredSessionState | undefined;
  subscriptions: Map<string, StoredSubscription>;
  outbound: Map<number, StoredOutbound>;
  inbound: Set<number>;
}

interface BrokerEntry {
  retained: Map<string, StoredMessage>;
  sessions: Map<string, SessionEntry>;
}

export class MemoryMessageStore implements MessageStore {
  readonly pending = false;
  readonly failed = undefined;
  /** Nothing to commit in memory: stays empty, as `commitErrors` stays 0. */
  readonly commitSeconds = new DurationHistogram();
  readonly commitErrors = 0;
  writes = 0;
  #seq = 0;
  #closed = false;
  readonly #brokers = new Map<string, BrokerEntry>();

  nextSeq(): number {
    return ++this.#seq;
  }

  #broker(id: string): BrokerEntry {
    let b = this.#brokers.get(id);
    if (b === undefined) {
      b = { retained: new Map(), sessions: new Map() };
      this.#brokers.set(id, b);
    }
    return b;
  }

  /** The session's entry for a write; undefined once closed (writes are then ignored). */
  #session(brokerId: string, clientId: string): SessionEntry | undefined {
    if (this.#closed) return undefined;
    this.writes++;
    const sessions = this.#broker(brokerId).sessions;
    let s = sessions.get(clientId);
    if (s === undefined) {
      s = { state: undefined, subscriptions: new Map(), outbound: new Map(), inbound: new Set() };
      sessions.set(clientId, s);
    }
    return s;
  }

  putRetained(brokerId: string, message: StoredMessage): void {
    if (this.#closed) return;
    this.writes++;
    this.#broker(brokerId).retained.set(message.topic, message);
  }

  deleteRetained(brokerId: string, topic: string): void {
    if (this.#closed) return;
    this.writes++;
    this.#brokers.get(brokerId)?.retained.delete(topic);
  }

  putSession(brokerId: string, state: StoredSessionState): void {
    const s = this.#session(brokerId, state.clientId);
    if (s !== undefined) s.state = state;
  }

  deleteSession(brokerId: string, clientId: string): void {
    if (this.#closed) return;
    this.writes++;
    this.#brokers.get(brokerId)?.sessions.delete(clientId);
  }

  putSubscription(brokerId: string, clientId: string, sub: StoredSubscription): void {
    this.#session(brokerId, clientId)?.subscriptions.set(sub.topicFilter, sub);
  }

  deleteSubscription(brokerId: string, clientId: string, topicFilter: string): void {
    this.#session(brokerId, clientId)?.subscriptions.delete(topicFilter);
  }

  putOutbound(brokerId: string, clientId: string, entry: StoredOutbound): void {
    this.#session(brokerId, clientId)?.outbound.set(entry.seq, entry);
  }

  setOutboundState(
    brokerId: string,
    clientId: string,
    seq: number,
    state: OutboundState,
    packetId: number,
  ): void {
    const outbound = this.#session(brokerId, clientId)?.outbound;
    const entry = outbound?.get(seq);
    if (entry !== undefined) outbound!.set(seq, { ...entry, state, packetId });
  }

  deleteOutbound(brokerId: string, clientId: string, seq: number): void {
    this.#session(brokerId, clientId)?.outbound.delete(seq);
  }

  addInboundQos2(brokerId: string, clientId: string, packetId: number): void {
    this.#session(brokerId, clientId)?.inbound.add(packetId);
  }

  deleteInboundQos2(brokerId: string, clientId: string, packetId: number): void {
    this.#session(brokerId, clientId)?.inbound.delete(packetId);
  }

  deleteBroker(brokerId: string): void {
    if (this.#closed) return;
    this.writes++;
    this.#brokers.delete(brokerId);
  }

  load(brokerId: string): BrokerState {
    const b = this.#brokers.get(brokerId);
    if (b === undefined) return { retained: [], sessions: [] };
    const retained = [...b.retained.values()].sort((x, y) => compare(x.topic, y.topic));
    const sessions: StoredSession[] = [];
    for (const [clientId, s] of [...b.sessions].sort((x, y) => compare(x[0], y[0]))) {
      if (s.state === undefined) continue;
      sessions.push({
        ...s.state,
        clientId,
        subscriptions: [...s.subscriptions.values()].sort((x, y) => compare(x.topicFilter, y.topicFilter)),
        outbound: [...s.outbound.values()].sort((x, y) => x.seq - y.seq),
        inboundQos2: [...s.inbound].sort((x, y) => x - y),
      });
    }
    return { retained, sessions };
  }

  afterCommit(fn: CommitCallback): void {
    fn(undefined);
  }

  flush(): void {}

  close(): void {
    this.#closed = true;
  }
}

/** Code-unit order: SQLite's BINARY (UTF-8 byte) order wherever both are below U+D800. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
