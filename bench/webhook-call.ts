/**
 * `node bench/webhook-call.ts`: what one webhook call costs the event loop, the thread that
 * serves every client (docs/performance.md#webhook-client).
 *
 * Runs WebhookHook.run and readVerdict (what the pipeline does with each batch) against
 * bench/hook-server.ts in its own process, `--concurrency` (4, the default --hook-concurrency)
 * calls in flight, for batch sizes 1 … 1000 of 64-byte binary messages (what the fan-in bench
 * sends). For each: this thread's CPU time per message (process.threadCpuUsage: the event loop
 * alone, not libuv's thread pool nor the hook's process), and messages per second. CPU time is
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
  hooks: typeof import('../src/hooks/webhook/index.ts');
  contract: typeof import('../src/hooks/contract/index.ts');
  router: typeof import('../src/router/index.ts');
}

async function load(label: string, dir: string): Promise<Code> {
  return {
    label,
    hooks: await import(join(dir, 'src/hooks/webhook/index.ts')),
    contract: await import(join(dir, 'src/hooks/contract/index.ts')),
    router: await import(join(dir, 'src/router/index.ts')),
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

/** `CONCURRENCY` loops of (call, read the verdict) for WINDOW_MS; the best of REPS windows. */
async function measure(code: Code, n: number): Promise<Figures> {
  const { WebhookHook, EgressPolicy } = code.hooks;
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
  let calls = 0;
  const once = async (): Promise<void> => {
    // As the pipeline does: the hook's view of each message, the call, the verdict.
    const sent = messages.map((m, i) =>
      code.contract.toHookMessage(m, i, 'default.local.localhost', undefined),
    );
    const verdict = code.contract.readVerdict(sent, await hook.run(sent));
    if (verdict.forward.size !== n) throw new Error(`${verdict.forward.size} of ${n} forwarded`);
    calls++;
  };
  const window = async (ms: number): Promise<Figures> => {
    calls = 0;
    const cpu = process.threadCpuUsage();
    const start = performance.now();
    const end = start + ms;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (performance.now() < end) await once();
      }),
    );
    const used = process.threadCpuUsage(cpu);
    return {
      cpuUsPerMsg: (used.user + used.system) / (calls * n),
      msgsPerSec: (calls * n * 1000) / (performance.now() - start),
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
  hook.close();
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
