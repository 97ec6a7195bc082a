/**
 * A WebSocket as a Duplex of MQTT bytes (MQTT 5.0 chapter 6): binary messages in, binary
 * messages out. Unlike ws' createWebSocketStream it implements `_writev`, so everything the
 * connection corks in one event-loop turn leaves as ONE WebSocket frame, not one per packet.
 *
 * - A text frame closes the connection with 1003 (unsupported data) [MQTT-6.0.0-1].
 * - Message boundaries mean nothing to MQTT: a packet may span messages and a message may hold
 *   several packets [MQTT-6.0.0-2], [MQTT-6.0.0-3]; the Parser already handles both.
 * - Backpressure: when the reader is full the TCP socket under the WebSocket is paused.
 * - `limitFrames` bounds the message ws buffers whole before handing it over (its frames'
 *   payloads together, and what permessage-deflate inflates): the listener keeps it at the
 *   pre-CONNECT packet size until the connection is admitted, then raises it. ws has no public
 *   per-connection bound, so this sets its receiver's and its deflate extension's `_maxPayload`
 *   (ws 8.x; the receiver checks it from each frame header, before buffering the payload); it
 *   returns false when those fields are not there, and test/transport/websocket.test.ts fails.
 * - After a refused message (too large, too many fragments) the socket is no longer read and is
 *   dropped a second later: ws would read, and discard, all the peer still sends until it
 *   closes.
 */
import { Duplex } from 'node:stream';
import type { RawData, WebSocket } from 'ws';

/** How long a refused connection keeps its socket so that the peer reads the close frame. */
const REFUSED_CLOSE_GRACE_MS = 1000;

/** The part of ws' internals `limitFrames` relies on. */
interface WithReceiver {
  _receiver?: { _maxPayload?: unknown } | null;
  /** Negotiated extensions; permessage-deflate bounds what it inflates by its own copy. */
  _extensions?: Record<string, { _maxPayload?: unknown } | undefined>;
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
    ws.on('error', (err) => {
      // ws has sent its close frame (1008, 1009...), ends the socket, and resumes it on the next
      // tick to read, and discard, whatever the peer still sends until the peer closes too: a
      // flood costs its whole size in reads. Stop reading instead (after that tick), and drop
      // the socket after a grace period in which the peer can read the close frame.
      process.nextTick(() => ws.pause());
      setTimeout(() => ws.terminate(), REFUSED_CLOSE_GRACE_MS).unref();
      this.destroy(err);
    });
  }

  /**
   * Largest message (payload bytes of all its frames, and inflated, with permessage-deflate)
   * accepted from now on; larger: close 1009. False when ws' internals are not as expected.
   */
  limitFrames(bytes: number): boolean {
    const internals = this.#ws as unknown as WithReceiver;
    const receiver = internals._receiver;
    if (receiver === null || receiver === undefined || typeof receiver._maxPayload !== 'number') return false;
    receiver._maxPayload = bytes;
    const deflate = internals._extensions?.['permessage-deflate'];
    if (deflate !== undefined) {
      if (typeof deflate._maxPayload !== 'number') return false;
      deflate._maxPayload = bytes;
    }
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
