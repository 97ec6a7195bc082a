/**
 * A WebSocket as a Duplex of MQTT bytes (MQTT 5.0 chapter 6): binary messages in, binary
 * messages out. Unlike ws' createWebSocketStream it implements `_writev`, so everything the
 * connection corks in one event-loop turn leaves as ONE WebSocket frame, not one per packet.
 *
 * - A text frame closes the connection with 1003 (unsupported data) [MQTT-6.0.0-1].
 * - Message boundaries mean nothing to MQTT: a packet may span messages and a message may hold
 *   several packets [MQTT-6.0.0-2], [MQTT-6.0.0-3]; the Parser already handles both.
 * - Backpressure: when the reader is full the TCP socket under the WebSocket is paused.
 */
import { Duplex } from 'node:stream';
import type { RawData, WebSocket } from 'ws';

export class WebSocketDuplex extends Duplex {
  readonly #ws: WebSocket;

  constructor(ws: WebSocket) {
    super({ allowHalfOpen: false });
    this.#ws = ws;
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (!isBinary) {
        ws.close(1003, 'MQTT needs binary frames'); // [MQTT-6.0.0-1]
        return;
      }
      const chunk = Array.isArray(data)
        ? Buffer.concat(data)
        : Buffer.isBuffer(data)
          ? data
          : Buffer.from(data);
      if (!this.push(chunk)) ws.pause();
    });
    ws.on('close', () => {
      this.push(null);
      this.destroy();
    });
    ws.on('error', (err) => this.destroy(err));
  }

  override _read(): void {
    if (this.#ws.isPaused) this.#ws.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#ws.send(chunk, { binary: true }, callback);
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    const data = chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk));
    this.#ws.send(data, { binary: true }, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#ws.close(1000);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.#ws.readyState === this.#ws.OPEN || this.#ws.readyState === this.#ws.CONNECTING)
      this.#ws.terminate();
    callback(error);
  }
}
