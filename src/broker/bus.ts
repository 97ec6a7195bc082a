/**
 * What a broker sees of the cluster (src/cluster sits above and implements it): one `BrokerBus`
 * per broker, set on `Broker.bus` only in cluster mode. Single node: the field stays undefined
 * and `publish` pays one field read for it.
 */
import type { Message } from '../router/index.ts';

export interface BrokerBus {
  /**
   * A message published on this node (client, will, hook, in-process): sent to the other nodes
   * whose sessions want it, within this event-loop turn. True when some other node wants it (a
   * v5 publisher is then not told 0x10 No matching subscribers). Never throws; the message is
   * read during the call and not kept.
   */
  forward(message: Message): boolean;
  /**
   * A client of this broker is opening its session here: the other nodes close their connection
   * of that client id (DISCONNECT 0x8E), as a takeover on one node does [MQTT-3.1.4-3].
   */
  claim(clientId: string): void;
  /**
   * A retained message was stored here (`message`) or its topic cleared (undefined: an empty
   * retained PUBLISH, or the admin API's delete): every node's retained store follows, in one
   * order the same on every node (src/cluster/retained-sync.ts). Never throws; the message is
   * read during the call and not kept.
   */
  retained(topic: string, message: Message | undefined): void;
  /** The broker is closing: its interest is withdrawn and nothing more is forwarded. */
  close(): void;
}
