/**
 * `node bench/fanout-turn.ts`: what one PUBLISH to many subscribers costs the broker's event
 * loop (issue 20, "large fan-outs"). A fresh broker process (`serve`, loopback, :memory:);
 * `--subs` (10,000) raw TCP subscribers to `fan/#` at QoS 0 that read and count; a publisher
 * that writes one PUBLISH (`--size` bytes, `--qos`), `--rounds` times, 100 ms apart, and in the
 * same tick a second client, the victim, writes a PINGREQ. The victim's round trip, beside a
 * plain PINGREQ's (measured the same way, interleaved), is what any other client of the process
 * waits while the fan-out runs: the whole fan-out when it is one turn, one slice when it is
 * split (src/broker/fan-out.ts). Also prints how long until the last subscriber has the
 * message (the whole fan-out), and the broker's RSS.
 */
import { connect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { encode } from '../src/protocol/index.ts';
import { killAllChildren, startBroker } from './brokers.ts';
import { parseUrl } from './client.ts';
import { procRssKb } from './proc.ts';
import { median } from './stats.ts';

const { values: opts } = parseArgs({
  options: {
    subs: { type: 'string', default: '10000' },
    size: { type: 'string', default: '64' },
    qos: { type: 'string', default: '0' },
    rounds: { type: 'string', default: '30' },
  },
});
const SUBS = Number(opts.subs);
const SIZE = Number(opts.size);
const QOS = Number(opts.qos) as 0 | 1;
const ROUNDS = Number(opts.rounds);
const PINGREQ = Buffer.from([0xc0, 0x00]);
/** Bytes the subscribers have read since their SUBACK, and who waits for a total. */
let deliveredBytes = 0;
let deliveredWaiter: { bytes: number; resolve: () => void } | undefined;

/** A socket connected with CONNECT (v3.1.1) answered, optionally subscribed to `fan/#`. */
async function client(host: string, port: number, id: string, subscribe: boolean): Promise<Socket> {
  const socket = connect(port, host);
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const expect = subscribe ? 4 + 5 : 4; // CONNACK, SUBACK
  let got = 0;
  const answered = new Promise<void>((resolve) => {
    const onData = (chunk: Buffer): void => {
      got += chunk.length;
      if (got < expect) return;
      socket.off('data', onData);
      resolve();
    };
    socket.on('data', onData);
  });
  socket.write(
    encode({ type: 'connect', protocolVersion: 4, clientId: id, clean: true, keepalive: 600 } as never, 4),
  );
  if (subscribe)
    socket.write(
      encode(
        { type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'fan/#', qos: QOS }] } as never,
        4,
      ),
    );
  await answered;
  if (subscribe)
    socket.on('data', (chunk: Buffer) => {
      deliveredBytes += chunk.length;
      if (deliveredWaiter !== undefined && deliveredBytes >= deliveredWaiter.bytes) {
        deliveredWaiter.resolve();
        deliveredWaiter = undefined;
      }
    });
  return socket;
}

/** Writes `bytes` (ending in PINGREQ) and resolves with the milliseconds until the PINGRESP. */
function roundTrip(socket: Socket, bytes: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const start = performance.now();
    const onData = (chunk: Buffer): void => {
      if (!chunk.includes(0xd0)) return;
      socket.off('data', onData);
      resolve(performance.now() - start);
    };
    socket.on('data', onData);
    socket.write(bytes);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const broker = await startBroker('pubsub', { noDelay: true });
try {
  const { host, port } = parseUrl(broker.tcpUrl);
  const subs: Socket[] = [];
  for (let i = 0; i < SUBS; i += 200) {
    const batch = Array.from({ length: Math.min(200, SUBS - i) }, (_, j) =>
      client(host, port, `s${i + j}`, true),
    );
    subs.push(...(await Promise.all(batch)));
  }
  const publisher = await client(host, port, 'pub', false);
  const victim = await client(host, port, 'victim', false);
  const publish = encode(
    {
      type: 'publish',
      topic: 'fan/x',
      payload: Buffer.alloc(SIZE, 0x66),
      qos: QOS,
      retain: false,
      dup: false,
      packetId: 1,
    } as never,
    4,
  );
  const ping: number[] = [];
  const fan: number[] = [];
  const victimPing: number[] = [];
  const rssBefore = procRssKb(broker.pid) ?? 0;
  for (let r = 0; r < ROUNDS; r++) {
    ping.push(await roundTrip(victim, PINGREQ));
    await sleep(50);
    const start = performance.now();
    const all = new Promise<number>((resolve) => {
      deliveredWaiter = {
        bytes: deliveredBytes + SUBS * publish.length,
        resolve: () => resolve(performance.now() - start),
      };
    });
    publisher.write(publish);
    victimPing.push(await roundTrip(victim, PINGREQ));
    fan.push(await all);
    await sleep(100);
  }
  const rssAfter = procRssKb(broker.pid) ?? 0;
  const f = (ms: number | null) => (ms ?? Number.NaN).toFixed(2);
  console.log(`subscribers ${SUBS}, ${SIZE} B QoS ${QOS}, ${ROUNDS} rounds`);
  console.log(`PINGREQ alone:            median ${f(median(ping))} ms, max ${f(Math.max(...ping))} ms`);
  console.log(
    `PINGREQ during a fan-out: median ${f(median(victimPing))} ms, max ${f(Math.max(...victimPing))} ms`,
  );
  console.log(`last subscriber has it:   median ${f(median(fan))} ms, max ${f(Math.max(...fan))} ms`);
  console.log(`broker RSS ${(rssBefore / 1024).toFixed(1)} -> ${(rssAfter / 1024).toFixed(1)} MB`);
  for (const s of subs) s.destroy();
  publisher.destroy();
  victim.destroy();
} finally {
  await broker.stop();
  killAllChildren();
}
