/**
 * The load generator for one throughput/latency run (a child process of run.ts, or standalone:
 * `node bench/load.ts '<json params>'`). Publishers and subscribers live in this one process,
 * so the send time in each payload and the receive time come from the same monotonic clock.
 *
 * Payload layout (little-endian, then padding up to --size):
 *   0 f64 send time (performance.now(), ms)   8 u32 publisher   12 u32 publisher sequence
 *  16 u32 stream (publisher x topic)          20 u32 stream sequence
 *
 * Closed loop: each publisher keeps at most its share of `window` messages in flight
 * (published and not yet received by every subscriber that should get it) and writes up to
 * `batch` PUBLISH packets per write. With `rate`, publishers instead send at a fixed total rate,
 * one PUBLISH per write (open loop).
 *
 * Correctness is checked while measuring: each subscriber counts deliveries per stream it
 * expects; after the run, sent - received per (subscriber, stream) is loss (or duplicates when
 * negative), a stream sequence going backwards is out-of-order, and a message on a stream or
 * topic the subscriber did not subscribe to is misrouted.
 */
import { encode, type PublishPacket, type QoS, withPacketId } from '../src/protocol/index.ts';
import { type Endpoint, MqttConn, parseUrl } from './client.ts';
import { type CpuDelta, cpuDelta, cpuSnapshot, procRssKb } from './proc.ts';
import { LatencyHistogram, type LatencySummary } from './stats.ts';

export type LoadScenario = 'fanin' | 'fanout' | 'topics' | 'persistent';

export interface LoadParams {
  scenario: LoadScenario;
  url: string;
  /** Where the subscribers connect, when not `url` (cluster: another node). */
  subUrl?: string;
  /** Subscribers spread over these in turn (subscriber i on `subUrls[i % n]`), instead of `subUrl`. */
  subUrls?: string[];
  /** Milliseconds to wait between the subscriptions and the first publish (cluster: interest spreading). */
  settleMs?: number;
  pubs: number;
  subs: number;
  qos: QoS;
  size: number;
  /** Total messages in flight across publishers (closed loop). */
  window: number;
  batch: number;
  /** Fixed total publish rate (msgs/s), one PUBLISH per write; closed loop when absent. */
  rate?: number;
  durationS: number;
  warmupS: number;
  brokerPid?: number;
  /** topics: share of subscribers on dev/<i>/+ instead of dev/<i>/temp. */
  wildFrac?: number;
  /** topics: subscribers on dev/+/temp. */
  monitors?: number;
  connectConcurrency?: number;
  /**
   * When freed window slots are refilled: 'turn' (default) once per event-loop turn, so a
   * publisher writes everything freed by all reads of that turn (up to `batch` per write);
   * 'delivery' as soon as a delivery frees a slot (many 1-message writes).
   */
  refill?: 'turn' | 'delivery';
  /** TCP_NODELAY on the generator's own sockets (default true: its writes are batched already). */
  noDelay?: boolean;
}

export interface LoadChecks {
  lost: number;
  duplicates: number;
  outOfOrder: number;
  misrouted: number;
  /** QoS 1 publishes the broker never acknowledged. */
  missingPubacks: number;
  /** Times a publisher's oldest message was given up on after a stall (only after loss). */
  stalls: number;
  /** Messages still in flight when the drain period ended. */
  undrained: number;
  /** persistent: whether the reconnect found its session (sessionPresent = 1). */
  sessionResumed?: boolean;
}

export interface LoadResult {
  ok: boolean;
  error?: string;
  deliveredPerSec: number;
  publishedPerSec: number;
  latency: LatencySummary;
  cpu: CpuDelta;
  brokerRssKb: number | null;
  checks: LoadChecks;
  /** Deliveries per subscriber socket read during the measured window. */
  msgsPerRead: number;
  /** WebSocket frames per delivery (WS only). */
  framesPerMsg?: number;
  /** Fixed-rate mode: publishes skipped because a publisher had too much in flight. */
  skipped?: number;
  setupMs: number;
}

const HEADER = 24;
const STALL_MS = 1000;
const DRAIN_MS = 3000;

interface Stream {
  topic: string;
  pub: number;
  template: Buffer;
  payloadOffset: number;
  expected: number;
  sent: number;
}

class Publisher {
  readonly index: number;
  readonly conn: MqttConn;
  readonly streams: number[] = [];
  readonly window: number;
  readonly ring: Int32Array;
  readonly mask: number;
  seq = 0;
  oldest = 0;
  lastOldest = 0;
  lastAdvanceAt = 0;
  blocked = false;
  rr = 0;
  packetId = 0;
  pubacks = 0;
  qos1Sent = 0;
  stalls = 0;

  constructor(index: number, conn: MqttConn, window: number) {
    this.index = index;
    this.conn = conn;
    this.window = window;
    let size = 1024;
    while (size < window * 2) size *= 2;
    this.ring = new Int32Array(size);
    this.mask = size - 1;
  }

  get inflight(): number {
    return this.seq - this.oldest;
  }

  complete(seq: number): void {
    const i = seq & this.mask;
    if (--this.ring[i]! <= 0 && seq === this.oldest) this.advance();
  }

  advance(): void {
    while (this.oldest < this.seq && this.ring[this.oldest & this.mask]! <= 0) this.oldest++;
  }
}

class Subscriber {
  readonly conn: MqttConn;
  readonly expected: Uint8Array;
  readonly next: Int32Array;
  readonly received: Int32Array;

  constructor(conn: MqttConn, nStreams: number) {
    this.conn = conn;
    this.expected = new Uint8Array(nStreams);
    this.next = new Int32Array(nStreams);
    this.received = new Int32Array(nStreams);
  }
}

const pad5 = (i: number): string => String(i).padStart(5, '0');

export async function runLoad(params: LoadParams): Promise<LoadResult> {
  const t0 = performance.now();
  const endpoint: Endpoint = parseUrl(params.url);
  const subEndpoints: Endpoint[] = params.subUrls?.map(parseUrl) ?? [
    params.subUrl === undefined ? endpoint : parseUrl(params.subUrl),
  ];
  const { qos, size } = params;
  if (size < HEADER) throw new Error(`payload size must be >= ${HEADER}`);
  const tag = Math.random().toString(36).slice(2, 8);
  const conns: MqttConn[] = [];
  const concurrency = params.connectConcurrency ?? 100;
  const noDelay = params.noDelay ?? true;

  // ---- topology: streams and who should receive them ----
  const streams: Stream[] = [];
  const subFilters: string[][] = [];
  const subExpects: number[][] = [];
  let nPubs = params.pubs;
  const payload = Buffer.alloc(size, 0x61);
  const addStream = (topic: string, pub: number): number => {
    const template = encode(
      {
        type: 'publish',
        topic,
        payload,
        qos,
        retain: false,
        dup: false,
        ...(qos > 0 ? { packetId: 1 } : {}),
      },
      4,
    );
    streams.push({ topic, pub, template, payloadOffset: template.length - size, expected: 0, sent: 0 });
    return streams.length - 1;
  };
  if (params.scenario === 'fanin' || params.scenario === 'persistent') {
    for (let p = 0; p < nPubs; p++) addStream('bench/fanin', p);
    subFilters.push(['bench/fanin']);
    subExpects.push(streams.map((_, i) => i));
  } else if (params.scenario === 'fanout') {
    nPubs = 1;
    addStream('bench/fanout', 0);
    for (let s = 0; s < params.subs; s++) {
      subFilters.push(['bench/fanout']);
      subExpects.push([0]);
    }
  } else {
    nPubs = 1;
    const wild = Math.round((params.wildFrac ?? 0.1) * params.subs);
    for (let s = 0; s < params.subs; s++) {
      const id = addStream(`dev/${pad5(s)}/temp`, 0);
      subFilters.push([s < wild ? `dev/${pad5(s)}/+` : `dev/${pad5(s)}/temp`]);
      subExpects.push([id]);
    }
    for (let m = 0; m < (params.monitors ?? 1); m++) {
      subFilters.push(['dev/+/temp']);
      subExpects.push(streams.map((_, i) => i));
    }
  }
  for (const list of subExpects) for (const id of list) streams[id]!.expected++;
  const nStreams = streams.length;

  // ---- measurement state ----
  const hist = new LatencyHistogram();
  let measuring = false;
  let running = false;
  let delivered = 0;
  let misrouted = 0;
  let outOfOrder = 0;
  let published = 0;
  let refillScheduled = false;
  const publishers: Publisher[] = [];
  const subscribers: Subscriber[] = [];

  const scheduleRefill = (): void => {
    if (refillScheduled || !running || params.rate !== undefined) return;
    if (params.refill === 'delivery') {
      refill();
      return;
    }
    refillScheduled = true;
    setImmediate(refill);
  };

  const onDelivery = (sub: Subscriber, p: PublishPacket): void => {
    const pl = p.payload;
    if (pl.length < HEADER) {
      misrouted++;
      return;
    }
    const now = performance.now();
    const sent = pl.readDoubleLE(0);
    const pubIndex = pl.readUInt32LE(8);
    const pubSeq = pl.readUInt32LE(12);
    const sid = pl.readUInt32LE(16);
    const sseq = pl.readUInt32LE(20);
    if (sid >= nStreams || sub.expected[sid] === 0 || p.topic !== streams[sid]!.topic) {
      misrouted++;
      return;
    }
    delivered++;
    if (measuring) hist.recordMs(now - sent);
    sub.received[sid]!++;
    if (sseq < sub.next[sid]!) outOfOrder++;
    else sub.next[sid] = sseq + 1;
    const pub = publishers[pubIndex];
    if (pub !== undefined) {
      pub.complete(pubSeq);
      scheduleRefill();
    }
  };

  const writeBatch = (pub: Publisher, n: number): void => {
    const now = performance.now();
    let total = 0;
    const picks: number[] = [];
    for (let k = 0; k < n; k++) {
      const sid = pub.streams[pub.rr++ % pub.streams.length]!;
      picks.push(sid);
      total += streams[sid]!.template.length;
    }
    const buf = Buffer.allocUnsafe(total);
    let off = 0;
    for (const sid of picks) {
      const st = streams[sid]!;
      if (qos > 0) {
        pub.packetId = pub.packetId >= 65535 ? 1 : pub.packetId + 1;
        withPacketId(st.template, pub.packetId).copy(buf, off);
        pub.qos1Sent++;
      } else {
        st.template.copy(buf, off);
      }
      const po = off + st.payloadOffset;
      buf.writeDoubleLE(now, po);
      buf.writeUInt32LE(pub.index, po + 8);
      buf.writeUInt32LE(pub.seq, po + 12);
      buf.writeUInt32LE(sid, po + 16);
      buf.writeUInt32LE(st.sent++, po + 20);
      pub.ring[pub.seq & pub.mask] = st.expected;
      pub.seq++;
      off += st.template.length;
    }
    published += n;
    if (!pub.conn.send(buf) && !pub.blocked) {
      pub.blocked = true;
      pub.conn.socket.once('drain', () => {
        pub.blocked = false;
        scheduleRefill();
      });
    }
  };

  const refill = (): void => {
    refillScheduled = false;
    if (!running) return;
    for (const pub of publishers) {
      while (!pub.blocked && pub.inflight < pub.window) {
        writeBatch(pub, Math.min(params.batch, pub.window - pub.inflight));
      }
    }
  };

  // ---- connect ----
  const connectAll = async <T>(n: number, make: (i: number) => Promise<T>): Promise<T[]> => {
    const out: T[] = [];
    for (let i = 0; i < n; i += concurrency) {
      const slice = [];
      for (let k = i; k < Math.min(n, i + concurrency); k++) slice.push(make(k));
      out.push(...(await Promise.all(slice)));
    }
    return out;
  };

  let sessionResumed: boolean | undefined;
  try {
    const subs = await connectAll(subFilters.length, async (i) => {
      const persistent = params.scenario === 'persistent';
      const clientId = persistent ? `bench-persistent-sub-${tag}` : `bench-sub-${i}-${tag}`;
      const subEndpoint = subEndpoints[i % subEndpoints.length]!;
      let conn = new MqttConn(subEndpoint);
      conns.push(conn);
      await conn.connect({ clientId, clean: !persistent, noDelay });
      const granted = await conn.subscribe(subFilters[i]!.map((f) => [f, qos] as [string, QoS]));
      if (granted.some((g) => g === 0x80)) throw new Error(`subscription refused: ${subFilters[i]}`);
      if (persistent) {
        // Leave and come back: the session (and its subscription) must still be there.
        const closed = new Promise<void>((resolve) => {
          conn.onClose = () => resolve();
        });
        conn.disconnect();
        await closed;
        conn = new MqttConn(subEndpoint);
        conns.push(conn);
        const { sessionPresent } = await conn.connect({ clientId, clean: false, noDelay });
        sessionResumed = sessionPresent;
      }
      const sub = new Subscriber(conn, nStreams);
      for (const id of subExpects[i]!) sub.expected[id] = 1;
      conn.onPublish = (p) => onDelivery(sub, p);
      return sub;
    });
    subscribers.push(...subs);
    if (params.settleMs !== undefined) await new Promise((resolve) => setTimeout(resolve, params.settleMs));
    const perPubWindow =
      params.rate !== undefined ? 60_000 : Math.max(1, Math.floor(params.window / Math.max(1, nPubs)));
    const pubs = await connectAll(nPubs, async (p) => {
      const conn = new MqttConn(endpoint);
      conns.push(conn);
      await conn.connect({ clientId: `bench-pub-${p}-${tag}`, clean: true, noDelay });
      const pub = new Publisher(p, conn, perPubWindow);
      for (let s = 0; s < nStreams; s++) if (streams[s]!.pub === p) pub.streams.push(s);
      conn.onPuback = () => {
        pub.pubacks++;
      };
      return pub;
    });
    publishers.push(...pubs);
  } catch (err) {
    for (const c of conns) c.destroy();
    throw err;
  }
  const setupMs = performance.now() - t0;

  // ---- run ----
  running = true;
  let skipped = 0;
  let rateTimer: NodeJS.Timeout | undefined;
  const startAt = performance.now();
  if (params.rate !== undefined) {
    const rate = params.rate;
    let sentTotal = 0;
    let rr = 0;
    const tick = (): void => {
      if (!running) return;
      let due = Math.floor(((performance.now() - startAt) * rate) / 1000) - sentTotal;
      if (due > rate / 10) {
        skipped += due - Math.floor(rate / 10);
        sentTotal += due - Math.floor(rate / 10);
        due = Math.floor(rate / 10);
      }
      for (let k = 0; k < due; k++) {
        const pub = publishers[rr++ % publishers.length]!;
        sentTotal++;
        if (pub.blocked || pub.inflight >= pub.window) skipped++;
        else writeBatch(pub, 1);
      }
      rateTimer = setTimeout(tick, 1);
    };
    tick();
  } else {
    refill();
  }

  // Stall watchdog: after loss (QoS 0 drops) a publisher's oldest message never completes.
  const watchdog = setInterval(() => {
    const now = performance.now();
    for (const pub of publishers) {
      if (pub.oldest !== pub.lastOldest || pub.inflight === 0) {
        pub.lastOldest = pub.oldest;
        pub.lastAdvanceAt = now;
      } else if (now - pub.lastAdvanceAt > STALL_MS && (pub.inflight >= pub.window || !running)) {
        pub.ring[pub.oldest & pub.mask] = 0;
        pub.stalls++;
        pub.advance();
        pub.lastOldest = pub.oldest;
        pub.lastAdvanceAt = now;
        scheduleRefill();
      }
    }
  }, 100);

  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  await sleep(params.warmupS * 1000);
  const readsNow = (): number => subscribers.reduce((a, s) => a + s.conn.reads, 0);
  const framesNow = (): number => subscribers.reduce((a, s) => a + s.conn.wsFrames, 0);
  const a = cpuSnapshot(params.brokerPid);
  const delivered0 = delivered;
  const published0 = published;
  const reads0 = readsNow();
  const frames0 = framesNow();
  hist.reset();
  measuring = true;
  await sleep(params.durationS * 1000);
  const b = cpuSnapshot(params.brokerPid);
  measuring = false;
  const deliveredM = delivered - delivered0;
  const publishedM = published - published0;
  const readsM = readsNow() - reads0;
  const framesM = framesNow() - frames0;
  const brokerRssKb = params.brokerPid !== undefined ? procRssKb(params.brokerPid) : null;
  running = false;
  clearTimeout(rateTimer);

  // ---- drain and check ----
  const drainUntil = performance.now() + DRAIN_MS;
  const settled = (): boolean =>
    publishers.every((p) => p.inflight === 0 && (qos === 0 || p.pubacks >= p.qos1Sent));
  while (!settled() && performance.now() < drainUntil) await sleep(20);
  clearInterval(watchdog);
  const cpu = cpuDelta(a, b);
  let lost = 0;
  let duplicates = 0;
  for (const sub of subscribers) {
    for (let sid = 0; sid < nStreams; sid++) {
      if (sub.expected[sid] === 0) continue;
      const diff = streams[sid]!.sent - sub.received[sid]!;
      if (diff > 0) lost += diff;
      else duplicates -= diff;
    }
  }
  const checks: LoadChecks = {
    lost,
    duplicates,
    outOfOrder,
    misrouted,
    missingPubacks: qos === 0 ? 0 : publishers.reduce((n, p) => n + Math.max(0, p.qos1Sent - p.pubacks), 0),
    stalls: publishers.reduce((n, p) => n + p.stalls, 0),
    undrained: publishers.reduce((n, p) => n + p.inflight, 0),
    ...(sessionResumed !== undefined ? { sessionResumed } : {}),
  };
  for (const c of conns) c.disconnect();
  await sleep(50);
  for (const c of conns) c.destroy();

  const seconds = cpu.seconds;
  const failedChecks = qos > 0 && (lost > 0 || checks.missingPubacks > 0);
  return {
    ok: !failedChecks && misrouted === 0 && outOfOrder === 0 && sessionResumed !== false,
    deliveredPerSec: deliveredM / seconds,
    publishedPerSec: publishedM / seconds,
    latency: hist.summary(),
    cpu,
    brokerRssKb,
    checks,
    msgsPerRead: readsM > 0 ? deliveredM / readsM : 0,
    ...(endpoint.wsPath !== undefined && deliveredM > 0 ? { framesPerMsg: framesM / deliveredM } : {}),
    ...(params.rate !== undefined ? { skipped } : {}),
    setupMs,
  };
}

// ---- process entry ----
const isMain = process.argv[1] !== undefined && import.meta.filename === process.argv[1];
if (isMain) {
  const raw = process.argv[2];
  if (raw === undefined || raw === '--help') {
    process.stdout.write(
      "usage: node bench/load.ts '<LoadParams as JSON>' (see LoadParams in bench/load.ts)\n",
    );
    process.exit(raw === undefined ? 2 : 0);
  }
  const params = JSON.parse(raw) as LoadParams;
  const hardLimit = setTimeout(
    () => {
      process.stderr.write('load: hard time limit reached\n');
      process.exit(3);
    },
    (params.warmupS + params.durationS + 60) * 1000,
  );
  hardLimit.unref();
  // Exit with the parent: run.ts talks over IPC when it started us.
  process.on('disconnect', () => process.exit(4));
  runLoad(params).then(
    (result) => {
      const line = JSON.stringify(result);
      if (process.send) process.send({ type: 'result', result }, () => process.exit(0));
      else {
        process.stdout.write(`${line}\n`);
        process.exit(0);
      }
    },
    (err: unknown) => {
      const message = err instanceof Error ? err.message : String(err);
      if (process.send) process.send({ type: 'error', error: message }, () => process.exit(1));
      else {
        process.stderr.write(`load: ${message}\n`);
        process.exit(1);
      }
    },
  );
}
