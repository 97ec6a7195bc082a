/**
 * `node bench/connect-memory.ts`: what unauthenticated connections sending a large partial
 * CONNECT cost our broker in memory (docs/security.md, "Before CONNECT"). A fresh broker
 * process per run (`serve`, loopback, :memory:); N raw TCP connections (default 64) each write
 * the first 1,000,000 bytes of a v5 CONNECT declaring a 1,040,000-byte body (inside the 1 MiB
 * maximum packet size) and never finish it. The broker's VmRSS (/proc/<pid>/status) is read
 * before, then every 50 ms for --hold-ms (default 3000, under the 10 s connect timeout); the
 * peak minus before is the cost (the reading at the end of the hold shows what stays). Also counted: connections the broker closed within the hold,
 * and how (CONNACK 0x95 first, or a close without a byte).
 *
 * Two rows per transport, --reps each (default 3, medians): the defaults (64 KiB before
 * CONNECT), and `--max-connect-packet-size 1048576`, which lets the partial CONNECTs be buffered
 * as every packet was before the pre-CONNECT limit existed. `--transport tcp|ws|both` (default
 * both): over WebSocket the same bytes travel in one masked binary frame declaring the whole
 * CONNECT, after an upgrade on /mqtt; ws holds a frame whole before the parser sees it, so there
 * the bound is the frame's. Prints a markdown table.
 */
import { connect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { type BrokerHandle, killAllChildren, startBroker } from './brokers.ts';
import { procRssKb } from './proc.ts';
import { median } from './stats.ts';

const { values: opts } = parseArgs({
  options: {
    connections: { type: 'string', default: '64' },
    'hold-ms': { type: 'string', default: '3000' },
    reps: { type: 'string', default: '3' },
    transport: { type: 'string', default: 'both' },
  },
});
const TRANSPORTS = (opts.transport === 'both' ? ['tcp', 'ws'] : [opts.transport]) as ('tcp' | 'ws')[];
const CONNECTIONS = Number(opts.connections);
const HOLD_MS = Number(opts['hold-ms']);
const REPS = Number(opts.reps);
const SENT_BYTES = 1_000_000;
const DECLARED_BODY = 1_040_000;

const ROWS: { label: string; serveArgs: string[] }[] = [
  { label: 'defaults (64 KiB before CONNECT)', serveArgs: [] },
  { label: '--max-connect-packet-size 1048576', serveArgs: ['--max-connect-packet-size', '1048576'] },
];

interface Run {
  beforeKb: number;
  peakKb: number;
  endKb: number;
  closed: number;
  connack95: number;
  silent: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The partial CONNECT: fixed header, "MQTT" level 5, Clean Start, keep alive 60, then filler. */
function partialConnect(): Buffer {
  const bytes = Buffer.alloc(SENT_BYTES, 0x61);
  let n = DECLARED_BODY;
  const varint: number[] = [];
  do {
    varint.push((n % 128) | (n >= 128 ? 0x80 : 0));
    n = Math.floor(n / 128);
  } while (n > 0);
  Buffer.from([0x10, ...varint, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x05, 0x02, 0x00, 0x3c]).copy(bytes);
  return bytes;
}

interface Probe {
  socket: Socket;
  received: Buffer[];
  closed: boolean;
}

/** The upgrade request, then `connect` as one masked (zero key) binary frame declaring all of it. */
function webSocketBytes(connect: Buffer): { upgrade: string; frame: Buffer } {
  const header = Buffer.alloc(14);
  header[0] = 0x82;
  header[1] = 0x80 | 127;
  header.writeBigUInt64BE(BigInt(DECLARED_BODY + 4), 2);
  return {
    upgrade:
      'GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n',
    frame: Buffer.concat([header, connect]),
  };
}

function open(port: number, bytes: Buffer, transport: 'tcp' | 'ws'): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      if (transport === 'tcp') {
        socket.write(bytes);
        return resolve(probe);
      }
      const { upgrade, frame } = webSocketBytes(bytes);
      socket.write(upgrade);
      socket.once('data', () => {
        probe.received.length = 0; // the 101 answer
        socket.write(frame);
        resolve(probe);
      });
    });
    const probe: Probe = { socket, received: [], closed: false };
    socket.on('data', (c: Buffer) => probe.received.push(c));
    socket.on('error', () => {});
    socket.once('close', () => {
      probe.closed = true;
    });
    socket.once('error', reject);
  });
}

async function runOnce(serveArgs: string[], transport: 'tcp' | 'ws'): Promise<Run> {
  let broker: BrokerHandle | undefined;
  const probes: Probe[] = [];
  try {
    broker = await startBroker('pubsub', { noDelay: true, serveArgs });
    const port = Number(new URL(transport === 'tcp' ? broker.tcpUrl : broker.wsUrl!).port);
    await sleep(1000);
    const beforeKb = procRssKb(broker.pid)!;
    const bytes = partialConnect();
    for (let i = 0; i < CONNECTIONS; i++) probes.push(await open(port, bytes, transport));
    let peakKb = beforeKb;
    for (const until = Date.now() + HOLD_MS; Date.now() < until; ) {
      peakKb = Math.max(peakKb, procRssKb(broker.pid) ?? 0);
      await sleep(50);
    }
    const replies = probes.map((p) => Buffer.concat(p.received));
    return {
      beforeKb,
      peakKb,
      endKb: procRssKb(broker.pid) ?? Number.NaN,
      closed: probes.filter((p) => p.closed).length,
      // CONNACK (0x20), flags 0, reason 0x95 after a 1-byte Remaining Length.
      connack95: replies.filter((r) => r[0] === 0x20 && r[3] === 0x95).length,
      silent: probes.filter((p, i) => p.closed && replies[i]!.length === 0).length,
    };
  } finally {
    for (const p of probes) p.socket.destroy();
    await broker?.stop();
  }
}

const mb = (kb: number): string => (kb / 1024).toFixed(1);

async function main(): Promise<void> {
  process.on('exit', killAllChildren);
  process.on('SIGINT', () => process.exit(130));
  const lines = [
    `${CONNECTIONS} connections x ${SENT_BYTES.toLocaleString('en-US')} bytes of a CONNECT declaring ${DECLARED_BODY.toLocaleString('en-US')}, held ${HOLD_MS} ms; median of ${REPS}`,
    '',
    '| transport | broker flags | RSS before MB | peak MB | peak increase MB | per connection KB | increase at end of hold MB | closed within hold | CONNACK 0x95 | closed silently |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const transport of TRANSPORTS)
    for (const row of ROWS) {
      const runs: Run[] = [];
      for (let rep = 1; rep <= REPS; rep++) {
        const run = await runOnce(row.serveArgs, transport);
        runs.push(run);
        console.error(
          `${transport} ${row.label} #${rep}: +${mb(run.peakKb - run.beforeKb)} MB, closed ${run.closed}/${CONNECTIONS}, 0x95 ${run.connack95}`,
        );
      }
      const m = (f: (r: Run) => number): number => median(runs.map(f)) ?? Number.NaN;
      const increase = m((r) => r.peakKb - r.beforeKb);
      lines.push(
        `| ${transport} | ${row.label} | ${mb(m((r) => r.beforeKb))} | ${mb(m((r) => r.peakKb))} | ${mb(increase)} | ${(increase / CONNECTIONS).toFixed(0)} | ${mb(m((r) => r.endKb - r.beforeKb))} | ${m((r) => r.closed)}/${CONNECTIONS} | ${m((r) => r.connack95)} | ${m((r) => r.silent)} |`,
      );
    }
  console.log(lines.join('\n'));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
