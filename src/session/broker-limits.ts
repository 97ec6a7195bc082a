/**
 * A broker's limits in force (docs/limits.md): its own `limits` (the broker object's field,
 * store/broker-limits.ts) over the server's flags, resolved once when the broker opens and
 * again when its limits change, and read by the handlers as plain numbers, never looked up per
 * message. The inbound rates are an object only when at least one of them is set, so a broker
 * with none pays one property read per PUBLISH.
 *
 * Rates are token buckets: `rate` tokens a second, at most one second's worth held (the burst).
 * Spending may run into debt; a client that did waits until the debt is paid (throttle: its
 * input is held) or is disconnected. A connection keeps its own client buckets; the broker-wide
 * buckets are here, one pair per broker, full again when the limits change. A rate change
 * applies to the next PUBLISH of every client.
 */
import type { Config } from '../config.ts';
import { BROKER_LIMIT_OPTIONS, type BrokerLimitField, type BrokerLimits } from '../store/index.ts';

/** The inbound rates, named like their fields in the broker's limits (and their refusal counters). */
export type RateLimitName =
  | 'max_client_messages_per_second'
  | 'max_client_bytes_per_second'
  | 'max_messages_per_second'
  | 'max_bytes_per_second';

/** A token bucket that spends into debt (see the header); starts full. */
export class TokenBucket {
  #tokens = 0;
  #at = Number.NEGATIVE_INFINITY;

  /** Spends `n` at `rate` a second; the ms until the balance is back to zero (0: within budget). */
  spend(n: number, rate: number, now: number): number {
    const refilled = this.#tokens + ((now - this.#at) * rate) / 1000;
    this.#tokens = Math.min(refilled, rate) - n;
    this.#at = now;
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens * 1000) / rate);
  }
}

/** One connection's buckets, and which limit its last spend went furthest over. */
export class ClientBuckets {
  readonly messages = new TokenBucket();
  readonly bytes = new TokenBucket();
  over: RateLimitName = 'max_client_messages_per_second';
}

/** The inbound rates of one broker in force, with its broker-wide buckets. 0: that rate is off. */
export class InboundRates {
  readonly messagesPerSecond: number;
  readonly bytesPerSecond: number;
  readonly clientMessagesPerSecond: number;
  readonly clientBytesPerSecond: number;
  /** Over a rate: hold the client's input until the budget refills, or disconnect it (0x96). */
  readonly disconnect: boolean;
  readonly #messages = new TokenBucket();
  readonly #bytes = new TokenBucket();

  constructor(limits: ResolvedNumbers, disconnect: boolean) {
    this.messagesPerSecond = limits.max_messages_per_second;
    this.bytesPerSecond = limits.max_bytes_per_second;
    this.clientMessagesPerSecond = limits.max_client_messages_per_second;
    this.clientBytesPerSecond = limits.max_client_bytes_per_second;
    this.disconnect = disconnect;
  }

  /**
   * Spends one PUBLISH of `bytes` payload bytes from the client's and the broker's buckets: the
   * ms the client must wait (0: within every rate), the furthest-over limit left in `client.over`.
   */
  spend(client: ClientBuckets, bytes: number, now: number): number {
    let wait = 0;
    if (this.clientMessagesPerSecond > 0) {
      const w = client.messages.spend(1, this.clientMessagesPerSecond, now);
      if (w > wait) {
        wait = w;
        client.over = 'max_client_messages_per_second';
      }
    }
    if (this.clientBytesPerSecond > 0) {
      const w = client.bytes.spend(bytes, this.clientBytesPerSecond, now);
      if (w > wait) {
        wait = w;
        client.over = 'max_client_bytes_per_second';
      }
    }
    if (this.messagesPerSecond > 0) {
      const w = this.#messages.spend(1, this.messagesPerSecond, now);
      if (w > wait) {
        wait = w;
        client.over = 'max_messages_per_second';
      }
    }
    if (this.bytesPerSecond > 0) {
      const w = this.#bytes.spend(bytes, this.bytesPerSecond, now);
      if (w > wait) {
        wait = w;
        client.over = 'max_bytes_per_second';
      }
    }
    return wait;
  }

  /** The limit `field` in words, for a DISCONNECT's reason string. */
  describe(field: RateLimitName): string {
    switch (field) {
      case 'max_client_bytes_per_second':
        return `more than ${this.clientBytesPerSecond} payload bytes per second from this client`;
      case 'max_messages_per_second':
        return `more than ${this.messagesPerSecond} PUBLISH per second on this broker`;
      case 'max_bytes_per_second':
        return `more than ${this.bytesPerSecond} payload bytes per second on this broker`;
      default:
        return `more than ${this.clientMessagesPerSecond} PUBLISH per second from this client`;
    }
  }
}

type ResolvedNumbers = { readonly [F in BrokerLimitField]: number };

/** A broker's limits in force: its own where set, else the server's flags (docs/limits.md). */
export interface LimitsInForce {
  /** Connections the broker serves at once; 0: unlimited. */
  readonly maxConnections: number;
  readonly maxSubscriptionsPerClient: number;
  readonly maxRetainedMessages: number;
  readonly maxRetainedBytes: number;
  readonly maxTopicLength: number;
  readonly maxTopicLevels: number;
  readonly maxQueuedMessages: number;
  readonly maxQueuedBytes: number;
  /** Undefined while no inbound rate is set: the PUBLISH handler's one check. */
  readonly rates: InboundRates | undefined;
}

/** Resolves a broker's own limits over the server's flags. */
export function limitsInForce(config: Config, own: BrokerLimits): LimitsInForce {
  const n = {} as Record<BrokerLimitField, number>;
  for (const [field, option] of Object.entries(BROKER_LIMIT_OPTIONS) as [BrokerLimitField, keyof Config][])
    n[field] = own[field] ?? (config[option] as number);
  const anyRate =
    n.max_messages_per_second > 0 ||
    n.max_bytes_per_second > 0 ||
    n.max_client_messages_per_second > 0 ||
    n.max_client_bytes_per_second > 0;
  const action = own.rate_limit_action ?? config.publishRateAction;
  return {
    maxConnections: n.max_connections,
    maxSubscriptionsPerClient: n.max_subscriptions_per_client,
    maxRetainedMessages: n.max_retained_messages,
    maxRetainedBytes: n.max_retained_bytes,
    maxTopicLength: n.max_topic_length,
    maxTopicLevels: n.max_topic_levels,
    maxQueuedMessages: n.max_queued_messages,
    maxQueuedBytes: n.max_queued_bytes,
    rates: anyRate ? new InboundRates(n, action === 'disconnect') : undefined,
  };
}
