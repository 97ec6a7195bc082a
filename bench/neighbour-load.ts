/**
 * The load processes of bench/neighbours.ts, each its own child process (so one's event loop
 * never delays another's), driven over IPC:
 *
 * - `steady`: one publisher and one subscriber on one topic at a fixed QoS 1 rate (default
 *   1,000 msgs/s). The publisher is paced by a 1 ms timer that catches up: each tick sends every
 *   message whose scheduled time has passed, in one write, so a late tick never lowers the rate.
 *   Each payload carries its scheduled send time and the time it was written; latency is
 *   receive time - scheduled time (a late generator counts against the figure instead of
 *   hiding a slow broker), and the generator's own lag (write - scheduled) is reported beside it.
 *   `{cmd:'measure'}` starts a window, `{cmd:'report'}` ends it and answers with its figures.
 * - `flood`: `pubs` publishers writing QoS 0 PUBLISH packets as fast as their sockets take them
 *   (32 per write, the next write when the socket drains), and optionally one subscriber on the
 *   same topic that reads everything. `{cmd:'on'}` / `{cmd:'off'}` start and stop the flood;
 *   `{cmd:'stats'}` answers with the messages published and delivered since the last stats.
 *
 * Both send `{type:'ready'}` once connected and exit when the parent goes away.
 */
import { encode } from '../src/protocol/index.ts';
import { MqttConn, parseUrl } from './client.ts';
import { LatencyHistogram, type LatencySummary } from './stats.ts';

export interface SteadyParams {
  role: 'steady';
  url: string;
  username?: string;
  /** Messages per second (default 1000). */
  rate: number;
  size: number;
  topic: string;
}

export interface FloodParams {
  role: 'flood';
  url: string;
  username?: string;
  pubs: number;
  size: number;
  topic: string;
  /** One subscriber on `topic` that reads everything. */
  subscriber: boolean;
}

export interface SteadyReport {
  seconds: number;
  /** Messages the publisher wrote during the window, per second (the pacing check). */
  sentPerSec: number;
  /** Messages the subscriber received during the window, per second. */
  deliveredPerSec: number;
  /** Receive time - scheduled send time. */
  latency: LatencySummary;
  /** Write time - scheduled send time: how late the generator itself was. */
  lag: LatencySummary;
  /** Sequence numbers seen going backwards or skipped (QoS 1: must be 0). */
  outOfOrder: number;
  gaps: number;
  /** QoS 1 publishes not yet acknowledged at the end of the window. */
  unacked: number;
}

export interface FloodStats {
  published: number;
  delivered: number;
}

const HEADER = 20; // f64 scheduled, f64 written, u32 sequence
const BATCH = 32;

function send(msg: unknown): void {
  process.send?.(msg);
}

async function steady(p: SteadyParams): Promise<void> {
  const endpoint = parseUrl(p.url);
  const tag = Math.random().toString(36).slice(2, 8);
  const sub = new MqttConn(endpoint);
  const pub = new MqttConn(endpoint);
  const user = p.username !== undefined ? { username: p.username } : {};
  await sub.connect({ clientId: `steady-sub-${tag}`, ...user });
  await sub.subscribe([[p.topic, 1]]);
  await pub.connect({ clientId: `steady-pub-${tag}`, ...user });

  const latency = new LatencyHistogram();
  const lag = new LatencyHistogram();
  let measuring = false;
  let windowStart = 0;
  let delivered = 0;
  let sentInWindow = 0;
  let outOfOrder = 0;
  let gaps = 0;
  let nextSeq = 0;
  let sent = 0;
  let acked = 0;
  sub.onPublish = (packet) => {
    const now = performance.now();
    const payload = packet.payload;
    const scheduled = payload.readDoubleLE(0);
    const seq = payload.readUInt32LE(16);
    if (seq < nextSeq) outOfOrder++;
    else {
      if (seq > nextSeq) gaps += seq - nextSeq;
      nextSeq = seq + 1;
    }
    if (!measuring) return;
    delivered++;
    latency.recordMs(now - scheduled);
  };
  pub.onPuback = () => {
    acked++;
  };

  const template = encode(
    {
      type: 'publish',
      topic: p.topic,
      payload: Buffer.alloc(Math.max(HEADER, p.size)),
      qos: 1,
      packetId: 1,
      retain: false,
      dup: false,
    },
    4,
  );
  const payloadAt = template.length - Math.max(HEADER, p.size);
  const idAt = payloadAt - 2;
  const intervalMs = 1000 / p.rate;
  const t0 = performance.now();
  const tick = (): void => {
    const now = performance.now();
    const due = Math.floor((now - t0) / intervalMs) + 1;
    if (due <= sent) return;
    const out = Buffer.allocUnsafe(template.length * (due - sent));
    let at = 0;
    for (; sent < due; sent++) {
      template.copy(out, at);
      const scheduled = t0 + sent * intervalMs;
      out.writeUInt16BE((sent % 65535) + 1, at + idAt);
      out.writeDoubleLE(scheduled, at + payloadAt);
      out.writeDoubleLE(now, at + payloadAt + 8);
      out.writeUInt32LE(sent, at + payloadAt + 16);
      at += template.length;
      if (measuring) {
        lag.recordMs(now - scheduled);
        sentInWindow++;
      }
    }
    pub.send(out);
  };
  setInterval(tick, 1);

  process.on('message', (msg: { cmd: string }) => {
    if (msg.cmd === 'measure') {
      latency.reset();
      lag.reset();
      delivered = 0;
      sentInWindow = 0;
      outOfOrder = 0;
      gaps = 0;
      windowStart = performance.now();
      measuring = true;
    } else if (msg.cmd === 'report') {
      measuring = false;
      const seconds = (performance.now() - windowStart) / 1000;
      const report: SteadyReport = {
        seconds,
        sentPerSec: sentInWindow / seconds,
        deliveredPerSec: delivered / seconds,
        latency: latency.summary(),
        lag: lag.summary(),
        outOfOrder,
        gaps,
        unacked: sent - acked,
      };
      send({ type: 'report', report });
    }
  });
  send({ type: 'ready' });
}

async function flood(p: FloodParams): Promise<void> {
  const endpoint = parseUrl(p.url);
  const tag = Math.random().toString(36).slice(2, 8);
  const user = p.username !== undefined ? { username: p.username } : {};
  let delivered = 0;
  if (p.subscriber) {
    const sub = new MqttConn(endpoint);
    await sub.connect({ clientId: `flood-sub-${tag}`, ...user });
    await sub.subscribe([[p.topic, 0]]);
    sub.onPublish = () => {
      delivered++;
    };
  }
  const one = encode(
    {
      type: 'publish',
      topic: p.topic,
      payload: Buffer.alloc(p.size, 0x61),
      qos: 0,
      retain: false,
      dup: false,
    },
    4,
  );
  const batch = Buffer.concat(Array.from({ length: BATCH }, () => one));
  const pubs: MqttConn[] = [];
  for (let i = 0; i < p.pubs; i++) {
    const conn = new MqttConn(endpoint);
    await conn.connect({ clientId: `flood-pub-${i}-${tag}`, ...user });
    pubs.push(conn);
  }
  let on = false;
  let published = 0;
  /** Publishers with a pump scheduled (a turn or a drain away), so 'on' never starts two. */
  const pumping = new Set<MqttConn>();
  const pump = (conn: MqttConn): void => {
    // A few writes per turn, then yield, so the subscriber's reads and IPC still run.
    for (let i = 0; i < 16; i++) {
      if (!on || conn.closed) {
        pumping.delete(conn);
        return;
      }
      published += BATCH;
      if (!conn.send(batch)) {
        conn.socket.once('drain', () => pump(conn));
        return;
      }
    }
    setImmediate(() => pump(conn));
  };
  process.on('message', (msg: { cmd: string }) => {
    if (msg.cmd === 'on' && !on) {
      on = true;
      for (const conn of pubs) {
        if (pumping.has(conn)) continue;
        pumping.add(conn);
        pump(conn);
      }
    } else if (msg.cmd === 'off') on = false;
    else if (msg.cmd === 'stats') {
      const stats: FloodStats = { published, delivered };
      published = 0;
      delivered = 0;
      send({ type: 'stats', stats });
    }
  });
  send({ type: 'ready' });
}

if (process.send !== undefined) {
  process.on('disconnect', () => process.exit(0));
  const params = JSON.parse(process.argv[2] ?? '{}') as SteadyParams | FloodParams;
  try {
    if (params.role === 'steady') await steady(params);
    else await flood(params);
  } catch (err) {
    send({ type: 'error', error: (err as Error).message });
    process.exit(1);
  }
}
