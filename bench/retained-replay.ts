/**
 * `node bench/retained-replay.ts`: a new subscriber to a filter matching many retained messages
 * (default 100,000 of 100 B, `--count`, `--size`) gets all of them, paced as it reads
 * (docs/limits.md, "Retained messages on subscribe"). A fresh broker process (`serve`, loopback,
 * :memory:, `--max-write-buffer` left at its default unless `--write-buffer` is given); one
 * MQTT.js client publishes the retained messages, then a new MQTT.js subscriber at QoS 0 (v5)
 * subscribes to `r/#` and counts what arrives within `--timeout-ms` (default 60,000). Prints
 * the count, the time from SUBSCRIBE to the last message, and the broker's VmRSS before
 * subscribing and at its peak while the messages go out.
 */
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { killAllChildren, startBroker } from './brokers.ts';
import { procRssKb } from './proc.ts';

const { values: opts } = parseArgs({
  options: {
    count: { type: 'string', default: '100000' },
    size: { type: 'string', default: '100' },
    'write-buffer': { type: 'string' },
    'timeout-ms': { type: 'string', default: '60000' },
  },
});
const COUNT = Number(opts.count);
const SIZE = Number(opts.size);
const TIMEOUT_MS = Number(opts['timeout-ms']);

const serveArgs = opts['write-buffer'] === undefined ? [] : ['--max-write-buffer', opts['write-buffer']];
const broker = await startBroker('pubsub', { noDelay: false, serveArgs });
try {
  const publisher = await mqtt.connectAsync(broker.tcpUrl, { protocolVersion: 5, reconnectPeriod: 0 });
  const payload = Buffer.alloc(SIZE, 0x72);
  for (let n = 0; n < COUNT; n++) {
    publisher.publish(`r/${n}`, payload, { qos: 0, retain: true });
    if (n % 1000 === 999) await publisher.publishAsync('r-sync', '', { qos: 1 });
  }
  await publisher.publishAsync('r-sync', '', { qos: 1 });
  await publisher.endAsync();

  const rssBefore = procRssKb(broker.pid) ?? 0;
  let rssPeak = rssBefore;
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, procRssKb(broker.pid) ?? 0);
  }, 50);
  const subscriber = await mqtt.connectAsync(broker.tcpUrl, { protocolVersion: 5, reconnectPeriod: 0 });
  let received = 0;
  let last = 0;
  const started = performance.now();
  const done = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, TIMEOUT_MS);
    subscriber.on('message', () => {
      received++;
      last = performance.now();
      if (received === COUNT) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  await subscriber.subscribeAsync('r/#', { qos: 0 });
  await done;
  clearInterval(sampler);
  await subscriber.endAsync();
  console.log(
    [
      `| retained | received | time to last (s) | broker RSS before (MiB) | peak (MiB) |`,
      `|---|---|---|---|---|`,
      `| ${COUNT} × ${SIZE} B | ${received} | ${((last - started) / 1000).toFixed(2)} | ${(rssBefore / 1024).toFixed(0)} | ${(rssPeak / 1024).toFixed(0)} |`,
    ].join('\n'),
  );
  if (received !== COUNT) process.exitCode = 1;
} finally {
  await broker.stop();
  killAllChildren();
}
