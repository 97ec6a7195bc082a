/**
 * SUBSCRIBE → SUBACK, then the retained messages each new subscription asks for.
 * Pipeline: features the server announced as unavailable (v5: DISCONNECT 0x9E / 0xA1 / 0xA2,
 * sections 3.2.2.3.13-15) → validate each filter (an invalid one, or one longer or deeper than
 * the broker's limits, by default `--max-topic-length` and `--max-topic-levels`, fails alone:
 * 0x8F in v5, 0x80 in v3) → authorize each by the token's topicAcl (0x87 in v5, 0x80 in v3) →
 * past the broker's `max_subscriptions_per_client` (`--max-subscriptions-per-client`), a new
 * filter fails alone (0x97 in v5, 0x80 in v3) → add to the session and index → SUBACK with the
 * granted QoS in order [MQTT-3.8.4-1] → retained messages by Retain Handling (section 3.8.3.1),
 * none for shared subscriptions (section 4.8.2), sent paced as the client takes them
 * (src/session/retained-replay.ts); a filter starting with `$SYS` also gets the broker's $SYS
 * tree (src/broker/sys-tree.ts), which is retained apart from the tenant's messages.
 */

import { maySubscribe } from '../../auth/index.ts';
import { reasonCodeOf } from '../../errors.ts';
import type { SubscribePacket } from '../../protocol/index.ts';
import {
  exceedsFilterLevels,
  exceedsTopicLength,
  isSharedFilter,
  parseSharedFilter,
  ReasonCode,
  SubackFailure,
} from '../../protocol/index.ts';

import { clientSubscribed } from '../client-events.ts';
import type { PacketContext } from '../handler-context.ts';
import type { Subscription } from '../host.ts';

const TOPIC_FILTER_INVALID = reasonCodeOf('TOPIC_FILTER_INVALID');
const QUOTA_EXCEEDED = reasonCodeOf('QUOTA_EXCEEDED');
const hasWildcard = (filter: string): boolean => filter.includes('+') || filter.includes('#');

export function handleSubscribe(conn: PacketContext, packet: SubscribePacket): void {
  const session = conn.session!;
  const config = conn.config;
  const limits = session.broker.limits;
  const v5 = conn.version === 5;
  const subscriptionId = packet.properties?.subscriptionIdentifiers?.[0];
  if (subscriptionId !== undefined && !config.subscriptionIdentifiersAvailable) {
    return conn.disconnect('SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED', 'subscription identifiers are disabled'); // section 3.2.2.3.14
  }
  for (const req of packet.subscriptions) {
    const shared = isSharedFilter(req.topicFilter);
    if (req.noLocal && shared) {
      return conn.disconnect('PROTOCOL_ERROR', 'No Local on a shared subscription'); // [MQTT-3.8.3-4]
    }
    if (v5 && shared && !config.sharedSubscriptionsAvailable) {
      return conn.disconnect('SHARED_SUBSCRIPTIONS_NOT_SUPPORTED', 'shared subscriptions are disabled'); // section 3.2.2.3.15
    }
    if (v5 && hasWildcard(req.topicFilter) && !config.wildcardSubscriptionsAvailable) {
      return conn.disconnect('WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED', 'wildcard subscriptions are disabled'); // section 3.2.2.3.13
    }
  }
  const reasonCodes: number[] = [];
  const retainedFor: Subscription[] = [];
  const problems: string[] = [];
  for (const req of packet.subscriptions) {
    // v3 clients were told nothing: a disabled feature fails that filter alone (0x80).
    if (
      (!config.sharedSubscriptionsAvailable && isSharedFilter(req.topicFilter)) ||
      (!config.wildcardSubscriptionsAvailable && hasWildcard(req.topicFilter))
    ) {
      reasonCodes.push(SubackFailure);
      continue;
    }
    // Well formed but longer or deeper than this server indexes: 0x8F, "not allowed for this
    // Client" (section 3.9.3).
    if (exceedsTopicLength(req.topicFilter, limits.maxTopicLength)) {
      conn.stats!.refusedOverLimit.max_topic_length++;
      reasonCodes.push(v5 ? TOPIC_FILTER_INVALID : SubackFailure);
      problems.push(`topic filter longer than ${limits.maxTopicLength} bytes`);
      continue;
    }
    if (exceedsFilterLevels(req.topicFilter, limits.maxTopicLevels)) {
      conn.stats!.refusedOverLimit.max_topic_levels++;
      reasonCodes.push(v5 ? TOPIC_FILTER_INVALID : SubackFailure);
      problems.push(`topic filter has more than ${limits.maxTopicLevels} levels`);
      continue;
    }
    // Authorization by the token's topicAcl; for a shared subscription, its inner filter.
    const acl = conn.identity?.acl;
    if (acl !== undefined) {
      const inner = isSharedFilter(req.topicFilter)
        ? parseSharedFilter(req.topicFilter)?.filter
        : req.topicFilter;
      if (inner === undefined || !maySubscribe(acl, inner, conn.clientId)) {
        reasonCodes.push(v5 ? ReasonCode.NotAuthorized : SubackFailure); // SUBACK 0x87 / 0x80 [MQTT-3.9.3-1]
        problems.push(`not authorized to subscribe to ${JSON.stringify(req.topicFilter.slice(0, 64))}`);
        continue;
      }
    }
    // A new filter past the session's cap: 0x97 Quota exceeded (section 3.9.3); a filter it
    // holds already is replaced [MQTT-3.8.4-3], so it never counts twice.
    if (
      session.subscriptions.size >= limits.maxSubscriptionsPerClient &&
      !session.subscriptions.has(req.topicFilter)
    ) {
      conn.stats!.refusedOverLimit.max_subscriptions_per_client++;
      reasonCodes.push(v5 ? QUOTA_EXCEEDED : SubackFailure);
      problems.push(`more than ${limits.maxSubscriptionsPerClient} subscriptions`);
      continue;
    }
    const outcome = session.subscribe(req, subscriptionId);
    if (outcome.subscription === undefined) {
      reasonCodes.push(v5 ? outcome.code : SubackFailure);
      problems.push(`invalid topic filter ${JSON.stringify(req.topicFilter.slice(0, 64))}`);
      continue;
    }
    reasonCodes.push(outcome.code);
    const sub = outcome.subscription;
    const wantsRetained = sub.retainHandling === 0 || (sub.retainHandling === 1 && outcome.isNew);
    if (sub.share === undefined && wantsRetained) retainedFor.push(sub);
  }
  const suback = { type: 'suback' as const, packetId: packet.packetId, reasonCodes };
  if (problems.length > 0) conn.sendWithReason(suback, problems.join('; '));
  else conn.send(suback);
  clientSubscribed(conn, packet.subscriptions, reasonCodes);

  const broker = session.broker;
  for (const sub of retainedFor) {
    const ids = sub.subscriptionId === undefined ? undefined : [sub.subscriptionId];
    // Only a filter whose first level is `$SYS` reaches the $SYS tree [MQTT-4.7.2-1].
    const sys = sub.topicFilter.startsWith('$SYS') ? broker.sysRetained(Date.now()) : undefined;
    const matches = broker.retained.live(sub.topicFilter);
    // Retained messages sent on subscribe keep retain set [MQTT-3.3.1-8]; paced, never dropped.
    session.sendRetained(sub.topicFilter, matches, sub.qos, ids);
    if (sys !== undefined) session.sendRetained(sub.topicFilter, sys.live(sub.topicFilter), sub.qos, ids);
  }
}
