/**
 * The hostile-input soak (issue 20) against a live `pubsub serve`: `runFuzz` plays the cases of
 * mqtt-fuzz.ts over TCP, `concurrency` connections at a time, each from a loopback source
 * address of its own (127.0.0.2-101, so per-address limits and bans land on the fuzzer, never on
 * the well-behaved clients on 127.0.0.1); `WellBehavedClients` are MQTT.js subscribers (v3.1,
 * v3.1.1, v5 at QoS 0/1/2) and a publisher of a numbered QoS 1 and QoS 2 stream, running the
 * whole time and checked afterwards (every message, in order; QoS 2 exactly once).
 *
 * What counts as a failure of a case, printed with its seed and bytes: the server refusing or
 * dropping TCP connections (it is gone), a reply the independent mqtt-packet parser rejects, or
 * a v5-only packet (DISCONNECT, AUTH) sent to a v3 session. A server that dies, stalls the
 * stream, logs at level 50/60 or says "uncaught" fails the run.
 */
import { connect as netConnect, type Socket } from 'node:net';
import mqtt from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { describeCase, type FuzzCase, fuzzCase, hex } from './mqtt-fuzz.ts';

export { procRssKb } from '../../bench/proc.ts';

export interface FuzzOptions {
  port: number;
  seed: number;
  /** First case index (a replay of one case: `from` = its index, `count` = 1). */
  from?: number;
  count: number;
  concurrency: number;
  /** Milliseconds a case waits after its last byte for the server to act before it leaves. */
  lingerMs?: number;
  /** Checked between cases: false stops the run (the server is gone or the stream stalled). */
  healthy?: () => string | undefined;
  onProgress?: (done: number) => void;
}

export interface FuzzStats {
  cases: number;
  /** The server closed the connection before the case left. */
  closedByServer: number;
  /** A CONNECT the server answered with a refusal (or closed) before the body was sent. */
  refusedAtConnect: number;
  /** Bytes the server sent back in total. */
  bytesReceived: number;
  failures: string[];
  /** Why the run stopped early, if it did. */
  stopped: string | undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** One TCP connection playing one case; resolves with what the server did. */
class CaseConnection {
  readonly socket: Socket;
  readonly received: Buffer[] = [];
  receivedBytes = 0;
  closed = false;
  error: Error | undefined;
  #wake: (() => void) | undefined;

  constructor(port: number, localAddress: string) {
    this.socket = netConnect({ port, host: '127.0.0.1', localAddress });
    this.socket.on('data', (chunk: Buffer) => {
      // Keep the first 64 KiB for the reply check; count the rest.
      if (this.receivedBytes < 65_536) this.received.push(chunk);
      this.receivedBytes += chunk.length;
      this.#poke();
    });
    this.socket.on('error', (err) => {
      this.error ??= err;
    });
    this.socket.on('close', () => {
      this.closed = true;
      this.#poke();
    });
  }

  #poke(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  /** Resolves on the next data or close, or after `ms`. */
  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  connected(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.closed) reject(this.error ?? new Error('closed before connecting'));
      this.socket.once('connect', resolve);
      this.socket.once('error', reject);
    });
  }

  write(bytes: Buffer): void {
    if (!this.closed && !this.socket.destroyed) this.socket.write(bytes);
  }
}

/** Problems in what the server sent on a case whose version was fixed by a valid CONNECT. */
function replyProblems(c: FuzzCase, bytes: Buffer): string[] {
  if (c.preamble === 'none' || bytes.length === 0) return [];
  const problems: string[] = [];
  const parser = mqttPacket.parser({ protocolVersion: c.version });
  parser.on('packet', (p: mqttPacket.Packet) => {
    // DISCONNECT and AUTH go server to client only in MQTT 5 [MQTT-3.14.0] (3.1.1: client only).
    if (c.version !== 5 && (p.cmd === 'disconnect' || p.cmd === 'auth'))
      problems.push(`a v${c.version} session was sent ${p.cmd.toUpperCase()}`);
  });
  parser.on('error', (err: Error) => problems.push(`malformed reply: ${err.message}`));
  parser.parse(bytes);
  return problems;
}

/** Plays one case; returns failure text (with seed and hex) or undefined. */
async function playCase(
  c: FuzzCase,
  options: FuzzOptions,
  stats: FuzzStats,
  localAddress: string,
): Promise<string | undefined> {
  const conn = new CaseConnection(options.port, localAddress);
  try {
    await conn.connected();
  } catch (err) {
    return `TCP connect failed (${(err as Error).message}): the server no longer accepts`;
  }
  const linger = options.lingerMs ?? 50;
  if (c.preamble === 'connect-wait') {
    conn.write(c.connect!);
    const deadline = Date.now() + 5000;
    while (!conn.closed && conn.receivedBytes < 4 && Date.now() < deadline) await conn.wait(100);
    const head = Buffer.concat(conn.received);
    // CONNACK: 0x20, length, flags, return/reason code; anything but 0 is a refusal.
    if (conn.closed || head.length < 4 || head[0] !== 0x20 || head[3] !== 0) stats.refusedAtConnect++;
  } else if (c.preamble === 'connect-pipelined') conn.write(c.connect!);
  let offset = 0;
  for (const size of c.chunks) {
    if (conn.closed) break;
    conn.write(c.body.subarray(offset, offset + size));
    offset += size;
    if (c.gapMs > 0) await sleep(c.gapMs);
    else if (c.delivery === 'chunked') await new Promise<void>((resolve) => setImmediate(resolve));
  }
  const deadline = Date.now() + linger;
  while (!conn.closed && Date.now() < deadline) await conn.wait(deadline - Date.now());
  if (conn.closed) stats.closedByServer++;
  if (c.ending === 'end') conn.socket.end();
  else if (c.ending === 'reset' && !conn.closed) conn.socket.resetAndDestroy();
  else conn.socket.destroy();
  if (c.ending === 'end') setTimeout(() => conn.socket.destroy(), 1000).unref();
  stats.bytesReceived += conn.receivedBytes;
  const reply = Buffer.concat(conn.received);
  const problems = replyProblems(c, reply);
  return problems.length === 0 ? undefined : `${problems.join('; ')}\nreply: ${hex(reply.subarray(0, 512))}`;
}

/** Runs `count` cases from `from`, `concurrency` at a time. Never throws for a case's sake. */
export async function runFuzz(options: FuzzOptions): Promise<FuzzStats> {
  const stats: FuzzStats = {
    cases: 0,
    closedByServer: 0,
    refusedAtConnect: 0,
    bytesReceived: 0,
    failures: [],
    stopped: undefined,
  };
  const from = options.from ?? 0;
  let next = from;
  const end = from + options.count;
  const inFlight = new Set<FuzzCase>();
  const worker = async (slot: number): Promise<void> => {
    const localAddress = `127.0.0.${2 + (slot % 100)}`;
    while (next < end && stats.stopped === undefined) {
      const c = fuzzCase(options.seed, next++);
      inFlight.add(c);
      const failure = await playCase(c, options, stats, localAddress);
      inFlight.delete(c);
      stats.cases++;
      if (failure !== undefined && stats.failures.length < 20)
        stats.failures.push(`${failure}\n${describeCase(c, options.seed)}`);
      const unhealthy = options.healthy?.() ?? (failure?.startsWith('TCP connect') ? failure : undefined);
      if (unhealthy !== undefined && stats.stopped === undefined) {
        stats.stopped = unhealthy;
        // Whatever was in flight when the server failed is the suspect: print all of it.
        for (const suspect of [c, ...inFlight])
          stats.failures.push(`in flight when stopped:\n${describeCase(suspect, options.seed)}`);
      }
      if (stats.cases % 1000 === 0) options.onProgress?.(stats.cases);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, (_, slot) => worker(slot)));
  return stats;
}

/** A pino line at error (50) or fatal (60), or any line mentioning an uncaught exception. */
export function isProblemLogLine(line: string): boolean {
  if (/uncaught/i.test(line)) return true;
  const m = /"level":(\d+)/.exec(line);
  return m !== null && Number(m[1]) >= 50;
}

interface Subscriber {
  name: string;
  qos: 0 | 1 | 2;
  client: mqtt.MqttClient;
  /** Sequence numbers received, per stream (index 1: QoS 1 stream, 2: QoS 2 stream). */
  got: [number[], number[], number[]];
}

/**
 * MQTT.js clients that behave: subscribers to `<prefix>/+` at QoS 0, 1 and 2 (v3.1, v3.1.1, v5)
 * and a publisher of two numbered streams, `<prefix>/q1` at QoS 1 and `<prefix>/q2` at QoS 2,
 * at `rate` messages/s each, until `stop`.
 */
export class WellBehavedClients {
  readonly #subscribers: Subscriber[];
  readonly #publisher: mqtt.MqttClient;
  readonly #prefix: string;
  readonly #problems: string[] = [];
  #sent = 0;
  #acked: Promise<unknown>[] = [];
  #timer: NodeJS.Timeout | undefined;
  #watch: NodeJS.Timeout | undefined;
  #stopping = false;
  #lastDelivery = Date.now();

  private constructor(subscribers: Subscriber[], publisher: mqtt.MqttClient, prefix: string) {
    this.#subscribers = subscribers;
    this.#publisher = publisher;
    this.#prefix = prefix;
    for (const client of [publisher, ...subscribers.map((s) => s.client)]) {
      client.on('close', () => {
        if (!this.#stopping) this.#problems.push(`${client.options.clientId} lost its connection`);
      });
      client.on('error', (err) => this.#problems.push(`${client.options.clientId}: ${err.message}`));
    }
  }

  static async start(url: string, prefix: string): Promise<WellBehavedClients> {
    const shapes = [
      { name: 'v5-q0', version: 5, qos: 0 },
      { name: 'v5-q1', version: 5, qos: 1 },
      { name: 'v5-q2', version: 5, qos: 2 },
      { name: 'v311-q1', version: 4, qos: 1 },
      { name: 'v311-q2', version: 4, qos: 2 },
      { name: 'v31-q2', version: 3, qos: 2 },
    ] as const;
    const subscribers: Subscriber[] = [];
    for (const shape of shapes) {
      const client = await mqtt.connectAsync(url, {
        protocolVersion: shape.version,
        ...(shape.version === 3 ? { protocolId: 'MQIsdp' } : {}),
        clientId: `soak-${shape.name}-${process.pid}`,
        reconnectPeriod: 0,
        keepalive: 30,
      });
      const sub: Subscriber = { name: shape.name, qos: shape.qos, client, got: [[], [], []] };
      client.on('message', (topic, payload) => {
        const stream = topic === `${prefix}/q1` ? 1 : topic === `${prefix}/q2` ? 2 : 0;
        sub.got[stream].push(Number(`${payload}`));
      });
      await client.subscribeAsync(`${prefix}/+`, { qos: shape.qos });
      subscribers.push(sub);
    }
    const publisher = await mqtt.connectAsync(url, {
      protocolVersion: 5,
      clientId: `soak-publisher-${process.pid}`,
      reconnectPeriod: 0,
      keepalive: 30,
    });
    return new WellBehavedClients(subscribers, publisher, prefix);
  }

  /** Publishes message n on both streams every 1000/rate ms, at most 100 unacknowledged. */
  publish(rate: number): void {
    const outstanding = new Set<Promise<unknown>>();
    this.#timer = setInterval(
      () => {
        if (outstanding.size >= 100) return;
        const n = this.#sent++;
        for (const qos of [1, 2] as const) {
          const ack = this.#publisher.publishAsync(`${this.#prefix}/q${qos}`, `${n}`, { qos });
          outstanding.add(ack);
          this.#acked.push(ack.finally(() => outstanding.delete(ack)));
        }
      },
      Math.max(1, 1000 / rate),
    );
    const v5q1 = this.#subscribers.find((s) => s.name === 'v5-q1')!;
    let seen = 0;
    this.#watch = setInterval(() => {
      const now = v5q1.got[1].length;
      if (now !== seen) this.#lastDelivery = Date.now();
      seen = now;
    }, 200);
  }

  /** Messages published per stream so far. */
  get sent(): number {
    return this.#sent;
  }

  /** Why the clients are unwell right now (a lost connection, a stream stalled 10 s), if they are. */
  unwell(): string | undefined {
    if (this.#problems.length > 0) return this.#problems[0];
    if (this.#timer !== undefined && Date.now() - this.#lastDelivery > 10_000)
      return 'the QoS 1 stream stalled for 10 s';
    return undefined;
  }

  /** Stops publishing, waits for every acknowledgement and delivery, and lists what went wrong. */
  async stop(
    timeoutMs = 30_000,
  ): Promise<{ sent: number; problems: string[]; received: Record<string, number> }> {
    clearInterval(this.#timer);
    clearInterval(this.#watch);
    const deadline = Date.now() + timeoutMs;
    // Acknowledgements from a server that died never come: wait for them only until the deadline.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(this.#acked),
      new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
    clearTimeout(timer);
    const n = this.#sent;
    const complete = (s: Subscriber): boolean =>
      s.qos === 0 || (s.got[1].at(-1) === n - 1 && s.got[2].at(-1) === n - 1);
    while (!this.#subscribers.every(complete) && Date.now() < deadline) await sleep(50);
    this.#stopping = true;
    const problems = [...this.#problems];
    const received: Record<string, number> = {};
    for (const s of this.#subscribers) {
      received[s.name] = s.got[1].length + s.got[2].length;
      for (const stream of [1, 2] as const) {
        const effective = Math.min(s.qos, stream);
        const got = s.got[stream];
        if (effective === 0) continue;
        const expected = Array.from({ length: n }, (_, i) => i);
        // QoS 2: exactly once, in order. QoS 1: every message, in order (a repeat allowed).
        const seen = effective === 2 ? got : got.filter((v, i) => i === 0 || v !== got[i - 1]);
        if (seen.length !== n || seen.some((v, i) => v !== expected[i])) {
          const firstBad = seen.findIndex((v, i) => v !== i);
          problems.push(
            `${s.name} on the QoS ${stream} stream: ${got.length} of ${n} messages; first out of place at ${firstBad} (${seen.slice(Math.max(0, firstBad - 2), firstBad + 3).join(',')})`,
          );
        }
      }
    }
    await Promise.all(
      [this.#publisher, ...this.#subscribers.map((s) => s.client)].map((c) => c.endAsync(true)),
    );
    return { sent: n, problems, received };
  }
}

/** A fresh MQTT.js client of `version` connects, subscribes, publishes and gets its message back. */
export async function roundTrip(url: string, version: 3 | 4 | 5): Promise<void> {
  const client = await mqtt.connectAsync(url, {
    protocolVersion: version,
    ...(version === 3 ? { protocolId: 'MQIsdp' } : {}),
    clientId: `soak-after-v${version}-${process.pid}`,
    reconnectPeriod: 0,
    connectTimeout: 5000,
  });
  try {
    const topic = `soak/after/v${version}`;
    const got = new Promise<string>((resolve) => client.once('message', (_t, p) => resolve(`${p}`)));
    await client.subscribeAsync(topic, { qos: 1 });
    await client.publishAsync(topic, 'still serving', { qos: 1 });
    const answer = await Promise.race([got, sleep(5000).then(() => 'nothing within 5 s')]);
    if (answer !== 'still serving') throw new Error(`v${version} round trip: ${answer}`);
  } finally {
    await client.endAsync(true);
  }
}

/** The gauges that show held state, summed over their labels, and two counters. */
const STATE_GAUGES = [
  'pubsub_connections',
  'pubsub_sessions',
  'pubsub_subscriptions',
  'pubsub_queued_messages',
  'pubsub_inflight_messages',
  'pubsub_retained_messages',
  'pubsub_retained_bytes',
  // Counters, for the report: CONNECTs refused (any reason), overload entries and exits.
  'pubsub_connections_refused_total',
  'pubsub_overload_transitions_total',
] as const;

export type StateGauges = Record<(typeof STATE_GAUGES)[number], number>;

/** The state gauges from the admin API's GET /metrics (docs/observability.md). */
export async function stateGauges(apiUrl: string): Promise<StateGauges> {
  const text = await (await fetch(`${apiUrl}/metrics`)).text();
  const out = Object.fromEntries(STATE_GAUGES.map((name) => [name, 0])) as StateGauges;
  for (const m of text.matchAll(/^(pubsub_[a-z_]+)(?:\{[^}]*\})? (\S+)$/gm)) {
    const name = m[1] as keyof StateGauges;
    if (name in out) out[name] += Number(m[2]);
  }
  return out;
}

/** `pubsub_connections_refused_total` by its `reason` label. */
export async function refusalsByReason(apiUrl: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${apiUrl}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^pubsub_connections_refused_total\{[^}]*reason="([^"]+)"[^}]*\} (\S+)$/gm))
    out[m[1]!] = (out[m[1]!] ?? 0) + Number(m[2]);
  return out;
}
