/**
 * Reads the PROXY protocol header off a freshly accepted socket, before anything else (MQTT or
 * the TLS handshake) sees its bytes.
 *
 * Bounded: the header must be complete within `timeoutMs`, and parseProxyHeader refuses anything
 * longer than the protocol allows (107 bytes for v1, 16 + 65535 for v2) or not shaped like a
 * header, as soon as the first wrong byte arrives. Linear: chunks are collected in a list and
 * joined only when the parser's `atLeast` bytes are there, so a 64 KiB v2 header sent a byte at
 * a time is copied once, not once per byte. On success the socket is left PAUSED with the
 * client's bytes that followed the header pushed back (`unshift`), so the next reader, the MQTT
 * connection or the TLS server, gets exactly the client's stream; the caller resumes it.
 * On failure the socket is destroyed and the promise rejects with the reason.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { type Endpoint, parseProxyHeader } from './proxy-protocol.ts';

export class ProxyHeaderError extends Error {
  override name = 'ProxyHeaderError';
  /** The peer closed without sending a byte: a load balancer's TCP health check, not bad input. */
  readonly silentClose: boolean;

  constructor(message: string, silentClose = false) {
    super(message);
    this.silentClose = silentClose;
  }
}

/** Resolves with the client's endpoint from the header, or undefined when the header says to use the socket's. */
export function readProxyHeader(socket: Duplex, timeoutMs: number): Promise<Endpoint | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let atLeast = 1;
    const finish = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
    };
    const fail = (reason: string, silentClose = false): void => {
      finish();
      socket.on('error', () => {}); // a reset racing the destroy is not news
      socket.destroy();
      reject(new ProxyHeaderError(reason, silentClose));
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      received += chunk.length;
      if (received < atLeast) return;
      const buffered = chunks.length === 1 ? chunk : Buffer.concat(chunks, received);
      chunks.length = 0;
      chunks.push(buffered);
      const header = parseProxyHeader(buffered);
      if (header.status === 'incomplete') {
        atLeast = header.atLeast;
        return;
      }
      if (header.status === 'invalid') return fail(`invalid PROXY header: ${header.reason}`);
      finish();
      socket.pause();
      if (buffered.length > header.length) socket.unshift(buffered.subarray(header.length));
      resolve(header.source);
    };
    const onEnd = (): void => fail('connection closed before a complete PROXY header', received === 0);
    const onError = (err: Error): void => fail(`socket error before a complete PROXY header: ${err.message}`);
    const timer = setTimeout(() => fail(`no complete PROXY header within ${timeoutMs} ms`), timeoutMs);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.once('error', onError);
  });
}

/**
 * The sockets of one listener that are still sending their PROXY header: each is admitted once
 * its header is read, or destroyed and logged once (warn, with the proxy's address and the
 * reason). A peer that closes without sending a byte (a load balancer's TCP health check) is
 * logged at debug only. `destroyAll` ends those still waiting when the listener closes.
 */
export class ProxyGate {
  readonly #pending = new Set<Socket>();
  readonly #timeoutMs: number;
  readonly #logger: Logger;
  readonly #listener: string;
  #closing = false;

  constructor(listener: string, timeoutMs: number, logger: Logger) {
    this.#listener = listener;
    this.#timeoutMs = timeoutMs;
    this.#logger = logger;
  }

  /** Reads the header off `socket`, then calls `admitted` with the client's endpoint (or undefined: the socket's own). */
  admit(socket: Socket, admitted: (client: Endpoint | undefined) => void): void {
    this.#pending.add(socket);
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    readProxyHeader(socket, this.#timeoutMs).then(
      (client) => {
        this.#pending.delete(socket);
        admitted(client);
      },
      (err: ProxyHeaderError) => {
        this.#pending.delete(socket);
        if (this.#closing) return;
        const fields = { remote, listener: this.#listener, reason: err.message };
        if (err.silentClose) this.#logger.debug(fields, 'connection closed before sending anything');
        else this.#logger.warn(fields, 'PROXY header refused; closing');
      },
    );
  }

  destroyAll(): void {
    this.#closing = true;
    for (const socket of this.#pending) socket.destroy();
  }
}
