/**
 * A broker's own limits (the `limits` field of the broker object, docs/limits.md): the fields
 * a broker row may set and the server option each defaults to. A field absent from a broker's
 * limits takes the option's value, so a broker with no limits set follows the server's flags
 * (and their changes at restart). Stored as one JSON object per broker row; only the fields set
 * are kept.
 */
import type { OptionKey } from '../config.ts';

/** Numeric limit fields, by the option that gives each its default. */
export const BROKER_LIMIT_OPTIONS = {
  max_connections: 'maxBrokerConnections',
  max_subscriptions_per_client: 'maxSubscriptionsPerClient',
  max_messages_per_second: 'maxBrokerPublishRate',
  max_bytes_per_second: 'maxBrokerPublishBytesRate',
  max_client_messages_per_second: 'maxPublishRate',
  max_client_bytes_per_second: 'maxPublishBytesRate',
  max_retained_messages: 'maxRetainedMessages',
  max_retained_bytes: 'maxRetainedBytes',
  max_topic_length: 'maxTopicLength',
  max_topic_levels: 'maxTopicLevels',
  max_queued_messages: 'maxQueuedMessages',
  max_queued_bytes: 'maxQueuedBytes',
} as const satisfies Record<string, OptionKey>;

export type BrokerLimitField = keyof typeof BROKER_LIMIT_OPTIONS;

/** What a client over an inbound rate gets: its reading held until the budget refills, or DISCONNECT 0x96. */
export type RateLimitAction = 'throttle' | 'disconnect';
export const RATE_LIMIT_ACTIONS: readonly RateLimitAction[] = ['throttle', 'disconnect'];

/** A broker's own limits: the fields set; every other one is the server's default. */
export type BrokerLimits = { readonly [F in BrokerLimitField]?: number } & {
  readonly rate_limit_action?: RateLimitAction;
};

/** The numeric fields, in the order the docs and the API list them. */
export const BROKER_LIMIT_FIELDS = Object.keys(BROKER_LIMIT_OPTIONS) as BrokerLimitField[];

/**
 * A change to a broker's limits (an API PATCH's `limits`): a field given a value is set, a
 * field given null goes back to the server's default, a field not given is kept (RFC 7396).
 */
export type LimitChanges = { readonly [F in BrokerLimitField]?: number | null } & {
  readonly rate_limit_action?: RateLimitAction | null;
};

/** `limits` with `changes` applied (see `LimitChanges`). */
export function mergeLimits(limits: BrokerLimits, changes: LimitChanges): BrokerLimits {
  const merged: Record<string, number | string> = { ...limits };
  for (const [field, value] of Object.entries(changes)) {
    if (value === undefined) continue;
    if (value === null) delete merged[field];
    else merged[field] = value;
  }
  return merged as BrokerLimits;
}
