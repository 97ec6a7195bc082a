/**
 * What a broker sees of the cluster (src/cluster sits above and implements it): one `BrokerBus`
 * per broker, set on `Broker.bus` only in cluster mode. Single node: the field stays undefined
 * and `publish` pays one field read for it.
 */
import type { Message } from '../router/index.ts';
import type { SessionGroup } from '../session/index.ts';
import type { StoredSession } from '../store/index.ts';

/**
 * A session handed over by another node, and the name of its move (session-moves.ts); no move
 * for one read from the cluster's journal (its node is gone: no tail comes).
 */
export interface FetchedSession {
  readonly session: StoredSession;
  readonly move: string | undefined;
}

export interface BrokerBus {
  /**
   * A message published on this node (client, will, hook, in-process): sent to the other nodes
   * whose sessions want it, within this event-loop turn. True when some other node wants it (a
   * v5 publisher is then not told 0x10 No matching subscribers; a QoS 1/2 one's acknowledgement
   * waits for the store's commit, which waits for those nodes to hold it). Never throws; the
   * message is read during the call and not kept.
   */
  forward(message: Message): boolean;
  /**
   * A client of this broker is opening its session here: the other nodes close their connection
   * of that client id (DISCONNECT 0x8E), as a takeover on one node does [MQTT-3.1.4-3], and with
   * `cleanStart` end their session of it [MQTT-3.1.2-4].
   */
  claim(clientId: string, cleanStart: boolean): void;
  /**
   * A client connects here with Clean Start 0 and no session here: the session another node
   * holds, handed over (that node closes its connection, 0x8E, and forgets the session); the
   * promise gives undefined when no node has one. Undefined at once when there is no other
   * node to ask (src/cluster/session-handover.ts). The session comes with the name of its
   * move: its deliveries are held until that node sends its tail (Broker.endMove).
   */
  fetchSession(clientId: string): Promise<FetchedSession | undefined | 'unavailable'> | undefined;
  /**
   * True while this node is cut off from the cluster and so serves no persistent session: a
   * CONNECT asking for one is refused (src/cluster/session-fence.ts).
   */
  readonly fenced: boolean;
  /**
   * The will this node holds for `clientId` may have changed (Broker.heldWill says what it is
   * now): the cluster keeps it where a surviving node publishes it if this one dies.
   */
  willChanged(clientId: string): void;
  /**
   * A shared group of this node matched a message published here: true when the bus gave it to
   * a member on another node (one member per group in the whole cluster, chosen by the broker's
   * strategy); false, a member here is to get it. Asked only for messages a group matches.
   */
  placeShared(group: SessionGroup, message: Message): boolean;
  /**
   * A member handed a shared message back and no other member here takes it: true when a member
   * of the group on another node will (section 4.8.2).
   */
  redeliverShared(group: SessionGroup, message: Message): boolean;
  /**
   * A retained message was stored here (`message`) or its topic cleared (undefined: an empty
   * retained PUBLISH, or the admin API's delete): every node's retained store follows, in one
   * order the same on every node (src/cluster/retained-sync.ts). Never throws; the message is
   * read during the call and not kept.
   */
  retained(topic: string, message: Message | undefined): void;
  /**
   * The broker is being deleted through this node's API (called once, on that node, before
   * `close`; not when a node only follows a deletion made elsewhere): its cluster-wide state
   * (retained messages) goes too.
   */
  deleted(): void;
  /** The broker is closing: its interest is withdrawn and nothing more is forwarded. */
  close(): void;
}
