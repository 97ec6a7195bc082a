/**
 * A nats-server for the cluster benches (bench/cluster.ts, bench/cluster-sessions.ts): JetStream
 * on (the control plane, retained messages and the session journal need it), loopback, a free
 * port, its store in a temp dir that the caller removes (`storeDir`).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, spawnTracked } from './brokers.ts';

/** A nats-server with JetStream (the control plane and retained messages need it), its store in a temp dir. */
export async function startNats(): Promise<{ url: string; child: ChildProcess; storeDir: string }> {
  const port = await freePort();
  const storeDir = mkdtempSync(join(tmpdir(), 'pubsub-bench-nats-'));
  const child = spawnTracked('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir]);
  await new Promise<void>((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`nats-server did not start:\n${text}`)), 10_000);
    child.stderr?.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes('Server is ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return { url: `nats://127.0.0.1:${port}`, child, storeDir };
}
