/**
 * The `reason` label of `pubsub_messages_dropped_total` for each drop counter of a broker's
 * figures (BrokerStats): one table that the metrics (metrics.ts) and the console's figures
 * (routes/stats.ts) both read, so a new drop reason shows in both. Kept apart from metrics.ts,
 * which loads prom-client: the stats route must not load it at start.
 */
import type { BrokerStats } from '../session/index.ts';

/** Drop reason label → the BrokerStats counter it reads. */
export const DROPS = {
  queue_full: 'droppedQueueFull',
  expired: 'droppedExpired',
  too_large: 'droppedTooLarge',
  congested: 'droppedCongested',
  write_budget: 'droppedWriteBudget',
  overload: 'droppedOverload',
  not_authorized: 'droppedNotAuthorized',
  topic_levels: 'droppedTopicLevels',
  retained_full: 'droppedRetainedFull',
} as const satisfies Record<string, keyof BrokerStats>;
