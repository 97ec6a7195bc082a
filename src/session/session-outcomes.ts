/**
 * What a session's operations answer, and the one check of a topic filter they share: the
 * outcome of a client acknowledgement (`AckOutcome`, which tells the caller whether an
 * acknowledgement must wait for a commit), of a SUBSCRIBE entry (`SubscribeOutcome`), the
 * operator's read-only snapshot (`SessionView`), and `filterShare`, the validation SUBSCRIBE
 * and UNSUBSCRIBE both use so that a filter is judged the same way by both.
 */
import { isSharedFilter, isValidTopicFilter, parseSharedFilter, type QoS } from '../protocol/index.ts';
import type { LinkView, Subscription } from './host.ts';

/** One entry of a SUBSCRIBE (or a stored subscription) as `Session.subscribe` takes it. */
export interface SubscribeRequest {
  topicFilter: string;
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
}

export interface SubscribeOutcome {
  /** Granted QoS, or a failure reason code (v5: 0x8F; the caller maps it for v3). */
  code: number;
  subscription: Subscription | undefined;
  isNew: boolean;
}

/**
 * What an acknowledgement from the client did: it named no exchange of this session
 * ('unknown'), named one that waits for another acknowledgement type ('mismatched': a PUBREC
 * or PUBCOMP for a QoS 1 message, a PUBACK for a QoS 2 one, a PUBCOMP before PUBREC), or it
 * settled one, writing the change to the message store or not.
 */
export type AckOutcome = 'unknown' | 'mismatched' | 'written' | 'unwritten';

/** A session as an operator is shown it (admin API): a snapshot, read-only. */
export interface SessionView {
  readonly clientId: string;
  /** The attached connection; undefined while the (persistent) session is offline. */
  readonly link: LinkView | undefined;
  readonly subscriptions: readonly Subscription[];
  /** Outbound QoS 1/2 messages awaiting the client's acknowledgement. */
  readonly inflight: number;
  /** QoS 1/2 deliveries waiting for room in the in-flight window or for the client to return. */
  readonly queued: number;
  /** Seconds the session outlives its connection; 0xFFFFFFFF never expires. */
  readonly expiryInterval: number;
  /** Epoch ms at which an offline session ends; undefined while connected, or never. */
  readonly expiresAt: number | undefined;
}

/**
 * The one check of a SUBSCRIBE or UNSUBSCRIBE topic filter: null when it is invalid (empty
 * [MQTT-4.7.3-1], `#` not alone and last, `+` not alone in its level [MQTT-4.7.1-2],
 * [MQTT-4.7.1-3] (3.1.1 numbering), a `$share/` form without a valid share name and filter
 * [MQTT-4.8.2-1], [MQTT-4.8.2-2]); else the share of a shared filter, undefined for a plain one.
 */
export function filterShare(filter: string): Subscription['share'] | null {
  if (!isSharedFilter(filter)) return isValidTopicFilter(filter) ? undefined : null;
  const parsed = parseSharedFilter(filter);
  return parsed === undefined ? null : { name: parsed.shareName, filter: parsed.filter };
}
