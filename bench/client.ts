/**
 * A bare MQTT 3.1.1 client for load generation: a raw `net` socket (optionally wrapped in our
 * WebSocket framing), the project's own codec (`encode`, `Parser`), and no per-message
 * promises or events. The owner sets `onPublish`/`onPuback` and writes pre-encoded bytes with
 * `send`; QoS 1 deliveries are acknowledged in one write per socket read.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { encode, type Packet, Parser, type PublishPacket, type QoS } from '../src/protocol/index.ts';
import { encodeFrame, FrameDecoder, OP_CLOSE, OP_PING, OP_PONG, wsHandshake } from './ws-framing.ts';

export interface Endpoint {
  host: string;
  port: number;
  /** WebSocket path when the endpoint is ws://; undefined for plain TCP. */
  wsPath?: string;
}

export function parseUrl(url: string): Endpoint {
  const u = new URL(url);
  const port = Number(u.port);
  if (u.protocol === 'mqtt:' || u.protocol === 'tcp:') return { host: u.hostname, port };
  if (u.protocol === 'ws:') return { host: u.hostname, port, wsPath: u.pathname || '/mqtt' };
  throw new Error(`unsupported url ${url}`);
}

export interface ConnectOptions {
  clientId: string;
  /** MQTT user name, e.g. `<broker>.<namespace>` to reach a broker by name (docs/auth.md). */
  username?: string;
  clean?: boolean;
  keepalive?: number;
  localAddress?: string;
  noDelay?: boolean;
  timeoutMs?: number;
}

const PUBACK_TEMPLATE = encode({ type: 'puback', packetId: 1, reasonCode: 0 }, 4);

export class MqttConn {
  readonly endpoint: Endpoint;
  socket!: Socket;
  readonly parser = new Parser({ protocolVersion: 4 });
  #decoder: FrameDecoder | undefined;
  onPublish: (p: PublishPacket) => void = () => {};
  onPuback: (packetId: number) => void = () => {};
  onClose: (err?: Error) => void = () => {};
  /** Acks for QoS 1 deliveries of the current read, written together once it is parsed. */
  autoAck = true;
  #acks: Buffer | undefined;
  #ackCount = 0;
  #pending: ((p: Packet) => boolean) | undefined;
  closed = false;
  error: Error | undefined;
  /** Socket reads and WebSocket frames seen, for "messages per read" figures. */
  reads = 0;

  constructor(endpoint: Endpoint) {
    this.endpoint = endpoint;
  }

  get isWs(): boolean {
    return this.endpoint.wsPath !== undefined;
  }

  get wsFrames(): number {
    return this.#decoder?.frames ?? 0;
  }

  /** Opens the socket (and WebSocket), sends CONNECT, resolves on CONNACK with sessionPresent. */
  async connect(opts: ConnectOptions): Promise<{ sessionPresent: boolean }> {
    const { host, port } = this.endpoint;
    const socket = netConnect({
      host,
      port,
      noDelay: opts.noDelay ?? true,
      ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
    });
    this.socket = socket;
    const timeoutMs = opts.timeoutMs ?? 10_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new Error(`connect timeout after ${timeoutMs} ms`));
        socket.destroy();
      }, timeoutMs);
    });
    try {
      await Promise.race([
        new Promise<void>((resolve, reject) => {
          socket.once('connect', resolve);
          socket.once('error', reject);
        }),
        timeout,
      ]);
      socket.removeAllListeners('error');
      socket.on('error', (err) => {
        this.error ??= err;
      });
      socket.on('close', () => {
        this.closed = true;
        this.onClose(this.error);
      });
      let leftover: Buffer | undefined;
      if (this.endpoint.wsPath !== undefined) {
        leftover = await Promise.race([wsHandshake(socket, host, port, this.endpoint.wsPath), timeout]);
        this.#decoder = new FrameDecoder(this.#onStreamData, this.#onControl);
        socket.on('data', (chunk: Buffer) => {
          this.reads++;
          this.#decoder!.push(chunk);
          this.#flushAcks();
        });
      } else {
        socket.on('data', (chunk: Buffer) => {
          this.reads++;
          this.#onStreamData(chunk);
          this.#flushAcks();
        });
      }
      const connack = this.#expect((p) => p.type === 'connack');
      this.send(
        encode(
          {
            type: 'connect',
            protocolName: 'MQTT',
            protocolVersion: 4,
            clean: opts.clean ?? true,
            keepalive: opts.keepalive ?? 60,
            clientId: opts.clientId,
            ...(opts.username !== undefined ? { username: opts.username } : {}),
          },
          4,
        ),
      );
      if (leftover !== undefined && leftover.length > 0) this.#decoder!.push(leftover);
      const p = await Promise.race([connack, timeout]);
      if (p.type !== 'connack' || p.reasonCode !== 0)
        throw new Error(`CONNACK refused: ${(p as { reasonCode?: number }).reasonCode}`);
      return { sessionPresent: p.sessionPresent };
    } catch (err) {
      socket.destroy();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  async subscribe(filters: [string, QoS][], packetId = 1): Promise<number[]> {
    const suback = this.#expect((p) => p.type === 'suback' && p.packetId === packetId);
    this.send(
      encode(
        {
          type: 'subscribe',
          packetId,
          subscriptions: filters.map(([topicFilter, qos]) => ({
            topicFilter,
            qos,
            noLocal: false,
            retainAsPublished: false,
            retainHandling: 0,
          })),
        },
        4,
      ),
    );
    const p = await withTimeout(suback, 15_000, 'SUBACK');
    if (p.type !== 'suback') throw new Error('expected SUBACK');
    return p.reasonCodes;
  }

  /** Writes raw MQTT bytes (one WebSocket frame when over WebSocket). */
  send(bytes: Buffer): boolean {
    if (this.closed) return false;
    return this.socket.write(this.#decoder !== undefined ? encodeFrame(bytes) : bytes);
  }

  disconnect(): void {
    if (this.closed) return;
    this.send(encode({ type: 'disconnect', reasonCode: 0 }, 4));
    this.socket.end();
  }

  destroy(): void {
    this.socket?.destroy();
  }

  #expect(match: (p: Packet) => boolean): Promise<Packet> {
    return new Promise((resolve, reject) => {
      const prevClose = this.onClose;
      this.onClose = (err) => {
        this.onClose = prevClose;
        reject(err ?? new Error('connection closed'));
        prevClose(err);
      };
      this.#pending = (p) => {
        if (!match(p)) return false;
        this.#pending = undefined;
        this.onClose = prevClose;
        resolve(p);
        return true;
      };
    });
  }

  #onStreamData = (bytes: Buffer): void => {
    const err = this.parser.push(bytes, this.#onPacket);
    if (err !== null) {
      this.error = err;
      this.socket.destroy();
    }
  };

  #onPacket = (p: Packet): void => {
    if (p.type === 'publish') {
      if (p.qos === 1 && this.autoAck) this.#queueAck(p.packetId!);
      this.onPublish(p);
      return;
    }
    if (p.type === 'puback') {
      this.onPuback(p.packetId);
      return;
    }
    if (this.#pending?.(p)) return;
  };

  #onControl = (opcode: number, payload: Buffer): void => {
    if (opcode === OP_PING) this.socket.write(encodeFrame(payload, OP_PONG));
    else if (opcode === OP_CLOSE) {
      if (!this.closed) this.socket.end(encodeFrame(payload.subarray(0, 2), OP_CLOSE));
    }
  };

  #queueAck(packetId: number): void {
    if (this.#acks === undefined || this.#ackCount * 4 >= this.#acks.length) {
      const bigger = Buffer.allocUnsafe(Math.max(256, (this.#acks?.length ?? 0) * 2));
      if (this.#acks !== undefined) this.#acks.copy(bigger, 0, 0, this.#ackCount * 4);
      this.#acks = bigger;
    }
    const at = this.#ackCount * 4;
    PUBACK_TEMPLATE.copy(this.#acks, at);
    this.#acks.writeUInt16BE(packetId, at + 2);
    this.#ackCount++;
  }

  #flushAcks(): void {
    if (this.#ackCount === 0) return;
    const bytes = Buffer.from(this.#acks!.subarray(0, this.#ackCount * 4));
    this.#ackCount = 0;
    this.send(bytes);
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout waiting for ${what} after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
