/**
 * An application message on its way through a broker: what a PUBLISH (or a will) carried,
 * who sent it and when, and a cache of its encodings.
 *
 * Encode once per variant: the bytes for a given (protocol family, QoS, retain flag) are built
 * on first use (with that first delivery's packet id) and written to every subscriber that
 * needs that variant; later QoS > 0 deliveries get a copy with their packet id patched in
 * (`withPacketId`). Deliveries carrying subscription identifiers
 * are encoded on their own. With a Message Expiry Interval the forwarded interval is the time
 * left [MQTT-3.3.2-6], so the cache is also keyed by that remaining value.
 *
 * The payload starts as a view of the receive buffer. `detach()` copies it out before the
 * message is kept beyond the current turn (retained store, offline queues), so a stored
 * 10-byte message never pins a 64 KiB socket chunk.
 */
import {
  encodePublishFields,
  type Properties,
  type ProtocolVersion,
  type PublishPacket,
  propertiesLength,
  type QoS,
  withPacketId,
} from '../protocol/index.ts';
import type { StoredMessage } from '../store/index.ts';

/**
 * The fields of an outgoing PUBLISH that vary per delivery of one message. Callers pass an
 * object they already hold (a session's in-flight entry, or one reused for every QoS 0 send),
 * so sending allocates nothing for them; it is read during the call and never kept.
 */
export interface PublishOptions {
  readonly qos: QoS;
  readonly retain: boolean;
  /** v5 Subscription Identifiers of the matching subscriptions [MQTT-3.3.4-3]. */
  readonly subscriptionIds: number[] | undefined;
  /** Ignored for QoS 0. */
  readonly packetId: number;
  readonly dup: boolean;
}

export class Message {
  readonly topic: string;
  payload: Buffer;
  readonly qos: QoS;
  readonly retain: boolean;
  /** v5 properties forwarded to subscribers (never Topic Alias, Subscription Identifier or expiry). */
  properties: Properties | undefined;
  /** Client id of the publisher, for No Local; undefined for server-originated messages. */
  readonly senderId: string | undefined;
  readonly receivedAt: number;
  /** Epoch ms after which the message is no longer delivered; undefined: never expires. */
  readonly expiresAt: number | undefined;
  /**
   * Cluster mode: the identity of a message that crossed between nodes, the same on every node
   * (src/cluster/codec.ts): the publishing node's sender number and its count of messages it
   * sent; 0 and 0 for one that never crossed. A session moving between nodes receives some
   * messages twice, once from each node, and keeps one (src/session/move-hold.ts).
   */
  origin = 0;
  serial = 0;
  #detached = false;
  /** `heldBytes`, measured on first use (-1: not yet). */
  #heldBytes = -1;
  /** The first variant encoded (its slot, -1: none yet) and its bytes: most messages need one. */
  #slot = -1;
  #bytes: Buffer | undefined;
  /** Any further variants, by slot. */
  #encoded: (Buffer | undefined)[] | undefined;
  #encodedExpiry: number | undefined;

  constructor(init: {
    topic: string;
    payload: Buffer;
    qos: QoS;
    retain: boolean;
    properties?: Properties | undefined;
    senderId?: string | undefined;
    receivedAt?: number;
    messageExpiryInterval?: number | undefined;
    /** The payload is already the message's own copy (a message loaded from the store). */
    detached?: boolean;
  }) {
    this.topic = init.topic;
    this.payload = init.payload;
    this.qos = init.qos;
    this.retain = init.retain;
    this.properties = init.properties;
    this.senderId = init.senderId;
    this.#detached = init.detached === true;
    this.receivedAt = init.receivedAt ?? Date.now();
    this.expiresAt =
      init.messageExpiryInterval === undefined
        ? undefined
        : this.receivedAt + init.messageExpiryInterval * 1000;
  }

  /** Builds a message from an inbound PUBLISH whose topic (alias resolved) is `topic`. */
  static fromPublish(p: PublishPacket, topic: string, senderId: string, now: number): Message {
    const init = PUBLISH_INIT;
    init.topic = topic;
    init.payload = p.payload;
    init.qos = p.qos;
    init.retain = p.retain;
    init.properties = forwardable(p.properties);
    init.senderId = senderId;
    init.receivedAt = now;
    init.messageExpiryInterval = p.properties?.messageExpiryInterval;
    const message = new Message(init);
    init.payload = EMPTY; // hold no socket chunk between messages
    init.properties = undefined;
    return message;
  }

  /**
   * A message another cluster node sent (src/cluster/codec.ts): its payload is a view of the
   * received batch (detached, as a client's, when kept beyond the turn); `expiresAt` is an
   * instant, so the time spent in transit counts.
   */
  static fromNode(
    topic: string,
    payload: Buffer,
    qos: QoS,
    retain: boolean,
    properties: Properties | undefined,
    receivedAt: number,
    expiresAt: number | undefined,
  ): Message {
    const init = NODE_INIT;
    init.topic = topic;
    init.payload = payload;
    init.qos = qos;
    init.retain = retain;
    init.properties = properties;
    init.receivedAt = receivedAt;
    init.messageExpiryInterval = expiresAt === undefined ? undefined : (expiresAt - receivedAt) / 1000;
    const message = new Message(init);
    init.payload = EMPTY;
    init.properties = undefined;
    return message;
  }

  /** A message loaded from the message store (its payload is already its own copy). */
  static fromStored(m: StoredMessage): Message {
    return new Message({
      topic: m.topic,
      payload: m.payload,
      qos: m.qos,
      retain: m.retain,
      properties: m.properties,
      senderId: m.senderId,
      receivedAt: m.receivedAt,
      messageExpiryInterval: m.expiresAt === undefined ? undefined : (m.expiresAt - m.receivedAt) / 1000,
      detached: true,
    });
  }

  /** The message as a plain stored record, `fromStored`'s inverse (a session handed to another node). */
  toStored(): StoredMessage {
    const { topic, payload, qos, retain, properties, senderId, receivedAt, expiresAt } = this;
    return { topic, payload, qos, retain, properties, senderId, receivedAt, expiresAt };
  }

  /** The same message with another payload (an on-publish hook changed it); expiry kept. */
  withPayload(payload: Buffer): Message {
    return new Message({
      topic: this.topic,
      payload,
      qos: this.qos,
      retain: this.retain,
      properties: this.properties,
      senderId: this.senderId,
      receivedAt: this.receivedAt,
      messageExpiryInterval:
        this.expiresAt === undefined ? undefined : (this.expiresAt - this.receivedAt) / 1000,
      detached: true,
    });
  }

  /**
   * The bytes this message holds where it is kept (a retained store, a session queue): topic,
   * properties as encoded, and payload. What the byte caps (`--max-retained-bytes`,
   * `--max-queued-bytes`) count. Measured once, on first use, so routing never pays for it.
   */
  get heldBytes(): number {
    if (this.#heldBytes < 0) {
      this.#heldBytes =
        Buffer.byteLength(this.topic) + propertiesLength(this.properties) + this.payload.length;
    }
    return this.#heldBytes;
  }

  expired(now: number): boolean {
    return this.expiresAt !== undefined && now > this.expiresAt;
  }

  /** Whole seconds of life left, rounded up; undefined when the message does not expire. */
  remainingExpiry(now: number): number | undefined {
    if (this.expiresAt === undefined) return undefined;
    return Math.max(0, Math.ceil((this.expiresAt - now) / 1000));
  }

  /** Copies payload and binary properties out of the receive buffer (idempotent). */
  detach(): this {
    if (this.#detached) return this;
    this.#detached = true;
    this.payload = Buffer.from(this.payload);
    const cd = this.properties?.correlationData;
    if (cd !== undefined) this.properties = { ...this.properties, correlationData: Buffer.from(cd) };
    return this;
  }

  /**
   * The PUBLISH bytes for one delivery. The first delivery of a variant is encoded with its own
   * packet id and DUP flag and kept; later deliveries of that variant get a copy with theirs
   * patched in (`withPacketId`), QoS 0 ones the same bytes. Bytes returned are never changed
   * afterwards (several sockets may be writing them).
   */
  encodeFor(version: ProtocolVersion, delivery: PublishOptions, now: number): Buffer {
    const remaining = this.remainingExpiry(now);
    const { qos, retain } = delivery;
    if (delivery.subscriptionIds !== undefined && version === 5) {
      return this.#encode(
        version,
        qos,
        retain,
        delivery.dup,
        delivery.packetId,
        remaining,
        delivery.subscriptionIds,
      );
    }
    if (remaining !== this.#encodedExpiry) {
      this.#slot = -1;
      this.#bytes = undefined;
      this.#encoded = undefined;
      this.#encodedExpiry = remaining;
    }
    const slot = (version === 5 ? 6 : 0) + qos * 2 + (retain ? 1 : 0);
    const bytes = slot === this.#slot ? this.#bytes : this.#encoded?.[slot];
    if (bytes !== undefined) return qos === 0 ? bytes : withPacketId(bytes, delivery.packetId, delivery.dup);
    const fresh = this.#encode(
      version,
      qos,
      retain,
      qos > 0 && delivery.dup,
      delivery.packetId,
      remaining,
      undefined,
    );
    if (this.#slot < 0) {
      this.#slot = slot;
      this.#bytes = fresh;
    } else {
      (this.#encoded ??= [])[slot] = fresh;
    }
    return fresh;
  }

  /**
   * The v5 PUBLISH bytes for a connection using an outbound Topic Alias: with the topic (first
   * use of the alias) or with an empty topic (the client knows it) [MQTT-3.3.2-12]. Encoded per
   * delivery, since alias numbers differ per connection; only connections with aliases on pay it.
   */
  encodeAliased(delivery: PublishOptions, now: number, alias: number, withTopic: boolean): Buffer {
    const remaining = this.remainingExpiry(now);
    const properties: Properties = { ...this.properties, topicAlias: alias };
    if (remaining !== undefined) properties.messageExpiryInterval = remaining;
    if (delivery.subscriptionIds !== undefined) properties.subscriptionIdentifiers = delivery.subscriptionIds;
    const { qos, retain, dup, packetId } = delivery;
    return encodePublishFields(
      withTopic ? this.topic : '',
      this.payload,
      qos,
      retain,
      dup,
      packetId,
      properties,
      5,
    );
  }

  /** One PUBLISH of this message: v5 with the expiry left and the subscription ids given. */
  #encode(
    version: ProtocolVersion,
    qos: QoS,
    retain: boolean,
    dup: boolean,
    packetId: number,
    remainingExpiry: number | undefined,
    subscriptionIds: number[] | undefined,
  ): Buffer {
    let properties = this.properties;
    if (version === 5 && (remainingExpiry !== undefined || subscriptionIds !== undefined)) {
      properties = { ...properties };
      if (remainingExpiry !== undefined) properties.messageExpiryInterval = remainingExpiry;
      if (subscriptionIds !== undefined) properties.subscriptionIdentifiers = subscriptionIds;
    }
    return encodePublishFields(this.topic, this.payload, qos, retain, dup, packetId, properties, version);
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * `fromPublish`'s constructor argument, reused for every message (the constructor copies what
 * it needs and keeps nothing of it): one object less per PUBLISH on the hot path.
 */
const PUBLISH_INIT: {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  properties: Properties | undefined;
  senderId: string | undefined;
  receivedAt: number;
  messageExpiryInterval: number | undefined;
} = {
  topic: '',
  payload: EMPTY,
  qos: 0,
  retain: false,
  properties: undefined,
  senderId: undefined,
  receivedAt: 0,
  messageExpiryInterval: undefined,
};

/** `fromNode`'s constructor argument, reused as PUBLISH_INIT is. */
const NODE_INIT: typeof PUBLISH_INIT & { detached: true } = { ...PUBLISH_INIT, detached: true };

/** The inbound properties a subscriber receives: all but Topic Alias and the expiry (re-computed). */
function forwardable(props: Properties | undefined): Properties | undefined {
  if (props === undefined) return undefined;
  if (props.topicAlias === undefined && props.messageExpiryInterval === undefined) return props;
  const { topicAlias: _alias, messageExpiryInterval: _expiry, ...rest } = props;
  return Object.keys(rest).length === 0 ? undefined : rest;
}
