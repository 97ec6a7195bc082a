/**
 * The victim of the isolation benchmarks (neighbours.ts, storm.ts): a raw v3.1.1 client that
 * sends PINGREQs on a timer and times each PINGRESP.
 */
import { connect, type Socket } from 'node:net';
import { encode } from '../src/protocol/index.ts';
import { parseUrl } from './client.ts';
import { LatencyHistogram, type LatencySummary } from './stats.ts';

/**
 * A raw TCP connection that has sent a v3.1.1 CONNECT (keep-alive 0) and then `then` (if
 * given), in one write; the caller reads the answers itself.
 */
export async function rawConnect(url: string, clientId: string, then?: Buffer): Promise<Socket> {
  const { host, port } = parseUrl(url);
  const socket = connect({ host, port, noDelay: true });
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
