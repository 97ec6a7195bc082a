/**
 * Runs one load (bench/load.ts) in its own child process, so the generator's CPU is not the
 * broker's or the harness's; resolves with its result, rejects when it fails or overruns.
 * Used by the main harness (run.ts) and the hooks bench (hooks.ts).
 */
import { join } from 'node:path';
import { BENCH_DIR, REPO_DIR, spawnTracked } from './brokers.ts';
import type { LoadParams, LoadResult } from './load.ts';

export function runLoadChild(params: LoadParams): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawnTracked(process.execPath, [join(BENCH_DIR, 'load.ts'), JSON.stringify(params)], {
      cwd: REPO_DIR,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => {
      stderr = (stderr + c.toString()).slice(-4000);
    });
    let settled = false;
    const limitMs = (params.warmupS + params.durationS + 90) * 1000;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      child.kill('SIGKILL');
      reject(new Error(`load generator exceeded ${limitMs / 1000} s`));
    }, limitMs);
    child.on('message', (msg: { type: string; result?: LoadResult; error?: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (msg.type === 'result' && msg.result) resolve(msg.result);
      else reject(new Error(msg.error ?? 'load generator failed'));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (settled) return;
      settled = true;
      reject(new Error(`load generator exited with ${code}: ${stderr.trim()}`));
    });
  });
}
