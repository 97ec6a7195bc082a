/**
 * `node bench/session-moves.ts [--moves N] [--rate R] [--dwell MS]` (needs nats-server): a
 * persistent session moving between the two nodes of a cluster (issue 19,
 * src/cluster/session-handover.ts), the figures its acceptance list asks about.
 *
 * Two `Server`s in this process joined through one nats-server (test/helpers/server-pair.ts),
 * `--max-client-connect-rate 0`. First, CONNACK latency of an MQTT.js v5 client (Clean Start 0,
 * Session Expiry 300) connecting 200 times: always on the node that holds its session, on the
 * other node in turn (handed over every time; 100 ms apart, then back to back, when each move
 * waits for the last one's tail: src/cluster/session-tail.ts), and with a new client id each
 * time (the other node asked, holding none). Then a takeover under load: one publisher on node A sends QoS 1
 * messages (about `--rate` per second, numbered) to a topic the moving client subscribes to, while
 * the client reconnects `--moves` times to alternate nodes, staying `--dwell` ms each time, then
 * once more to drain; it reports what was published (acknowledged), received, missing and
 * received twice (QoS 1 allows duplicates; none may be missing).
 */
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { startPair } from '../test/helpers/server-pair.ts';

const { values } = parseArgs({
  options: {
    moves: { type: 'string', default: '100' },
    rate: { type: 'string', default: '10000' },
    dwell: { type: 'string', default: '20' },
  },
});
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? Number.NaN;
};

const pair = await startPair({ maxClientConnectRate: 0, maxQueuedMessages: 1_000_000 });
const urls = [`mqtt://127.0.0.1:${pair.a.port}`, `mqtt://127.0.0.1:${pair.b.port}`];
const persistent = (clientId: string): mqtt.IClientOptions => ({
  protocolVersion: 5,
  clientId,
  clean: false,
  reconnectPeriod: 0,
  properties: { sessionExpiryInterval: 300 },
});

try {
  console.log('| CONNACK latency, 200 connects | p50 ms | p99 ms |\n|---|---|---|');
  const latency = async (label: string, url: (i: number) => string, id: (i: number) => string, apart = 0) => {
    const times: number[] = [];
    for (let i = 0; i < 200; i++) {
      const started = performance.now();
      const c = await mqtt.connectAsync(url(i), persistent(id(i)));
      times.push(performance.now() - started);
      await c.endAsync();
      await sleep(apart);
    }
    console.log(`| ${label} | ${pct(times, 0.5).toFixed(2)} | ${pct(times, 0.99).toFixed(2)} |`);
  };
  await latency(
    'resumed on the node holding it',
    () => urls[0]!,
    () => 'moves-same',
  );
  await latency(
    'resumed on the other node in turn (handed over), 100 ms apart',
    (i) => urls[i % 2]!,
    () => 'moves-alt',
    100,
  );
  await latency(
    'the same, back to back (waits for the last move to settle)',
    (i) => urls[i % 2]!,
    () => 'moves-alt',
  );
  await latency(
    'new client id, Clean Start 0 (asked, none)',
    () => urls[0]!,
    (i) => `moves-new-${i}`,
  );

  const moves = Number(values.moves);
  const perMs = Number(values.rate) / 1000;
  const got = new Set<number>();
  let twice = 0;
  const collect = (c: mqtt.MqttClient) =>
    c.on('message', (_topic, payload) => {
      const n = Number(payload.toString());
      if (got.has(n)) twice++;
      got.add(n);
    });
  const first = await mqtt.connectAsync(urls[0]!, persistent('moves-load'));
  await first.subscribeAsync('moves/#', { qos: 1 });
  await first.endAsync();
  await pair.settled();
  const pub = await mqtt.connectAsync(urls[0]!, { protocolVersion: 5, reconnectPeriod: 0 });
  let sent = 0;
  let stop = false;
  const publishing = (async () => {
    let last = performance.now();
    while (!stop) {
      await sleep(1);
      const now = performance.now();
      const batch: Promise<unknown>[] = [];
      for (let i = 0; i < Math.max(1, Math.round((now - last) * perMs)); i++)
        batch.push(pub.publishAsync('moves/x', String(sent++), { qos: 1 }));
      last = now;
      await Promise.all(batch);
    }
  })();
  const started = performance.now();
  for (let i = 0; i < moves; i++) {
    const c = collect(mqtt.connect(urls[(i + 1) % 2]!, persistent('moves-load')));
    await new Promise((resolve) => c.once('connect', resolve));
    await sleep(Number(values.dwell));
    await c.endAsync();
  }
  stop = true;
  await publishing;
  const seconds = (performance.now() - started) / 1000;
  const tails = [pair.a, pair.b].map((n) => n.server.cluster!.sessions.tails.stats);
  const last = collect(mqtt.connect(urls[0]!, persistent('moves-load')));
  await sleep(2000);
  await last.endAsync(false, { properties: { sessionExpiryInterval: 0 } });
  await pub.endAsync();
  let missing = 0;
  for (let n = 0; n < sent; n++) if (!got.has(n)) missing++;
  console.log(
    `\n${moves} moves in ${seconds.toFixed(1)} s while ${sent} QoS 1 messages were published on node A ` +
      `(${Math.round(sent / seconds)}/s): received ${got.size}, missing ${missing} ` +
      `(${(missing / moves).toFixed(1)} per move), received twice ${twice}; tails carried ` +
      `${tails[0]!.relayed + tails[1]!.relayed} messages, of which ${tails[0]!.copies + tails[1]!.copies} ` +
      `also came directly (delivered once); tails missed ${tails[0]!.missed + tails[1]!.missed}`,
  );
} finally {
  await pair.close();
}
