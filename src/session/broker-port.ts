/**
 * The broker (tenant) as a connection and its packet handlers use it: what a session needs of
 * its host (host.ts), plus what CONNECT needs (the broker's sessions by client id, opening,
 * ending and expiring one, its enhanced authenticators), its on-publish hooks and the gate
 * every client PUBLISH goes through. Stated here so that session/ imports nothing above it; the
 * Broker class (src/broker/broker.ts) implements it.
 */
import type { EnhancedAuthenticator } from '../auth/index.ts';
import type { BrokerHooks } from '../hooks/index.ts';
import type { PacketTraces } from '../observability/index.ts';
import type { SessionHost } from './host.ts';
import type { PublishGate } from './publish-gate.ts';
import type { Session } from './session.ts';

export interface BrokerPort extends SessionHost {
  /** `<broker>.<namespace>`: the broker's name in logs and client-event topics. */
  readonly address: string;
  /** Enhanced authentication methods offered to this broker's clients, by method name (section 4.12). */
  readonly authenticators: ReadonlyMap<string, EnhancedAuthenticator>;
  /** The broker's on-publish hook; undefined when it has none. */
  readonly hooks: BrokerHooks | undefined;
  readonly sessions: ReadonlyMap<string, Session>;
  /** The broker was deleted: it admits no one any more. */
  readonly closed: boolean;
  /** Where every client PUBLISH goes once its packet is valid. */
  readonly gate: PublishGate;
  /** The packet traces open on this broker (admin API `GET .../trace`). */
  readonly traces: PacketTraces;
  /**
   * The session for a connecting client: a clean start discards any existing one
   * [MQTT-3.1.2-4]; otherwise an existing one is resumed [MQTT-3.1.2-5].
   */
  openSession(clientId: string, cleanStart: boolean): { session: Session; present: boolean };
  /**
   * In a cluster, for a CONNECT with Clean Start 0 whose session is not here: fetches it from
   * the node holding it and adopts it here, so that `openSession` then resumes it. Undefined at
   * once when there is no other node to ask (single node: always).
   * False when it cannot be known (cluster: the journal unreachable): the CONNECT is refused.
   */
  fetchSession(clientId: string): Promise<boolean> | undefined;
  /** Cluster mode: true while this node is cut off and refuses persistent sessions. */
  readonly fenced: boolean;
  /** Ends a session now: publishes its pending will, removes its subscriptions and state. */
  endSession(session: Session): void;
  /** A session's expiry interval passed while it was disconnected [MQTT-4.1.0-2]. */
  expireSession(session: Session): void;
}
