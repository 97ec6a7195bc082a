/**
 * A live session's parts as the store's records and back (store/message-store.ts types): what
 * `Session.restore` rebuilds from (the store at start, or another cluster node's hand-over) and
 * what `Session.handOver` gives away. Pure conversions: nothing here touches the store.
 *
 * Invariants:
 * - Outbound records keep the session's order: in-flight entries first (oldest sent), then the
 *   queue; a record's `state` says which (queued, sent, released = PUBREC'd).
 * - Records carry no receive-buffer views of their own making: a message is copied field by
 *   field, its payload as the message holds it (a detached message's own buffer).
 * - Shared-group links (`Delivery.group`) do not survive: a restored delivery belongs to its
 *   session alone, as after a restart.
 */
import { Message } from '../router/index.ts';
import type { OutboundState, StoredOutbound, StoredSession } from '../store/index.ts';
import type { Delivery } from './delivery-queue.ts';
import type { LinkView, Subscription } from './host.ts';
import { type Inflight, inflightEntry } from './inflight.ts';
import type { SessionView } from './session-outcomes.ts';

const storedOutbound = (d: Delivery, state: OutboundState, packetId: number): StoredOutbound => ({
  seq: d.seq,
  state,
  packetId,
  qos: d.qos as 1 | 2,
  retain: d.retain,
  subscriptionIds: d.subscriptionIds,
  message: d.message.toStored(),
});

/** What a session is made of, as `snapshot` reads it. */
export interface SessionParts {
  readonly clientId: string;
  readonly expiryInterval: number;
  readonly expiresAt: number | undefined;
  readonly will: { readonly message: Message; readonly publishAt: number } | undefined;
  readonly subscriptions: Iterable<Subscription>;
  readonly inflight: Iterable<Inflight>;
  readonly queue: Iterable<Delivery>;
  readonly inboundQos2: Iterable<number>;
}

/**
 * The whole session as records, each delivery under its `seq` in this store (a store that takes
 * them elsewhere numbers them afresh; a cluster journal's later records name them by it).
 */
export function snapshot(parts: SessionParts): StoredSession {
  const outbound: StoredOutbound[] = [];
  for (const e of parts.inflight)
    outbound.push(storedOutbound(e, e.awaiting === 'pubcomp' ? 'released' : 'sent', e.packetId));
  for (const d of parts.queue) outbound.push(storedOutbound(d, 'queued', 0));
  const will = parts.will;
  return {
    clientId: parts.clientId,
    expiryInterval: parts.expiryInterval,
    expiresAt: parts.expiresAt,
    will: will === undefined ? undefined : { message: will.message.toStored(), publishAt: will.publishAt },
    subscriptions: [...parts.subscriptions].map((s) => ({
      topicFilter: s.topicFilter,
      qos: s.qos,
      noLocal: s.noLocal,
      retainAsPublished: s.retainAsPublished,
      retainHandling: s.retainHandling,
      subscriptionId: s.subscriptionId,
    })),
    outbound,
    inboundQos2: [...parts.inboundQos2],
  };
}

/** The operator's read-only view (admin API) of a session's parts and its window's figures. */
export function sessionView(
  parts: SessionParts,
  link: LinkView | undefined,
  inflight: number,
  queued: number,
): SessionView {
  const { clientId, expiryInterval, expiresAt } = parts;
  return {
    clientId,
    link,
    subscriptions: [...parts.subscriptions],
    inflight,
    queued,
    expiryInterval,
    expiresAt,
  };
}

/** A stored outbound record as a live delivery: queued (`inflight` undefined) or in flight. */
export function restoredDelivery(o: StoredOutbound): { queued: Delivery } | { inflight: Inflight } {
  const { qos, retain, subscriptionIds, seq } = o;
  const d: Delivery = {
    message: Message.fromStored(o.message),
    qos,
    retain,
    subscriptionIds,
    group: undefined,
    seq,
  };
  if (o.state === 'queued') return { queued: d };
  const awaiting = o.state === 'released' ? 'pubcomp' : qos === 1 ? 'puback' : 'pubrec';
  return { inflight: inflightEntry(d, o.packetId, awaiting) };
}
