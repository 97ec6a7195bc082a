/**
 * A broker's sessions as they move between cluster nodes and as other nodes need to see them
 * (src/cluster: session-handover.ts, will-records.ts): a session leaving this node whole, one
 * arriving from another node, and the will this node holds for a client.
 *
 * Invariants:
 * - A session handed over leaves nothing here: no connection (closed 0x8E first), no will
 *   published, nothing in the store; `handOver` gives undefined when the session ended with its
 *   connection (Session Expiry 0), as a takeover on one node would.
 * - An adopted session is detached, as one restored at start: its waiting will and its expiry
 *   run until a connection attaches, which cancels both [MQTT-3.1.3-9]. It never replaces a
 *   session of its client id opened here meanwhile (that one is newer).
 * - Between the two, nothing routed to the session is lost: the leaving node relays what is
 *   routed to it there (session-relay.ts) and the arriving node holds its deliveries until that
 *   tail comes, then delivers the tail and what it held, each message once (move-hold.ts).
 */
import { Message } from '../router/index.ts';
import { MoveHold, Session, type SessionHost, willOf } from '../session/index.ts';
import type { StoredSession } from '../store/index.ts';
import { SessionRelay } from './session-relay.ts';

/** What these need of the broker (broker.ts). */
export interface SessionsHost extends SessionHost {
  readonly sessions: Map<string, Session>;
  endSession(session: Session): void;
  expireSession(session: Session): void;
}

/** A session leaving this node: its state, and the relay collecting its tail (session-relay.ts). */
export interface SessionLeaving {
  readonly session: StoredSession;
  readonly relay: SessionRelay;
}

/**
 * The session of `clientId`, out of this node for `node` (undefined: none here), its plain
 * subscriptions relayed until the caller ends the relay. A session still holding deliveries
 * from its own arrival lets them go into its state first (no tail is coming for it now).
 */
export function handOver(host: SessionsHost, clientId: string, node: string): SessionLeaving | undefined {
  host.sessions
    .get(clientId)
    ?.link?.disconnect('SESSION_TAKEN_OVER', `session taken over by a connection on node ${node}`);
  const session = host.sessions.get(clientId);
  if (session === undefined || session.link !== undefined) return undefined;
  if (session.moving !== undefined) endMove(session, session.moving.move, []);
  host.sessions.delete(clientId);
  const relay = new SessionRelay(host.index, clientId, session.subscriptions.values(), holdLimit(host));
  const stored = session.handOver();
  host.willChanged(clientId); // its will is the other node's now
  return { session: stored, relay };
}

/**
 * A copy restored from this node's disk that another node has resumed since (the cluster's
 * journal says so): it leaves without a trace, as one handed over (no will, nothing recorded).
 */
export function discard(host: SessionsHost, clientId: string): void {
  const session = host.sessions.get(clientId);
  if (session === undefined || session.link !== undefined) return;
  host.sessions.delete(clientId);
  session.handOver();
  host.willChanged(clientId);
}

/**
 * A session from another node, restored and written here. Dropped when a session of that client
 * id opened here meanwhile (a later CONNECT while this one was fetched: the newest wins). With
 * `move`, its deliveries are held until the node it left sends its tail (`endMove`).
 */
export function adopt(host: SessionsHost, stored: StoredSession, move?: string): void {
  if (host.sessions.has(stored.clientId)) return;
  const session = new Session(stored.clientId, host);
  if (move !== undefined) session.moving = new MoveHold(move, holdLimit(host));
  session.restore(stored, true);
  host.sessions.set(stored.clientId, session);
  const now = Date.now();
  const will = stored.will;
  if (will !== undefined)
    session.delayWill(Message.fromStored(will.message), Math.max(0, will.publishAt - now) / 1000);
  if (!session.resumeExpiry(stored.expiresAt, now, () => host.expireSession(session)))
    host.expireSession(session);
  host.willChanged(stored.clientId);
}

/**
 * The node `session` came from sent its tail for `move` (or never will: `tail` empty): the tail
 * is delivered by the session's own subscriptions, then what was held, each message once
 * (move-hold.ts). Undefined when the session holds nothing for `move`.
 */
export function endMove(session: Session, move: string, tail: readonly Message[]): MoveEnded | undefined {
  const hold = session.moving;
  if (hold === undefined || hold.move !== move) return undefined;
  session.moving = undefined;
  const index = session.broker.index;
  const copies = hold.release(
    tail,
    (message) => {
      const mine = index.match(message.topic).subscribers.find((s) => s.key === session);
      if (mine !== undefined) session.deliverMatched(message, mine.values);
    },
    (d) => session.deliver(d.message, d.qos, d.retain, d.subscriptionIds, d.group),
  );
  return { copies, dropped: hold.dropped };
}

/** How a move ended: held deliveries that were copies of the tail's, and those dropped (full). */
export interface MoveEnded {
  readonly copies: number;
  readonly dropped: number;
}

/** How many messages a relay or a hold keeps at most: ten queues' worth, 10,000 at least. */
function holdLimit(host: SessionsHost): number {
  return Math.max(10_000, 10 * host.limits.maxQueuedMessages);
}

/** A will this node holds: the message, and when it is published if the holder goes. */
export interface HeldWill {
  readonly message: Message;
  /** Seconds after its connection closes (a connected client's will); 0: at once. */
  readonly delaySeconds: number;
  /** Epoch ms it is due (a will already waiting for its delay); undefined for a connected client's. */
  readonly publishAt: number | undefined;
}

/** The will held for `session`: one waiting for its delay, or its connection's (undefined: none). */
export function heldWill(session: Session | undefined): HeldWill | undefined {
  if (session === undefined) return undefined;
  const pending = session.pendingWill;
  if (pending !== undefined)
    return { message: pending.message, delaySeconds: 0, publishAt: pending.publishAt };
  const link = session.link;
  if (link?.heldWill === undefined) return undefined;
  const { message, delay } = willOf(link.heldWill, link, session);
  return { message, delaySeconds: delay, publishAt: undefined };
}
