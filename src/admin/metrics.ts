/**
 * The Prometheus metrics of the server (GET /metrics, routes/metrics.ts), in prom-client's
 * registry. Nothing here runs per message: the brokers keep their figures in plain number
 * fields (`BrokerStats`, session/host.ts; `HookStats`; the message store's commit histogram),
 * and every metric reads them in its `collect()` callback when scraped, labelled `namespace`
 * and `broker` (one series per broker and reason, never per client or topic), and every series
 * of the registry `node` (the server's name, a default label). Gauges that are
 * a walk over a broker's sessions (sessions, queued, in flight) cost that walk per scrape.
 *
 * Invariants:
 * - Counters are read, never kept here: a broker's series are its own fields at scrape time, so
 *   one broker's figures never include another's, and a deleted broker's series go with it.
 * - The registry is built at the first scrape (`ServerMetrics.registry`), and this module with
 *   prom-client is imported then (routes/metrics.ts), so a server never scraped pays nothing for
 *   it, not even prom-client's default process metrics or the loading of its modules.
 * docs/observability.md lists every metric; keep it in step.
 */
import {
  Counter,
  collectDefaultMetrics,
  Gauge,
  Histogram,
  type LabelValues,
  type MetricObjectWithValues,
  type MetricValueWithName,
  Registry,
} from 'prom-client';
import type { ErrorCode } from '../errors.ts';
import type { DurationHistogram } from '../observability/index.ts';
import type { Session } from '../session/index.ts';
import type { Tenancy, Tenant } from '../tenancy/index.ts';
import type { ProcessProtection } from './context.ts';
import { DROPS } from './drop-reasons.ts';

type BrokerLabel = 'namespace' | 'broker';
type Emit = (value: number, labels?: LabelValues<string>) => void;

/** The metrics of one server; `registry` is made on first use. */
export class ServerMetrics {
  readonly #tenancy: Tenancy;
  readonly #nodeName: string;
  readonly #protection: ProcessProtection | undefined;
  #registry: Registry | undefined;

  constructor(tenancy: Tenancy, nodeName: string, protection?: ProcessProtection) {
    this.#tenancy = tenancy;
    this.#nodeName = nodeName;
    this.#protection = protection;
  }

  get registry(): Registry {
    this.#registry ??= buildRegistry(this.#tenancy, this.#nodeName, this.#protection);
    return this.#registry;
  }
}

function labelsOf(tenant: Tenant): LabelValues<BrokerLabel> {
  return { namespace: tenant.record.namespaceName, broker: tenant.record.name };
}

const QOS = ['0', '1', '2'] as const;

function buildRegistry(tenancy: Tenancy, nodeName: string, protection?: ProcessProtection): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ node: nodeName });
  collectDefaultMetrics({ register: registry });
  // Gauges named like counters, which `promtool check metrics` refuses; their figures are the
  // sums of nodejs_active_handles, nodejs_active_requests and nodejs_active_resources by type.
  for (const name of [
    'nodejs_active_handles_total',
    'nodejs_active_requests_total',
    'nodejs_active_resources_total',
  ])
    registry.removeSingleMetric(name);

  /**
   * A counter or gauge with one series per broker (and per `extra` label value); `readServer`
   * adds the process's own series, with empty `namespace` and `broker` (absent to Prometheus).
   */
  const perBroker = (
    kind: 'counter' | 'gauge',
    name: string,
    help: string,
    extra: readonly string[],
    read: (tenant: Tenant, emit: Emit) => void,
    readServer?: (emit: Emit) => void,
  ): void => {
    const labelNames = ['namespace', 'broker', ...extra];
    const each = (emit: (labels: LabelValues<string>, value: number) => void): void => {
      for (const tenant of tenancy.tenants()) {
        const labels = labelsOf(tenant);
        read(tenant, (value, more) => emit(more === undefined ? labels : { ...labels, ...more }, value));
      }
      const none = { namespace: '', broker: '' };
      readServer?.((value, more) => emit({ ...none, ...more }, value));
    };
    if (kind === 'counter')
      new Counter({
        name,
        help,
        labelNames,
        registers: [registry],
        collect() {
          this.reset();
          each((labels, value) => this.inc(labels, value));
        },
      });
    else
      new Gauge({
        name,
        help,
        labelNames,
        registers: [registry],
        collect() {
          this.reset();
          each((labels, value) => this.set(labels, value));
        },
      });
  };
  const byQos = (counts: readonly number[], emit: Emit): void => {
    for (let q = 0; q < 3; q++) emit(counts[q]!, { qos: QOS[q]! });
  };
  const byCode = (counts: ReadonlyMap<ErrorCode, number>, emit: Emit): void => {
    for (const [code, n] of counts) emit(n, { reason: code.toLowerCase() });
  };

  perBroker(
    'gauge',
    'pubsub_connections',
    'Connections serving a session now, by transport.',
    ['transport'],
    (t, emit) => {
      const c = t.broker.stats.connections;
      for (const transport of ['tcp', 'tls', 'ws', 'wss'] as const) emit(c[transport], { transport });
      if (c.memory > 0) emit(c.memory, { transport: 'memory' });
    },
  );
  perBroker('counter', 'pubsub_connections_accepted_total', 'CONNECTs accepted.', [], (t, emit) =>
    emit(t.broker.stats.connectionsAccepted),
  );
  perBroker(
    'counter',
    'pubsub_connections_refused_total',
    'CONNECTs refused once routed to this broker, by catalogue reason (the process-wide limits: no broker label).',
    ['reason'],
    (t, emit) => byCode(t.broker.stats.connectionsRefused, emit),
    protection && ((emit) => byCode(protection.guard.refused, emit)),
  );
  if (protection !== undefined) registerProtection(registry, protection);
  perBroker(
    'gauge',
    'pubsub_sessions',
    'Persistent sessions (expiry interval above 0), online or offline.',
    ['state'],
    (t, emit) => {
      let online = 0;
      let offline = 0;
      for (const session of t.broker.sessions.values()) {
        if (session.expiryInterval === 0) continue;
        if (session.link === undefined) offline++;
        else online++;
      }
      emit(online, { state: 'online' });
      emit(offline, { state: 'offline' });
    },
  );
  perBroker('gauge', 'pubsub_subscriptions', 'Subscriptions, shared ones included.', [], (t, emit) =>
    emit(t.broker.index.size),
  );
  perBroker('gauge', 'pubsub_retained_messages', 'Retained messages.', [], (t, emit) =>
    emit(t.broker.retained.size),
  );
  perBroker(
    'gauge',
    'pubsub_retained_bytes',
    'Bytes of the retained messages: topic, properties and payload.',
    [],
    (t, emit) => emit(t.broker.retained.bytes),
  );
  perBroker(
    'counter',
    'pubsub_messages_received_total',
    'PUBLISH packets received from clients, by QoS.',
    ['qos'],
    (t, emit) => byQos(t.broker.stats.received, emit),
  );
  perBroker(
    'counter',
    'pubsub_messages_sent_total',
    'PUBLISH packets sent to clients, by QoS (re-sends included).',
    ['qos'],
    (t, emit) => byQos(t.broker.stats.sent, emit),
  );
  perBroker('counter', 'pubsub_bytes_received_total', 'Bytes read from clients.', [], (t, emit) =>
    emit(t.broker.stats.bytesReceived),
  );
  perBroker('counter', 'pubsub_bytes_sent_total', 'Bytes written to clients.', [], (t, emit) =>
    emit(t.broker.stats.bytesSent),
  );
  perBroker(
    'counter',
    'pubsub_messages_dropped_total',
    'Messages or deliveries dropped, by reason.',
    ['reason'],
    (t, emit) => {
      const stats = t.broker.stats;
      for (const [reason, field] of Object.entries(DROPS)) emit(stats[field], { reason });
      const hook = t.hooks.pipeline.stats;
      emit(hook.dropped, { reason: 'hook_dropped' });
      emit(hook.invalid, { reason: 'hook_invalid' });
      emit(hook.failedDropped, { reason: 'hook_failed' });
    },
  );
  perBroker(
    'counter',
    'pubsub_limit_refusals_total',
    'Packets (subscriptions: filters) refused over a per-client bound, by the bound (docs/limits.md).',
    ['limit'],
    (t, emit) => {
      for (const [limit, n] of Object.entries(t.broker.stats.refusedOverLimit)) emit(n, { limit });
    },
  );
  perBroker(
    'counter',
    'pubsub_congested_disconnects_total',
    'Connections closed for staying over --max-write-buffer for --max-congested-ms (QUOTA_EXCEEDED).',
    [],
    (t, emit) => emit(t.broker.stats.disconnectedCongested),
  );
  const holdsHelp = "Times overload protection paused this broker's readers (heaviest inbound bytes/s).";
  perBroker('counter', 'pubsub_overload_input_holds_total', holdsHelp, [], (t, emit) =>
    emit(t.broker.stats.overloadInputHolds),
  );
  /** A gauge of the sum of `of` over a broker's sessions: a walk per scrape. */
  const overSessions = (name: string, help: string, of: (session: Session) => number): void =>
    perBroker('gauge', name, help, [], (t, emit) => {
      let sum = 0;
      for (const session of t.broker.sessions.values()) sum += of(session);
      emit(sum);
    });
  overSessions(
    'pubsub_queued_messages',
    'QoS 1/2 deliveries queued in sessions, not yet sent.',
    (s) => s.queuedCount,
  );
  overSessions(
    'pubsub_inflight_messages',
    'QoS 1/2 deliveries sent and not yet acknowledged.',
    (s) => s.inflightCount,
  );
  perBroker(
    'counter',
    'pubsub_hook_calls_total',
    'On-publish hook calls settled, by result (success, failure, timeout).',
    ['result'],
    (t, emit) => {
      const hook = t.hooks.pipeline.stats;
      emit(hook.durations.count - hook.failures, { result: 'success' });
      emit(hook.failures - hook.timeouts, { result: 'failure' });
      emit(hook.timeouts, { result: 'timeout' });
    },
  );
  perBroker(
    'counter',
    'pubsub_auth_failures_total',
    "CONNECTs (and re-authentications) refused by the broker's authentication, by catalogue reason.",
    ['reason'],
    (t, emit) => byCode(t.broker.stats.authFailures, emit),
  );
  perBroker('gauge', 'pubsub_revocations', 'Revoked token ids the broker holds.', [], (t, emit) =>
    emit(t.credentials.revoked.size),
  );

  const limiter = tenancy.authFailures;
  new Counter({
    name: 'pubsub_api_auth_failures_total',
    help: 'Admin API requests that presented a token the API refused (missing credentials not counted).',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(limiter.counts.api.failures);
    },
  });
  new Counter({
    name: 'pubsub_auth_limited_total',
    help: 'Authentication attempts the brute-force limiter slowed (action delayed) or refused while their address was banned (action refused), by protocol.',
    labelNames: ['protocol', 'action'],
    registers: [registry],
    collect() {
      this.reset();
      for (const protocol of ['mqtt', 'api'] as const) {
        this.inc({ protocol, action: 'delayed' }, limiter.counts[protocol].delayed);
        this.inc({ protocol, action: 'refused' }, limiter.counts[protocol].refused);
      }
    },
  });
  new Counter({
    name: 'pubsub_auth_bans_total',
    help: 'Source addresses banned for reaching --auth-failure-limit.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(limiter.bans);
    },
  });
  new Gauge({
    name: 'pubsub_auth_banned_sources',
    help: 'Source addresses (IPv6: /64 prefixes) banned now.',
    registers: [registry],
    collect() {
      this.set(limiter.bannedCount());
    },
  });

  const store = tenancy.messages;
  new PlainHistogram(
    'pubsub_store_commit_seconds',
    'Duration of message store commit transactions (SQLite group commit).',
    [],
    registry,
    function* () {
      yield [{}, store.commitSeconds];
    },
  );
  new Counter({
    name: 'pubsub_store_errors_total',
    help: 'Message store commits that failed (each retry counts).',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(store.commitErrors);
    },
  });
  new PlainHistogram(
    'pubsub_hook_duration_seconds',
    'Duration of on-publish hook calls (webhook request or function run), failed ones included.',
    ['namespace', 'broker'],
    registry,
    function* () {
      for (const tenant of tenancy.tenants()) yield [labelsOf(tenant), tenant.hooks.pipeline.stats.durations];
    },
  );
  return registry;
}

/**
 * The process's own protections, series of no broker (its refusals before a CONNECT names a
 * broker are in `pubsub_connections_refused_total`, without broker labels).
 */
function registerProtection(registry: Registry, protection: ProcessProtection): void {
  const read = (
    kind: 'counter' | 'gauge',
    name: string,
    help: string,
    labelNames: string[],
    each: (emit: Emit) => void,
  ): void => {
    const collect = function (this: Counter<string> | Gauge<string>): void {
      this.reset();
      each((value, labels) =>
        this instanceof Counter
          ? this.inc(labels ?? {}, value)
          : (this as Gauge<string>).set(labels ?? {}, value),
      );
    };
    if (kind === 'counter') new Counter({ name, help, labelNames, registers: [registry], collect });
    else new Gauge({ name, help, labelNames, registers: [registry], collect });
  };
  const { overload, clientLog, writeBudget } = protection;
  read(
    'gauge',
    'pubsub_overloaded',
    'Whether the process is overloaded (1) and refusing new connections (0x89).',
    [],
    (emit) => emit(overload.overloaded ? 1 : 0),
  );
  read('counter', 'pubsub_overload_transitions_total', 'Times the process became overloaded.', [], (emit) =>
    emit(overload.transitions),
  );
  read(
    'gauge',
    'pubsub_memory_limit_bytes',
    'Resident memory above which the process is overloaded (--max-memory).',
    [],
    (emit) => emit(overload.maxMemoryBytes),
  );
  read(
    'counter',
    'pubsub_accepts_paced_total',
    'New connections that waited for their turn (--max-connection-rate), by listener.',
    ['listener'],
    (emit) => {
      for (const l of protection.listeners()) emit(l.pacer.paced, { listener: l.name });
    },
  );
  read(
    'counter',
    'pubsub_accepts_expired_total',
    'New connections closed for waiting longer than --connect-timeout for their turn, by listener.',
    ['listener'],
    (emit) => {
      for (const l of protection.listeners()) emit(l.pacer.expired, { listener: l.name });
    },
  );
  read(
    'gauge',
    'pubsub_accepts_waiting',
    'New connections waiting for their turn now, by listener.',
    ['listener'],
    (emit) => {
      for (const l of protection.listeners()) emit(l.pacer.waiting, { listener: l.name });
    },
  );
  read(
    'gauge',
    'pubsub_write_buffer_bytes',
    "Unsent bytes of all connections together, as counted against --max-total-write-buffer (a socket's backlog while it owes a drain).",
    [],
    (emit) => emit(writeBudget.total),
  );
  read(
    'gauge',
    'pubsub_write_buffer_limit_bytes',
    'Unsent bytes of all connections together past which the most congested are shed (--max-total-write-buffer).',
    [],
    (emit) => emit(writeBudget.max),
  );
  read(
    'counter',
    'pubsub_log_lines_suppressed_total',
    'Client event and bad-input log lines dropped past --client-log-rate.',
    [],
    (emit) => emit(clientLog.suppressed),
  );
}

type HistogramObject = MetricObjectWithValues<MetricValueWithName<string>>;

/** prom-client's own read of a histogram for the text format, which its typings leave out. */
const histogramRead = (Histogram.prototype as unknown as { getForPromString(): Promise<HistogramObject> })
  .getForPromString;

/**
 * A Prometheus histogram read from `DurationHistogram`s at scrape time: prom-client's
 * Histogram gives the metadata (name, help, type) and the output format; its values are the
 * figures `read` yields, as prom-client has no way to set a histogram's buckets from outside.
 */
class PlainHistogram extends Histogram<string> {
  readonly #name: string;
  readonly #read: () => Iterable<[LabelValues<string>, DurationHistogram]>;

  constructor(
    name: string,
    help: string,
    labelNames: string[],
    registry: Registry,
    read: () => Iterable<[LabelValues<string>, DurationHistogram]>,
  ) {
    super({ name, help, labelNames, registers: [registry] });
    this.#name = name;
    this.#read = read;
  }

  /** What the registry reads for the text format (prom-client calls it when present). */
  async getForPromString(): Promise<HistogramObject> {
    const metric = await histogramRead.call(this);
    const bucket = `${this.#name}_bucket`;
    const values: MetricValueWithName<string>[] = [];
    for (const [labels, histogram] of this.#read()) {
      const cumulative = histogram.cumulative();
      for (let i = 0; i < histogram.bounds.length; i++)
        values.push({
          metricName: bucket,
          labels: { ...labels, le: histogram.bounds[i]! },
          value: cumulative[i]!,
        });
      values.push({ metricName: bucket, labels: { ...labels, le: '+Inf' }, value: histogram.count });
      values.push({ metricName: `${this.#name}_sum`, labels, value: histogram.sum });
      values.push({ metricName: `${this.#name}_count`, labels, value: histogram.count });
    }
    metric.values = values;
    return metric;
  }

  override get(): Promise<HistogramObject> {
    return this.getForPromString();
  }
}
