/**
 * Connection-storm worker (a child process of run.ts, talking over IPC). Opens `count` MQTT
 * 3.1.1 connections (clean session, keepalive 60 s, no subscription) at most `concurrency` at a
 * time, spreading them over loopback source addresses so no single address runs out of
 * ephemeral ports, and holds them until told to close. With `retries`, a connection that failed
 * (closed, refused, timed out) is opened again, up to that many times, as a client would.
 *
 *   parent -> {type:'go'}     open the connections; reply {type:'connected', ...}
 *   parent -> {type:'check'}  reply {type:'held', open} (connections still open)
 *   parent -> {type:'close'}  close everything and exit
 */
import { connect, type Socket } from 'node:net';
import { encode, Parser } from '../src/protocol/index.ts';
import { LatencyHistogram } from './stats.ts';

export interface ConnWorkerParams {
  host: string;
  port: number;
  count: number;
  concurrency: number;
  srcIps: string[];
  idPrefix: string;
  timeoutMs: number;
  /** Times a failed connection is tried again (default 0). */
  retries?: number;
}

export interface ConnWorkerResult {
  type: 'connected';
  ok: number;
  failed: number;
  errors: string[];
  latency: ReturnType<LatencyHistogram['toJSON']>;
  ms: number;
  /** Attempts that failed and were tried again. */
  retried: number;
}

const params = JSON.parse(process.argv[2] ?? '{}') as ConnWorkerParams;
const sockets: Socket[] = [];
const hist = new LatencyHistogram();
const errors = new Map<string, number>();

function openOne(i: number): Promise<boolean> {
  return new Promise((resolve) => {
    const started = performance.now();
    const localAddress = params.srcIps[i % params.srcIps.length];
    const socket = connect({
      host: params.host,
      port: params.port,
      ...(localAddress ? { localAddress } : {}),
    });
    const parser = new Parser({ protocolVersion: 4 });
    let settled = false;
    const finish = (ok: boolean, why?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (ok) {
        hist.recordMs(performance.now() - started);
        sockets.push(socket);
      } else {
        errors.set(why ?? 'error', (errors.get(why ?? 'error') ?? 0) + 1);
        socket.destroy();
      }
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false, 'timeout'), params.timeoutMs);
    socket.once('connect', () => {
      socket.write(
        encode(
          {
            type: 'connect',
            protocolName: 'MQTT',
            protocolVersion: 4,
            clean: true,
            keepalive: 60,
            clientId: `${params.idPrefix}-${i}`,
          },
          4,
        ),
      );
    });
    socket.on('data', (chunk: Buffer) => {
      if (settled) return;
      const err = parser.push(chunk, (p) => {
        if (p.type === 'connack')
          finish(p.reasonCode === 0, p.reasonCode === 0 ? undefined : `connack ${p.reasonCode}`);
      });
      if (err) finish(false, 'protocol error');
    });
    socket.on('error', (err: NodeJS.ErrnoException) => finish(false, err.code ?? err.message));
    socket.on('close', () => finish(false, 'closed'));
  });
}

async function openAll(): Promise<ConnWorkerResult> {
  const t0 = performance.now();
  let next = 0;
  let ok = 0;
  let failed = 0;
  let retried = 0;
  const lane = async (): Promise<void> => {
    while (next < params.count) {
      const i = next++;
      let connected = await openOne(i);
      for (let attempt = 0; !connected && attempt < (params.retries ?? 0); attempt++) {
        retried++;
        connected = await openOne(i);
      }
      if (connected) ok++;
      else failed++;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, params.concurrency) }, lane));
  return {
    type: 'connected',
    ok,
    failed,
    errors: [...errors].map(([k, n]) => `${k} x${n}`),
    latency: hist.toJSON(),
    ms: performance.now() - t0,
    retried,
  };
}

process.on('disconnect', () => process.exit(0));
process.on('message', (msg: { type: string }) => {
  if (msg.type === 'go') {
    void openAll().then((result) => process.send!(result));
  } else if (msg.type === 'check') {
    process.send!({
      type: 'held',
      open: sockets.filter((s) => !s.destroyed && s.readyState === 'open').length,
    });
  } else if (msg.type === 'close') {
    for (const s of sockets) s.destroy();
    setTimeout(() => process.exit(0), 50);
  }
});
process.send!({ type: 'ready' });
