/**
 * A connection storm spread over conn-worker.ts processes (each holds at most `perWorker`
 * connections, under the per-process open-files limit), from loopback source addresses
 * 127.0.0.2-101 split between them. Used by run.ts (`conn-N`) and storm.ts.
 */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { BENCH_DIR, REPO_DIR, spawnTracked, stopChild } from './brokers.ts';
import type { ConnWorkerParams, ConnWorkerResult } from './conn-worker.ts';

const SRC_IPS = 100;

export interface StormOptions {
  /** Connections per worker process (default 5,000). */
  perWorker?: number;
  /** Connections each worker has opening at once, in all (default 100). */
  concurrency?: number;
  /** Per attempt, TCP connect to CONNACK (default 20 s). */
  timeoutMs?: number;
  /** Times a failed connection is tried again (default 0). */
  retries?: number;
}

export interface ConnWorkers {
  readonly pids: number[];
  /** Opens every connection; resolves with each worker's result. */
  go(): Promise<ConnWorkerResult[]>;
  /** Connections still open, over all workers. */
  held(): Promise<number>;
  /** Closes everything and stops the workers. */
  close(): Promise<void>;
}

/** Starts the workers for `total` connections to `url` and waits until they are ready. */
export async function startConnWorkers(
  url: string,
  total: number,
  options: StormOptions = {},
): Promise<ConnWorkers> {
  const { hostname, port } = new URL(url);
  const nWorkers = Math.ceil(total / (options.perWorker ?? 5000));
  const ips = Array.from({ length: SRC_IPS }, (_, i) => `127.0.0.${i + 2}`);
  const workers: ChildProcess[] = [];
  const messages = new Map<ChildProcess, (msg: { type: string }) => void>();
  const next = (w: ChildProcess, type: string, timeoutMs: number): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`conn worker: no '${type}' in ${timeoutMs} ms`)),
        timeoutMs,
      );
      messages.set(w, (msg) => {
        if (msg.type !== type) return;
        clearTimeout(timer);
        resolve(msg as Record<string, unknown>);
      });
    });
  const close = async (): Promise<void> => {
    for (const w of workers) if (w.connected) w.send({ type: 'close' });
    await Promise.all(workers.map((w) => stopChild(w, 2000)));
  };
  const timeoutMs = options.timeoutMs ?? 20_000;
  try {
    for (let w = 0; w < nWorkers; w++) {
      const params: ConnWorkerParams = {
        host: hostname,
        port: Number(port),
        count: Math.floor(total / nWorkers) + (w < total % nWorkers ? 1 : 0),
        concurrency: Math.ceil((options.concurrency ?? 100) / nWorkers),
        srcIps: ips.filter((_, i) => i % nWorkers === w),
        idPrefix: `storm-${w}-${Math.random().toString(36).slice(2, 7)}`,
        timeoutMs,
        retries: options.retries ?? 0,
      };
      const child = spawnTracked(
        process.execPath,
        [join(BENCH_DIR, 'conn-worker.ts'), JSON.stringify(params)],
        {
          cwd: REPO_DIR,
          stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
        },
      );
      child.on('message', (msg: { type: string }) => messages.get(child)?.(msg));
      workers.push(child);
    }
    await Promise.all(workers.map((w) => next(w, 'ready', 15_000)));
  } catch (err) {
    await close();
    throw err;
  }
  return {
    pids: workers.map((w) => w.pid!),
    async go() {
      const done = workers.map((w) =>
        next(w, 'connected', timeoutMs * (1 + (options.retries ?? 0)) + 100_000),
      );
      for (const w of workers) w.send({ type: 'go' });
      return (await Promise.all(done)) as unknown as ConnWorkerResult[];
    },
    async held() {
      const held = workers.map((w) => next(w, 'held', 10_000));
      for (const w of workers) w.send({ type: 'check' });
      return ((await Promise.all(held)) as unknown as { open: number }[]).reduce((n, h) => n + h.open, 0);
    },
    close,
  };
}
