/**
 * A minimal MQTT client built on our own codec, for feature and conformance tests: send any
 * packet (or raw bytes), await the next packet of a type, await the close. Connects either
 * over an in-memory duplex straight into Server.accept (no ports) or over TCP.
 */
import { connect as netConnect } from 'node:net';
import { type Duplex, duplexPair } from 'node:stream';
import {
  type ConnackPacket,
  type ConnectPacket,
  encode,
  type Packet,
  Parser,
  type ProtocolVersion,
} from '../../src/protocol/index.ts';
import type { Server } from '../../src/server.ts';

/**
 * How long `next`/`expect` wait by default. Longer when the conformance suites run on two-node
 * clusters (PUBSUB_TEST_CLUSTER=1, test/cluster/conformance.test.ts): each suite's servers are
 * then two nodes and a nats-server, and the suites run beside the rest of `npm test`.
 */
export const PACKET_WAIT_MS = process.env.PUBSUB_TEST_CLUSTER === '1' ? 6000 : 2000;

type Waiter = { resolve: (p: Packet) => void; reject: (e: Error) => void; timer: NodeJS.Timeout };

export class RawClient {
  readonly socket: Duplex;
  readonly version: ProtocolVersion;
  readonly received: Packet[] = [];
  #parser: Parser;
  #waiters: Waiter[] = [];
  #closed = false;
  #closeWaiters: (() => void)[] = [];
  parseError: Error | null = null;

  constructor(socket: Duplex, version: ProtocolVersion) {
    this.socket = socket;
    this.version = version;
    this.#parser = new Parser({ protocolVersion: version });
    socket.on('data', (chunk: Buffer) => {
      const err = this.#parser.push(chunk, (p) => {
        const w = this.#waiters.shift();
        if (w) {
          clearTimeout(w.timer);
          w.resolve(p);
        } else {
          this.received.push(p);
        }
      });
      if (err) this.parseError = err;
    });
    socket.on('error', () => {});
    const onClose = (): void => {
      if (this.#closed) return;
      this.#closed = true;
      for (const w of this.#waiters.splice(0)) {
        clearTimeout(w.timer);
        w.reject(new Error('connection closed'));
      }
      for (const f of this.#closeWaiters.splice(0)) f();
    };
    socket.on('close', onClose);
    socket.on('end', () => {
      onClose();
      socket.end();
    });
  }

  /** Connects over an in-memory duplex straight into the server (no port). */
  static memory(server: Server, version: ProtocolVersion = 4): RawClient {
    const [clientSide, serverSide] = duplexPair();
    server.accept(serverSide, { transport: 'memory', remoteAddress: 'memory', remotePort: 0 });
    return new RawClient(clientSide, version);
  }

  static tcp(port: number, version: ProtocolVersion = 4): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = netConnect(port, '127.0.0.1', () => resolve(new RawClient(socket, version)));
      socket.once('error', reject);
    });
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  send(packet: Packet): void {
    this.socket.write(encode(packet, this.version));
  }

  sendRaw(bytes: Buffer | number[]): void {
    this.socket.write(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes));
  }

  /** The next packet, whatever its type. */
  next(timeoutMs = PACKET_WAIT_MS): Promise<Packet> {
    const queued = this.received.shift();
    if (queued) return Promise.resolve(queued);
    if (this.#closed) return Promise.reject(new Error('connection closed'));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
          reject(new Error(`no packet within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.#waiters.push(waiter);
    });
  }

  /** The next packet, which must be of `type`. */
  async expect<T extends Packet['type']>(
    type: T,
    timeoutMs = PACKET_WAIT_MS,
  ): Promise<Extract<Packet, { type: T }>> {
    const p = await this.next(timeoutMs);
    if (p.type !== type) throw new Error(`expected ${type}, got ${JSON.stringify(p)}`);
    return p as Extract<Packet, { type: T }>;
  }

  /** Resolves when nothing arrives for `ms` (fails if a packet does). */
  async expectSilence(ms = 150): Promise<void> {
    const p = await this.next(ms).catch(() => undefined);
    if (p !== undefined) throw new Error(`expected no packet, got ${JSON.stringify(p)}`);
  }

  /** Resolves when the server closes the connection. */
  closed(timeoutMs = 3000): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`still open after ${timeoutMs} ms`)), timeoutMs);
      this.#closeWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Sends CONNECT (defaults: clean, keep alive 60) and returns the CONNACK. */
  async connect(fields: Partial<ConnectPacket> = {}): Promise<ConnackPacket> {
    this.send({
      type: 'connect',
      protocolName: this.version === 3 ? 'MQIsdp' : 'MQTT',
      protocolVersion: this.version,
      clean: true,
      keepalive: 60,
      clientId: '',
      ...fields,
    });
    return this.expect('connack');
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}
