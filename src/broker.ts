/**
 * A broker is a tenant: its own subscription index, retained messages, sessions and client-id
 * space. Nothing crosses brokers; one server process hosts many (tenancy arrives in a later
 * issue; the server already routes each connection to a Broker object).
 *
 * `publish` is the one entry for every message, from sockets, wills or in-process publishers:
 * retained store first, then one delivery per matching session (overlapping subscriptions
 * merged) and one member per matching shared group.
 */
import type { Config } from './config.ts';
import { RetainedStore } from './retained/index.ts';
import { type Message, TopicIndex } from './router/index.ts';
import { Session, type Subscription } from './session/session.ts';

/** Counters of one broker; every drop is counted here, never silent. */
export interface BrokerStats {
  messagesReceived: number;
  /** QoS 1/2 deliveries refused by a full session queue. */
  droppedQueueFull: number;
  /** Deliveries larger than the receiving client's Maximum Packet Size [MQTT-3.1.2-25]. */
  droppedTooLarge: number;
  /** QoS 0 deliveries to a connection whose unsent bytes exceeded the bound. */
  droppedCongested: number;
  sessionsExpired: number;
}

export class Broker {
  readonly id: string;
  readonly config: Config;
  readonly index = new TopicIndex<Session, Subscription>();
  readonly retained = new RetainedStore();
  readonly sessions = new Map<string, Session>();
  readonly stats: BrokerStats = {
    messagesReceived: 0,
    droppedQueueFull: 0,
    droppedTooLarge: 0,
    droppedCongested: 0,
    sessionsExpired: 0,
  };

  /** Set once the tenant is deleted: nothing more is routed or stored. */
  closed = false;

  constructor(id: string, config: Config) {
    this.id = id;
    this.config = config;
  }

  /**
   * The tenant is deleted: every connected client gets DISCONNECT 0x98 (administrative action),
   * every session, subscription, pending will and retained message is dropped, and later
   * publishes (a will of a closing connection) go nowhere.
   */
  close(): void {
    this.closed = true;
    for (const session of [...this.sessions.values()]) {
      session.link?.disconnect('ADMINISTRATIVE_ACTION', 'broker deleted');
      this.endSession(session);
    }
    this.retained.clear();
  }

  /** Routes a message to every matching subscription and applies it to the retained store. */
  publish(message: Message): void {
    if (this.closed) return;
    this.stats.messagesReceived++;
    if (message.retain) this.retained.apply(message); // [MQTT-3.3.1-5]
    const { subscribers, groups } = this.index.match(message.topic);
    for (let i = 0; i < subscribers.length; i++) {
      const s = subscribers[i]!;
      s.key.deliverMatched(message, s.values);
    }
    for (let i = 0; i < groups.length; i++) {
      // One member per group [MQTT-4.8.2-4]; a connected member is preferred.
      const picked = groups[i]!.pick((session) => session.link !== undefined) ?? groups[i]!.pick();
      if (picked !== undefined) picked[0].deliverMatched(message, [picked[1]]);
    }
  }

  /**
   * The session for a connecting client: a clean start discards any existing one
   * [MQTT-3.1.2-4]; otherwise an existing one is resumed [MQTT-3.1.2-5]. The caller has
   * already detached a connection that held it (takeover).
   */
  openSession(clientId: string, cleanStart: boolean): { session: Session; present: boolean } {
    const existing = this.sessions.get(clientId);
    if (existing !== undefined) {
      if (!cleanStart) return { session: existing, present: true };
      this.endSession(existing);
    }
    const session = new Session(clientId, this);
    this.sessions.set(clientId, session);
    return { session, present: false };
  }

  /** Ends a session now: publishes its pending will, removes its subscriptions and state. */
  endSession(session: Session): void {
    if (this.sessions.get(session.clientId) === session) this.sessions.delete(session.clientId);
    session.end();
  }

  /** A session's expiry interval passed while it was disconnected [MQTT-4.1.0-2]. */
  expireSession(session: Session): void {
    if (session.link !== undefined) return;
    this.stats.sessionsExpired++;
    this.endSession(session);
  }
}
