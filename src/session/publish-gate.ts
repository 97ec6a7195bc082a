/**
 * The one gate of a client's PUBLISH: what becomes of a message once handlers/publish.ts has
 * found its packet valid. In order:
 *   authorize (no reserved `$` topic, the token's topic ACL) → refuse QoS 1/2 while the
 *   message store fails →
 *   the broker's on-publish hook, when it has one (routing waits for the hook's decision) →
 *   route (`PublishHost.publish`: retained store, fan-out, the writes persistent sessions make) →
 *   acknowledge (PUBACK/PUBREC) in PUBLISH order [MQTT-4.6.0-2], [MQTT-4.6.0-3], after the
 *   commit when something was written (the durability contract, docs/persistence.md).
 *
 * Whether an acknowledgement waits for a commit is returned, not guessed: `publish(message)`
 * says whether routing wrote to the store and `addInboundQos2` whether recording the QoS 2 id
 * did; the gate passes their answer to `sendDurable`. `publish` also says whether any
 * subscription matched: a v5 publisher whose QoS 1/2 message matched none is told so with
 * 0x10 No matching subscribers (sections 3.4.2.1, 3.5.2.1), as mosquitto and EMQX tell it,
 * retained or not (the retained store is not a subscriber). With a hook that is known once the
 * hook has decided (`--hook-ack after`); a message the hook drops, or an ack sent before the
 * hook decides (`before`), says 0x00.
 *
 * This is the seam the cluster plugs into: the gate sees its broker only as a `PublishHost`,
 * so local routing and forwarding to other nodes can sit behind `publish` (returning whether
 * the acknowledgement must wait) without a change to the handlers or to the ack rules here.
 *
 * With a hook, the acknowledgement's place is reserved at once and filled when the hook
 * decides (`--hook-ack after`, the default), or it is sent at once (`before`); a QoS 2 id is
 * recorded at once, so a re-sent PUBLISH is not decided twice [MQTT-4.3.3-10].
 *
 * A fan-out split across turns (`ROUTED_PENDING`, src/broker/fan-out.ts) is answered the same
 * way: the acknowledgement's place is reserved and filled, after the commit of what the
 * deliveries wrote, once the last one is made (`whenRouted`); the publisher's input is held
 * (HOLD_FANOUT) until the broker's fan-out queue is empty, so its flood waits, not the loop.
 */
import type { Logger } from 'pino';
import { type ClientIdentity, mayPublish, type TopicAcl } from '../auth/index.ts';
import type { Config } from '../config.ts';
import { type ErrorCode, reasonCodeOf } from '../errors.ts';
import type { BrokerHooks, OnPublishPipeline, Pausable } from '../hooks/index.ts';
import { type ProtocolVersion, type PubackPacket, type QoS, ReasonCode } from '../protocol/index.ts';
import type { Message } from '../router/index.ts';
import type { MessageStore } from '../store/index.ts';
import { type BrokerStats, ROUTED_MATCHED, ROUTED_PENDING, ROUTED_WROTE, type Routed } from './host.ts';
import { HOLD_FANOUT, type InputHold } from './input-holds.ts';
import type { OrderedAcks } from './ordered-acks.ts';

/** What the gate needs of the broker a message is published to. */
export interface PublishHost {
  readonly config: Config;
  readonly store: MessageStore;
  readonly stats: BrokerStats;
  readonly hooks: BrokerHooks | undefined;
  /** Routes a message: whether that wrote to the message store and whether anything matched. */
  publish(message: Message): Routed;
  /**
   * After `publish` said `ROUTED_PENDING`: `done` gets the message's final bits once delivered,
   * `drained` runs once nothing is pending; neither runs if the broker is deleted first.
   */
  whenRouted(done: (routed: Routed) => void, drained: () => void): void;
}

/** The connection a PUBLISH came from, as the gate answers it. */
export interface Publisher extends Pausable {
  readonly clientId: string;
  readonly version: ProtocolVersion;
  readonly identity: ClientIdentity | undefined;
  readonly closed: boolean;
  readonly log: Logger;
  /** PUBACK/PUBREC in PUBLISH order while some wait for an on-publish hook. */
  readonly acks: OrderedAcks;
  /** Sends an acknowledgement, after the commit when `wrote` (Connection.sendDurable). */
  sendDurable(packet: PubackPacket, wrote: boolean): void;
  /** Sends a refusing PUBACK/PUBREC with a Reason String, behind acknowledgements still waiting. */
  sendRefusal(packet: PubackPacket, reason: string): void;
  disconnect(code: ErrorCode, detail: string): void;
  /** Stops reading its input for `reason` until `releaseInput(reason)` (input-holds.ts). */
  holdInput(reason: InputHold): void;
  releaseInput(reason: InputHold): void;
}

/** The publisher's session, for the inbound QoS 2 ids awaiting PUBREL [MQTT-4.3.3-9]. */
export interface InboundQos2 {
  /** True when recording the id wrote to the message store. */
  addInboundQos2(packetId: number): boolean;
  releaseInboundQos2(packetId: number): unknown;
}

const HOOK_FAILED = reasonCodeOf('HOOK_FAILED');

/**
 * Topics the server keeps from clients (section 4.7.2: the Server SHOULD prevent Clients from
 * using `$` topics to exchange messages with other Clients): `$SYS` and below, the server's
 * own figures, which a client could otherwise spoof; `$share` and below, a subscription prefix
 * only (a filter `$share/g/t` is a shared subscription to `t`, so a message published to the
 * topic `$share/g/t` could reach no one). Other `$` topics belong to the tenant: only filters
 * that name them match them [MQTT-4.7.2-1].
 */
function isReservedTopic(topic: string): boolean {
  if (topic.charCodeAt(0) !== 0x24) return false; // '$'
  return firstLevelIs(topic, '$SYS') || firstLevelIs(topic, '$share');
}

const firstLevelIs = (topic: string, level: string): boolean =>
  topic.startsWith(level) && (topic.length === level.length || topic.charCodeAt(level.length) === 0x2f);

/**
 * Whether a client may publish to `topic` (a PUBLISH, or the will it names at CONNECT): not to
 * a reserved topic, and within its token's topic ACL when it has one.
 */
export function clientMayPublish(acl: TopicAcl | undefined, topic: string, clientId: string): boolean {
  return !isReservedTopic(topic) && (acl === undefined || mayPublish(acl, topic, clientId));
}

/** The v5 PUBACK/PUBREC reason of a routed message: 0x10 when nothing matched it. */
const routedReason = (version: ProtocolVersion, routed: Routed): number =>
  version === 5 && (routed & ROUTED_MATCHED) === 0 ? ReasonCode.NoMatchingSubscribers : ReasonCode.Success;

export class PublishGate {
  readonly #host: PublishHost;

  constructor(host: PublishHost) {
    this.#host = host;
  }

  /** Takes a valid client PUBLISH through ACL, store check, hook, route and acknowledgement. */
  publish(from: Publisher, session: InboundQos2, message: Message, packetId: number): void {
    const host = this.#host;
    const qos = message.qos;
    // Authorization: a reserved topic or one outside the token's topicAcl. v5: a refused QoS 1/2
    // message is acknowledged with 0x87; QoS 0 and every v3 message are dropped and
    // acknowledged normally, the one choice v3.1.1 leaves a server besides closing
    // [MQTT-3.3.5-2]. Every refusal is counted.
    if (!clientMayPublish(from.identity?.acl, message.topic, from.clientId)) {
      host.stats.droppedNotAuthorized++;
      if (from.version === 5 && qos > 0) {
        refusePublish(
          from,
          qos,
          packetId,
          'NOT_AUTHORIZED',
          `not authorized to publish to ${message.topic.slice(0, 64)}`,
        );
      } else if (qos > 0) {
        acknowledge(from, session, qos, packetId, false, ReasonCode.Success); // dropped, acknowledged as usual
      }
      return;
    }
    // An ack would claim a message is stored that cannot be: refuse it instead.
    if (qos > 0 && host.store.failed !== undefined) {
      if (from.version !== 5) return from.disconnect('STORAGE_UNAVAILABLE', 'message store unavailable');
      return refusePublish(from, qos, packetId, 'STORAGE_UNAVAILABLE', 'message store unavailable');
    }
    const pipeline = host.hooks?.activePipeline;
    if (pipeline !== undefined) return this.#throughHook(from, session, message, packetId, pipeline);
    const routed = host.publish(message);
    if ((routed & ROUTED_PENDING) !== 0) {
      const inboundWrote = qos === 2 && session.addInboundQos2(packetId); // [MQTT-4.3.3-10]
      const answer = qos > 0 ? from.acks.reserve() : undefined;
      this.#afterFanOut(from, routed, (final) => {
        const type = qos === 1 ? 'puback' : 'pubrec';
        const ack: PubackPacket = { type, packetId, reasonCode: routedReason(from.version, final) };
        answer?.(() => from.sendDurable(ack, inboundWrote || (final & ROUTED_WROTE) !== 0));
      });
      return;
    }
    if (qos > 0)
      acknowledge(
        from,
        session,
        qos,
        packetId,
        (routed & ROUTED_WROTE) !== 0,
        routedReason(from.version, routed),
      );
  }

  /**
   * A message whose fan-out the broker split across turns: `done` gets its final bits (with the
   * retained store's write, known at once) once delivered; the publisher is not read meanwhile.
   */
  #afterFanOut(from: Publisher, routed: Routed, done: (final: Routed) => void): void {
    from.holdInput(HOLD_FANOUT);
    this.#host.whenRouted(
      (final) => done(final | (routed & ROUTED_WROTE)),
      () => from.releaseInput(HOLD_FANOUT),
    );
  }

  /** The message waits for the hook's decision; its acknowledgement keeps its place meanwhile. */
  #throughHook(
    from: Publisher,
    session: InboundQos2,
    message: Message,
    packetId: number,
    pipeline: OnPublishPipeline,
  ): void {
    const host = this.#host;
    const qos = message.qos;
    const type = qos === 1 ? 'puback' : 'pubrec';
    const inboundWrote = qos === 2 && session.addInboundQos2(packetId);
    let answer: ((send: () => void) => void) | undefined;
    if (qos > 0) {
      if (host.config.hookAck === 'before')
        from.acks.send(() => from.sendDurable({ type, packetId, reasonCode: 0 }, inboundWrote));
      else answer = from.acks.reserve();
    }
    pipeline.submit(
      {
        message: message.detach(),
        jti: from.identity?.jti,
        decided: (decided, failed) => {
          let routed: Routed = 0;
          try {
            if (decided !== undefined) routed = host.publish(decided);
          } catch (err) {
            // As on the direct path (Connection.#onData): an internal error closes this client only.
            from.log.error({ err }, 'internal error routing a message decided by the on-publish hook');
            from.disconnect('IMPLEMENTATION_ERROR', 'internal error');
            return;
          }
          if (answer === undefined) {
            if ((routed & ROUTED_PENDING) !== 0) this.#afterFanOut(from, routed, () => {});
            return;
          }
          if ((routed & ROUTED_PENDING) !== 0) {
            const fill = answer;
            this.#afterFanOut(from, routed, (final) => {
              const wrote = inboundWrote || (final & ROUTED_WROTE) !== 0;
              fill(() =>
                from.sendDurable({ type, packetId, reasonCode: routedReason(from.version, final) }, wrote),
              );
            });
            return;
          }
          if (decided === undefined && failed !== undefined && from.version === 5) {
            // Fail-closed: a v5 publisher learns the message was not delivered (0x80).
            answer(() => {
              // Only this connection's exchange: after a reconnect the id may name a newer message.
              if (qos === 2 && !from.closed) session.releaseInboundQos2(packetId);
              from.sendRefusal(
                { type, packetId, reasonCode: HOOK_FAILED },
                `on-publish hook failed: ${failed.slice(0, 100)}`,
              );
            });
            return;
          }
          const reasonCode = decided === undefined ? ReasonCode.Success : routedReason(from.version, routed);
          const wrote = inboundWrote || (routed & ROUTED_WROTE) !== 0;
          answer(() => from.sendDurable({ type, packetId, reasonCode }, wrote));
        },
      },
      from,
    );
  }
}

/**
 * Refuses a QoS 1/2 PUBLISH with the catalogue code's reason (v5 PUBACK/PUBREC with a Reason
 * String, in PUBLISH order); a refused PUBREC ends the QoS 2 exchange.
 */
export function refusePublish(
  from: Publisher,
  qos: QoS,
  packetId: number,
  code: ErrorCode,
  reason: string,
): void {
  const type = qos === 1 ? 'puback' : 'pubrec';
  from.acks.send(() => from.sendRefusal({ type, packetId, reasonCode: reasonCodeOf(code) }, reason));
}

/** PUBACK or PUBREC (in PUBLISH order), after the commit when the message or its QoS 2 id was written. */
function acknowledge(
  from: Publisher,
  session: InboundQos2,
  qos: QoS,
  packetId: number,
  wrote: boolean,
  reasonCode: number,
): void {
  if (qos === 2) wrote = session.addInboundQos2(packetId) || wrote;
  const ack: PubackPacket = { type: qos === 1 ? 'puback' : 'pubrec', packetId, reasonCode };
  // [MQTT-4.3.2-2], [MQTT-4.3.3-8]
  if (from.acks.waiting === 0) from.sendDurable(ack, wrote);
  else from.acks.send(() => from.sendDurable(ack, wrote));
}
