/**
 * A WebSocket as a Duplex of MQTT bytes (MQTT 5.0 chapter 6): binary messages in, binary
 * messages out. Unlike ws' createWebSocketStream it implements `_writev`, so everything the
 * connection corks in one event-loop turn leaves as ONE WebSocket frame, not one per packet.
 *
 * - A text frame closes the connection with 1003 (unsupported data) [MQTT-6.0.0-1].
 * - Message boundaries mean nothing to MQTT: a packet may span messages and a message may hold
 *   several packets [MQTT-6.0.0-2], [MQTT-6.0.0-3]; the Parser already handles both.
 * - Backpressure: when the reader is full the TCP socket under the WebSocket is paused.
 * - `limitFrames` bounds the frame ws buffers whole before handing it over: the listener keeps
 *   it at the pre-CONNECT packet size until the connection is admitted, then raises it. ws has
 *   no public per-connection bound, so this sets its receiver's `_maxPayload` (ws 8.x; the one
 *   bound ws reads per frame, from the frame header, before buffering the payload); it returns
 *   false when that field is not there, and test/transport/websocket.test.ts fails then.
 */
import { Duplex } from 'node:stream';
import type { RawData, WebSocket } from 'ws';

/** The part of ws' internals `limitFrames` relies on. */
interface WithReceiver {
  _receiver?: { _maxPayload?: unknown } | null;
}

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
    // ws reports a refused frame (too large, too many fragments) as an error and then waits for
    // the peer's close while still reading, and discarding, whatever it sends: up to a whole
    // refused frame per connection. Drop the socket at once instead.
    ws.on('error', (err) => {
      ws.terminate();
      this.destroy(err);
    });
  }

  /** Largest frame (payload bytes) accepted from now on; larger: close 1009. False if unsupported. */
  limitFrames(bytes: number): boolean {
    const receiver = (this.#ws as unknown as WithReceiver)._receiver;
    if (receiver === null || receiver === undefined || typeof receiver._maxPayload !== 'number') return false;
    receiver._maxPayload = bytes;
    return true;
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
