/**
 * The $SYS tree of one broker: mosquitto's `$SYS/broker/...` statistics topics, so that
 * `mosquitto_sub -t '$SYS/#'` and dashboards made for mosquitto read a tenant as they would read
 * a mosquitto (names and formats as mosquitto's sys_tree.c; docs/observability.md lists them).
 *
 * Invariants:
 * - A tenant's tree is read from that broker's own figures only (`BrokerStats`, its sessions,
 *   subscription index and retained store): one broker's figures never include another's.
 * - Nothing runs per message: the figures are the plain counters the hot path already keeps,
 *   read when the tree is refreshed.
 * - The messages are retained in the tree's own `RetainedStore`, never the tenant's: they are not
 *   written to the message store, not counted in `retained messages/count` or the retained
 *   bounds, and not listed by the admin API. A SUBSCRIBE whose filter starts with `$SYS` is
 *   given them as retained messages (the subscribe handler reads `sysRetained`).
 * - QoS 0, retain set; a value is published only when its text changed (as mosquitto does), so
 *   a static one (`version`) goes out once.
 * - Work happens only when someone could read it: the ticker refreshes a broker's tree only
 *   while some filter of that broker starts with `$SYS` (one map lookup per broker and tick); a
 *   subscription arriving at a tree older than two intervals refreshes it first, without routing,
 *   so a late subscriber gets current values. Load averages are computed over the time since the
 *   last refresh, however long, so skipped ticks lose nothing but resolution.
 * - Load averages are mosquitto's: per minute rates, each refresh moving the average toward the
 *   rate of the elapsed span by `1 - exp(-dt / period)` for periods of 1, 5 and 15 minutes.
 * - The ticker's timer is unref'd and cleared by `stop` (the server's close).
 */
import { readFileSync } from 'node:fs';
import { RetainedStore } from '../retained/index.ts';
import { Message } from '../router/index.ts';
import type { BrokerStats } from '../session/index.ts';

/** What a tree reads of its broker; the Broker implements it. */
export interface SysSource {
  readonly stats: BrokerStats;
  /** Every session by client id, online (`link` set) or offline. */
  readonly sessions: ReadonlyMap<
    string,
    { readonly link: unknown; readonly queuedCount: number; readonly inflightCount: number }
  >;
  readonly index: { readonly size: number };
  readonly retained: { readonly size: number };
  /** Routes a message to the broker's subscribers without applying it to its retained store. */
  route(message: Message): unknown;
}

const PREFIX = '$SYS/broker/';

/** This server's version, read once (`pubsub version 0.1.0`, as mosquitto's `mosquitto version 2.0.18`). */
const VERSION = `pubsub version ${packageVersion()}`;

function packageVersion(): string {
  try {
    // src/broker/ and, once built, dist/broker/ both sit two levels below the package root.
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: unknown;
    };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The figures that have load averages, each `load/<name>/1min|5min|15min`, with how to read them. */
const LOADS: readonly [string, (s: BrokerStats) => number][] = [
  ['messages/received', (s) => s.received[0]! + s.received[1]! + s.received[2]!],
  ['messages/sent', (s) => s.sent[0]! + s.sent[1]! + s.sent[2]!],
  ['bytes/received', (s) => s.bytesReceived],
  ['bytes/sent', (s) => s.bytesSent],
  ['connections', (s) => s.connectionsAccepted],
];
const PERIODS: readonly [string, number][] = [
  ['1min', 60],
  ['5min', 300],
  ['15min', 900],
];

export class SysTree {
  /** The tree's messages, by topic: retained here, never in the tenant's store. */
  readonly retained = new RetainedStore();
  /** Epoch ms of the last refresh; 0 before the first. */
  refreshedAt = 0;
  readonly #source: SysSource;
  readonly #openedAt: number;
  /** The payload text last published on each topic. */
  readonly #texts = new Map<string, string>();
  /** The counters of LOADS at the last refresh, and when that was (the broker's figures start at 0). */
  readonly #counts = new Float64Array(LOADS.length);
  #countedAt: number;
  /** The load averages, LOADS × PERIODS. */
  readonly #loads = new Float64Array(LOADS.length * PERIODS.length);
  #maxClients = 0;

  /** `openedAt`: when the broker was opened in this process, its figures then all zero. */
  constructor(source: SysSource, openedAt: number) {
    this.#source = source;
    this.#openedAt = openedAt;
    this.#countedAt = openedAt;
  }

  /** Reads the broker's figures and publishes those that changed; `route` also delivers them now. */
  refresh(now: number, route: boolean): void {
    const source = this.#source;
    const stats = source.stats;
    this.refreshedAt = now;
    this.#set('version', VERSION, route);
    this.#set('uptime', `${Math.floor((now - this.#openedAt) / 1000)} seconds`, route);

    let connected = 0;
    let stored = source.retained.size;
    for (const session of source.sessions.values()) {
      if (session.link !== undefined) connected++;
      stored += session.queuedCount + session.inflightCount;
    }
    const total = source.sessions.size;
    if (total > this.#maxClients) this.#maxClients = total;
    this.#set('clients/connected', String(connected), route);
    this.#set('clients/disconnected', String(total - connected), route);
    this.#set('clients/total', String(total), route);
    this.#set('clients/maximum', String(this.#maxClients), route);
    this.#set('clients/expired', String(stats.sessionsExpired), route);
    this.#set('messages/received', String(LOADS[0]![1](stats)), route);
    this.#set('messages/sent', String(LOADS[1]![1](stats)), route);
    this.#set('messages/stored', String(stored), route);
    this.#set('retained messages/count', String(source.retained.size), route);
    this.#set('subscriptions/count', String(source.index.size), route);
    this.#set('bytes/received', String(stats.bytesReceived), route);
    this.#set('bytes/sent', String(stats.bytesSent), route);

    const seconds = (now - this.#countedAt) / 1000;
    if (seconds <= 0) return;
    this.#countedAt = now;
    for (let i = 0; i < LOADS.length; i++) {
      const [name, read] = LOADS[i]!;
      const count = read(stats);
      const perMinute = ((count - this.#counts[i]!) * 60) / seconds;
      this.#counts[i] = count;
      for (let p = 0; p < PERIODS.length; p++) {
        const [period, periodSeconds] = PERIODS[p]!;
        const at = i * PERIODS.length + p;
        const load = perMinute + Math.exp(-seconds / periodSeconds) * (this.#loads[at]! - perMinute);
        this.#loads[at] = load;
        this.#set(`load/${name}/${period}`, load.toFixed(2), route);
      }
    }
  }

  #set(name: string, text: string, route: boolean): void {
    const topic = PREFIX + name;
    if (this.#texts.get(topic) === text) return;
    this.#texts.set(topic, text);
    const message = new Message({ topic, payload: Buffer.from(text), qos: 0, retain: true });
    this.retained.apply(message);
    if (route) this.#source.route(message);
  }
}

/** What the ticker asks of each broker once per interval. */
export interface SysTicking {
  tickSys(now: number): void;
}

/** One timer for the whole server: every `intervalSeconds`, each broker's `tickSys`. */
export class SysTicker {
  readonly #intervalMs: number;
  readonly #brokers: () => Iterable<SysTicking>;
  #timer: NodeJS.Timeout | undefined;

  constructor(intervalSeconds: number, brokers: () => Iterable<SysTicking>) {
    this.#intervalMs = intervalSeconds * 1000;
    this.#brokers = brokers;
  }

  /** Starts the timer; nothing when the interval is 0 (no $SYS tree). */
  start(): void {
    if (this.#intervalMs === 0 || this.#timer !== undefined) return;
    this.#timer = setInterval(() => {
      const now = Date.now();
      for (const broker of this.#brokers()) broker.tickSys(now);
    }, this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
