/**
 * The victim of the isolation benchmarks (neighbours.ts, storm.ts): a raw v3.1.1 client that
 * sends PINGREQs on a timer and times each PINGRESP. `pingerProcess` runs it in a process of
 * its own (this file as the child, driven over IPC), so the harness's other work (10,000
 * stalled sockets, a storm's bookkeeping) never delays its timer or its reads: what it
 * measures is the broker's delay, not its own process's.
 */
import type { ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { encode } from '../src/protocol/index.ts';
import { REPO_DIR, spawnTracked } from './brokers.ts';
import { parseUrl } from './client.ts';
import { LatencyHistogram, type LatencySummary } from './stats.ts';

/**
 * A raw TCP connection that has sent a v3.1.1 CONNECT (keep-alive 0) and then `then` (if
 * given), in one write; the caller reads the answers itself.
 */
export async function rawConnect(
  url: string,
  clientId: string,
  then?: Buffer,
  readableHighWaterMark?: number,
): Promise<Socket> {
  const { host, port } = parseUrl(url);
  const socket = connect({
    host,
    port,
    noDelay: true,
    ...(readableHighWaterMark ? { readableHighWaterMark } : {}),
  });
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const connectBytes = encode(
    { type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId },
    4,
  );
  socket.write(then === undefined ? connectBytes : Buffer.concat([connectBytes, then]));
  return socket;
}

export interface PingResult {
  /** PINGREQs sent; each one's round trip is a sample (an unanswered one: its wait so far). */
  samples: number;
  latency: LatencySummary;
  unanswered: number;
}

/**
 * A victim client: a PINGREQ every `everyMs` (100) ms whether or not the previous ones were answered
 * (PINGRESPs come back in order), so a stalled server shows as many long samples, not one.
 * PINGREQs still unanswered when stopped count with their wait so far.
 */
export async function pinger(url: string, everyMs = 100): Promise<{ stop(): PingResult; socket: Socket }> {
  const socket = await rawConnect(url, 'victim');
  const hist = new LatencyHistogram();
  const sentAt: number[] = [];
  let answered = 0;
  let connacked = false;
  let pending = 0;
  const connected = new Promise<void>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      let bytes = chunk.length;
      if (!connacked) {
        connacked = true;
        bytes -= 4;
        resolve();
      }
      // Only PINGRESPs (2 bytes each) arrive after the CONNACK: the victim subscribes to nothing.
      pending += bytes;
      const now = performance.now();
      while (pending >= 2 && answered < sentAt.length) {
        pending -= 2;
        hist.recordMs(now - sentAt[answered++]!);
      }
    });
  });
  await connected;
  const PINGREQ = Buffer.from([0xc0, 0x00]);
  const timer = setInterval(() => {
    sentAt.push(performance.now());
    socket.write(PINGREQ);
  }, everyMs);
  return {
    socket,
    stop(): PingResult {
      clearInterval(timer);
      const now = performance.now();
      const unanswered = sentAt.length - answered;
      for (let i = answered; i < sentAt.length; i++) hist.recordMs(now - sentAt[i]!);
      return { samples: hist.count, latency: hist.summary(), unanswered };
    },
  };
}

/**
 * `pinger` in a child process of its own; `stop` ends it and answers with its figures. The
 * child exits when stopped or when the parent goes away.
 */
export async function pingerProcess(url: string, everyMs = 100): Promise<{ stop(): Promise<PingResult> }> {
  const child: ChildProcess = spawnTracked(
    process.execPath,
    [fileURLToPath(import.meta.url), url, String(everyMs)],
    {
      cwd: REPO_DIR,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
  const next = (type: string): Promise<{ type: string; result?: PingResult; error?: string }> =>
    new Promise((resolve, reject) => {
      const onExit = (): void => reject(new Error(`victim process exited before ${type}`));
      child.once('exit', onExit);
      child.on('message', function onMessage(msg: { type: string; result?: PingResult; error?: string }) {
        if (msg.type !== type && msg.type !== 'error') return;
        child.off('message', onMessage);
        child.off('exit', onExit);
        if (msg.type === 'error') reject(new Error(`victim: ${msg.error}`));
        else resolve(msg);
      });
    });
  await next('ready');
  return {
    async stop(): Promise<PingResult> {
      const answer = next('result');
      child.send({ cmd: 'stop' });
      return (await answer).result!;
    },
  };
}

if (process.send !== undefined && process.argv[1] === fileURLToPath(import.meta.url)) {
  process.on('disconnect', () => process.exit(0));
  try {
    const ping = await pinger(process.argv[2]!, Number(process.argv[3]));
    process.once('message', () => {
      const result = ping.stop();
      ping.socket.destroy();
      process.send!({ type: 'result', result }, () => process.exit(0));
    });
    process.send({ type: 'ready' });
  } catch (err) {
    process.send({ type: 'error', error: (err as Error).message }, () => process.exit(1));
  }
}
