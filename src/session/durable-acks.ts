/**
 * Acknowledgements that vouch for stored state (PUBACK, PUBREC, PUBCOMP, PUBREL) of one
 * connection, held until the store commit holding that state.
 *
 * Invariants:
 * - An acknowledgement waits when the action wrote to the message store and the store has a
 *   commit pending; once one waits, later ones (refusals included) queue behind it, so they
 *   leave in PUBLISH order [MQTT-4.6.0-2], [MQTT-4.6.0-3].
 * - A failed commit never yields a success: v5 PUBACK/PUBREC carry 0x80 Unspecified error
 *   (STORAGE_UNAVAILABLE; a refused QoS 2 id is released so a re-send is decided again); any
 *   other case closes the connection.
 */
import { type ErrorCode, reasonCodeOf } from '../errors.ts';
import type { ProtocolVersion, PubackPacket } from '../protocol/index.ts';
import type { MessageStore } from '../store/index.ts';

/** What the acknowledgements need of their connection. */
export interface AckWriter {
  readonly version: ProtocolVersion;
  readonly session: { releaseInboundQos2(packetId: number): void } | undefined;
  send(packet: PubackPacket): void;
  sendWithReason(packet: PubackPacket, reason: string): void;
  disconnect(code: ErrorCode, detail: string): void;
}

export class DurableAcks {
  readonly #conn: AckWriter;
  /** Acknowledgements waiting for a store commit. */
  #waiting = 0;

  constructor(conn: AckWriter) {
    this.#conn = conn;
  }

  /**
   * Sends `packet` once what it vouches for is committed: at once when `wrote` is false and no
   * earlier acknowledgement waits (or `store` has nothing pending), else after the commit.
   */
  send(store: MessageStore, packet: PubackPacket, wrote: boolean): void {
    if ((!wrote && this.#waiting === 0) || !store.pending) {
      this.#conn.send(packet);
      return;
    }
    this.#waiting++;
    store.afterCommit((error) => {
      this.#waiting--;
      if (error === undefined) this.#conn.send(packet);
      else this.#failed(packet);
    });
  }

  /** A refusing PUBACK/PUBREC with a Reason String, behind any acknowledgement still waiting. */
  refuse(store: MessageStore, packet: PubackPacket, reason: string): void {
    if (this.#waiting === 0) {
      this.#conn.sendWithReason(packet, reason);
      return;
    }
    this.#waiting++;
    store.afterCommit(() => {
      this.#waiting--;
      this.#conn.sendWithReason(packet, reason);
    });
  }

  #failed(packet: PubackPacket): void {
    const conn = this.#conn;
    if (conn.version === 5 && (packet.type === 'puback' || packet.type === 'pubrec')) {
      if (packet.type === 'pubrec') conn.session?.releaseInboundQos2(packet.packetId);
      conn.sendWithReason(
        { ...packet, reasonCode: reasonCodeOf('STORAGE_UNAVAILABLE') },
        'message store unavailable',
      );
      return;
    }
    conn.disconnect('STORAGE_UNAVAILABLE', `message store unavailable: ${packet.type} not sent`);
  }
}
