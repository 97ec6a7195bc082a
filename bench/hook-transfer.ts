/**
 * `node bench/hook-transfer.ts`: what moving sandboxed functions into worker threads costs per
 * batch, to choose batch sizes (docs/performance.md#function-hooks-in-worker-threads).
 *
 * For batch sizes 1 … 1000 of 64-byte binary messages (what the fan-in bench sends):
 * - postMessage round trip to a worker that answers at once, the envelope (envelope.ts) sent two
 *   ways: the JSON text cloned with the payload buffer transferred (what the pool does), and the
 *   text encoded to bytes with both buffers transferred; per message, so the fixed cost of a
 *   crossing shows against batch size;
 * - a pass-through function (`return messages`) called in this thread (FunctionHook.run) and
 *   through a one-worker FunctionWorkerPool (one call in flight, then four), messages per second.
 * Each figure is the best of `--reps` (3) windows of `--ms` (500): on a busy machine the best
 * window is the one least disturbed. Prints a markdown table.
 */

import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { type HookMessage, toHookMessage } from '../src/hooks/contract/index.ts';
import { encodeBatch } from '../src/hooks/function/envelope.ts';
import { FunctionHook, FunctionWorkerPool } from '../src/hooks/function/index.ts';
import { PublishBudget } from '../src/hooks/publish-budget.ts';
import { silentLogger } from '../src/observability/index.ts';
import { Message } from '../src/router/index.ts';
import { fmt } from './variants.ts';

const { values: opts } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1,10,50,100,200,500,1000' },
    ms: { type: 'string', default: '500' },
    reps: { type: 'string', default: '3' },
  },
});
const REPS = Number(opts.reps);
const SIZES = opts.sizes.split(',').map(Number);
const WINDOW_MS = Number(opts.ms);
const PASS_THROUGH = 'export function onPublish(messages) { return messages; }';

const echo = new Worker(
  `const { parentPort } = require('node:worker_threads');
   parentPort.on('message', (m) => parentPort.postMessage(0));`,
  { eval: true },
);
const echoed = (): Promise<void> => new Promise((resolve) => echo.once('message', () => resolve()));

function batchOf(n: number): HookMessage[] {
  return Array.from({ length: n }, (_, i) =>
    toHookMessage(
      new Message({
        topic: 'bench/t',
        payload: Buffer.alloc(64, i),
        qos: 0,
        retain: false,
        senderId: `pub-${i % 10}`,
      }),
      i,
      'default.local.localhost',
      undefined,
    ),
  );
}

/**
 * Runs `once` repeatedly for WINDOW_MS (after a short warm-up), REPS times; microseconds per
 * call in the best window (the least disturbed by whatever else the machine runs).
 */
async function timed(once: () => Promise<unknown>): Promise<number> {
  for (let end = performance.now() + 100; performance.now() < end; ) await once();
  let best = Number.POSITIVE_INFINITY;
  for (let rep = 0; rep < REPS; rep++) {
    let calls = 0;
    const start = performance.now();
    while (performance.now() - start < WINDOW_MS) {
      await once();
      calls++;
    }
    best = Math.min(best, ((performance.now() - start) * 1000) / calls);
  }
  return best;
}

const options = () => {
  const state = new Map<string, string>();
  return {
    owner: 'bench',
    code: PASS_THROUGH,
    memoryLimitBytes: 32 * 1024 * 1024,
    cpuLimitMs: 1000,
    stateLimitBytes: 1024,
    state: {
      get: (k: string) => state.get(k),
      set: (k: string, v: string) => void state.set(k, v),
      delete: (k: string) => void state.delete(k),
      keys: () => state.keys(),
    },
    publishBudget: new PublishBudget({ messagesPerSecond: 1, bytesPerSecond: 1, burstMs: 1000 }, () => {}),
    publish: () => {},
    log: () => {},
  };
};

const local = await FunctionHook.create(options());
const pool = new FunctionWorkerPool(1, silentLogger());
const pooled = await pool.deploy(options());
const text = new TextEncoder();
const rows = [
  '| batch | envelope bytes | clone text + transfer payloads, µs/msg | encode + transfer both, µs/msg | in this thread msgs/s | pool, 1 in flight msgs/s | pool, 4 in flight msgs/s |',
  '|---|---|---|---|---|---|---|',
];
for (const n of SIZES) {
  const batch = batchOf(n);
  const { envelope } = encodeBatch(batch);
  const clone = await timed(async () => {
    const { envelope: e, bytes } = encodeBatch(batch);
    const got = echoed();
    echo.postMessage({ e, bytes }, [bytes!.buffer as ArrayBuffer]);
    await got;
  });
  const transfer = await timed(async () => {
    const { envelope: e, bytes } = encodeBatch(batch);
    const encoded = text.encode(e);
    const got = echoed();
    echo.postMessage({ encoded, bytes }, [encoded.buffer as ArrayBuffer, bytes!.buffer as ArrayBuffer]);
    await got;
  });
  const inThread = await timed(() => local.run(batch));
  const pool1 = await timed(() => pooled.run(batch));
  const pool4 = await timed(() => Promise.all([1, 2, 3, 4].map(() => pooled.run(batch))));
  rows.push(
    `| ${n} | ${fmt(Buffer.byteLength(envelope) + n * 64)} | ${fmt(clone / n, 2)} | ${fmt(transfer / n, 2)} | ${fmt((n * 1e6) / inThread)} | ${fmt((n * 1e6) / pool1)} | ${fmt((4 * n * 1e6) / pool4)} |`,
  );
  process.stderr.write(`${rows.at(-1)}\n`);
}
local.close();
pooled.close();
await pool.close();
await echo.terminate();
console.log(
  [
    `# Function hook batches across threads, ${new Date().toISOString()}`,
    '',
    `64-byte binary payloads; each figure the best of ${REPS} windows of ${WINDOW_MS} ms after a 100 ms warm-up; µs/msg includes encoding the envelope.`,
    '',
    ...rows,
    '',
  ].join('\n'),
);
