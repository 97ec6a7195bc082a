/**
 * `node bench/webhook-call.ts`: what one webhook call costs the event loop, the thread that
 * serves every client (docs/performance.md#webhook-client).
 *
 * Feeds the broker's on-publish pipeline (OnPublishPipeline with a WebhookHook: the hook's view
 * of each message, the call, the answer, the decisions) against bench/hook-server.ts in its own
 * process, `--concurrency` (4, the default --hook-concurrency) calls in flight, batches of 1 …
 * 1000 64-byte binary messages (what the fan-in bench sends). For each: this thread's CPU time
 * per message (process.threadCpuUsage: the event loop alone, not libuv's thread pool nor the
 * hook's process), and messages per second. No MQTT: only what the hook adds. CPU time is
 * what matters on a busy machine: wall-clock rates there depend on what else runs.
 * `--baseline DIR` runs the same with another checkout's webhook client (e.g. the commit before
 * a change), interleaved with this tree's, so both sides come from one run. `--answer pretty`
 * makes the hook answer the same messages re-indented (a body the broker must parse) instead
 * of its request body byte for byte. Each figure is the best of `--reps` (3) windows of `--ms`
 * (1000). Prints a markdown table.
 */
import type { ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { SigningKey } from '../src/auth/index.ts';
import { BENCH_DIR, REPO_DIR, spawnTracked, stopChild } from './brokers.ts';
import { fmt } from './variants.ts';

const { values: opts } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1,10,100,400,1000' },
    ms: { type: 'string', default: '1000' },
    reps: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '4' },
    baseline: { type: 'string' },
    answer: { type: 'string', default: 'echo' },
  },
});
const REPS = Number(opts.reps);
const WINDOW_MS = Number(opts.ms);
const CONCURRENCY = Number(opts.concurrency);
const SIZES = opts.sizes.split(',').map(Number);

interface Code {
  label: string;
  // The modules' shapes, as this tree has them; a baseline must export the same names.
  webhook: typeof import('../src/hooks/webhook/index.ts');
  hooks: typeof import('../src/hooks/index.ts');
  router: typeof import('../src/router/index.ts');
  observability: typeof import('../src/observability/index.ts');
}

async function load(label: string, dir: string): Promise<Code> {
  return {
    label,
    webhook: await import(join(dir, 'src/hooks/webhook/index.ts')),
    hooks: await import(join(dir, 'src/hooks/index.ts')),
    router: await import(join(dir, 'src/router/index.ts')),
    observability: await import(join(dir, 'src/observability/index.ts')),
  };
}

const codes: Code[] = [
  ...(opts.baseline === undefined ? [] : [await load('before', opts.baseline)]),
  await load(opts.baseline === undefined ? 'this tree' : 'after', REPO_DIR),
];

const server: ChildProcess = spawnTracked(
  process.execPath,
  [join(BENCH_DIR, 'hook-server.ts'), ...(opts.answer === 'pretty' ? ['--pretty'] : [])],
  { cwd: REPO_DIR },
);
const url = await new Promise<string>((resolve, reject) => {
  let seen = '';
  server.stdout!.on('data', (c: Buffer) => {
    seen += c.toString();
    const m = /listening on (\S+)/.exec(seen);
    if (m) resolve(m[1]!);
  });
  server.once('exit', (code) => reject(new Error(`hook server exited with ${code}`)));
});

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const key: SigningKey = { kid: 'bench', privateKey, publicKey, publicJwk: {} as SigningKey['publicJwk'] };

interface Figures {
  cpuUsPerMsg: number;
  msgsPerSec: number;
}

/**
 * The broker's on-publish pipeline with the webhook, batches of `n` (sealed by size, never
 * merged), fed so that calls are always waiting; the best of REPS windows.
 */
async function measure(code: Code, n: number): Promise<Figures> {
  const { WebhookHook, EgressPolicy } = code.webhook;
  const egress = EgressPolicy.fromConfig({
    host: '127.0.0.1',
    hookAllowPrivate: false,
    hookAllowCidrs: '',
    hookAllowLoopback: 'true',
    proxyProtocol: false,
    wsTrustProxy: false,
  } as Parameters<typeof EgressPolicy.fromConfig>[0]);
  const hook = new WebhookHook({
    url,
    timeoutMs: 10_000,
    retries: 0,
    maxResponseBytes: 16 * 1024 * 1024,
    maxSockets: CONCURRENCY,
    signingKey: () => key,
    onRetry: () => {},
    egress,
  });
  const pipeline = new code.hooks.OnPublishPipeline(hook, {
    brokerName: 'default.local.localhost',
    policy: 'fail-closed',
    batchSize: n,
    batchWindowMs: 0,
    concurrency: CONCURRENCY,
    maxPending: Number.MAX_SAFE_INTEGER,
    mergeUpTo: n,
    log: code.observability.silentLogger(),
  });
  const messages = Array.from(
    { length: n },
    (_, i) =>
      new code.router.Message({
        topic: `bench/fanin/${i % 10}`,
        payload: Buffer.alloc(64, i),
        qos: 0,
        retain: false,
        senderId: `pub-${i % 10}`,
      }),
  );
  let forwarded = 0;
  let lost = 0;
  const decided = (m: unknown): void => {
    if (m === undefined) lost++;
    else forwarded++;
  };
  // Keep twice the calls in flight waiting, topped up once per event-loop turn.
  let feeding = true;
  const feed = (): void => {
    if (!feeding) return;
    while (pipeline.pending < 2 * CONCURRENCY * n)
      for (const message of messages) pipeline.submit({ message, jti: undefined, decided }, undefined);
    setImmediate(feed);
  };
  feed();
  const window = async (ms: number): Promise<Figures> => {
    const before = forwarded;
    const cpu = process.threadCpuUsage();
    const start = performance.now();
    await new Promise((resolve) => setTimeout(resolve, ms));
    const used = process.threadCpuUsage(cpu);
    const done = forwarded - before;
    return {
      cpuUsPerMsg: (used.user + used.system) / done,
      msgsPerSec: (done * 1000) / (performance.now() - start),
    };
  };
  await window(200);
  let best: Figures = { cpuUsPerMsg: Number.POSITIVE_INFINITY, msgsPerSec: 0 };
  for (let rep = 0; rep < REPS; rep++) {
    const got = await window(WINDOW_MS);
    best = {
      cpuUsPerMsg: Math.min(best.cpuUsPerMsg, got.cpuUsPerMsg),
      msgsPerSec: Math.max(best.msgsPerSec, got.msgsPerSec),
    };
  }
  feeding = false;
  await new Promise<void>((resolve) => {
    const drained = (): void => {
      if (pipeline.pending === 0) resolve();
      else setTimeout(drained, 5);
    };
    drained();
  });
  pipeline.close();
  if (lost > 0) throw new Error(`${code.label}: ${lost} messages not forwarded`);
  return best;
}

const rows = ['| batch | code | event-loop CPU µs/msg | µs/call | msgs/s |', '|---|---|---|---|---|'];
for (const n of SIZES) {
  for (const code of codes) {
    const f = await measure(code, n);
    rows.push(
      `| ${n} | ${code.label} | ${fmt(f.cpuUsPerMsg, 2)} | ${fmt(f.cpuUsPerMsg * n, 0)} | ${fmt(f.msgsPerSec)} |`,
    );
    process.stderr.write(`${rows.at(-1)}\n`);
  }
}
await stopChild(server, 2000);
console.log(
  [
    `# Webhook call cost on the event loop, ${new Date().toISOString()}`,
    '',
    `64-byte binary payloads, ${CONCURRENCY} calls in flight, answer: ${opts.answer === 'pretty' ? 'the messages re-indented (parsed)' : 'the request body echoed'}; each figure the best of ${REPS} windows of ${WINDOW_MS} ms.`,
    ...(opts.baseline === undefined ? [] : ['', `before: ${opts.baseline}; after: this tree.`]),
    '',
    ...rows,
    '',
  ].join('\n'),
);
