/**
 * Minimal WebSocket client framing (RFC 6455) for MQTT over WebSocket: the opening handshake
 * with subprotocol `mqtt`, masked binary frames out (one frame per write, so a batch of
 * PUBLISH packets is one frame), and a streaming frame decoder in that hands binary payload
 * bytes on as they arrive (MQTT over WebSocket is a byte stream; frame boundaries carry no
 * meaning). Ping is answered with pong; close is answered and ends the socket.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export const OP_CONT = 0x0;
export const OP_BINARY = 0x2;
export const OP_CLOSE = 0x8;
export const OP_PING = 0x9;
export const OP_PONG = 0xa;

/**
 * Sends the HTTP upgrade and resolves with the bytes that followed the 101 response (the start
 * of the frame stream) once the server accepted it with subprotocol mqtt.
 */
export function wsHandshake(socket: Socket, host: string, port: number, path: string): Promise<Buffer> {
  const key = randomBytes(16).toString('base64');
  const expected = createHash('sha1')
    .update(key + GUID)
    .digest('base64');
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n`,
  );
  return new Promise((resolve, reject) => {
    let head: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 16384) fail(new Error('websocket handshake: response header too long'));
        return;
      }
      socket.off('data', onData);
      socket.off('error', fail);
      socket.off('close', onClose);
      const text = head.subarray(0, end).toString('latin1');
      const lines = text.split('\r\n');
      if (!/^HTTP\/1\.1 101/.test(lines[0] ?? '')) {
        reject(new Error(`websocket handshake refused: ${lines[0]}`));
        return;
      }
      const headers = new Map<string, string>();
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
      }
      if (headers.get('sec-websocket-accept') !== expected) {
        reject(new Error('websocket handshake: bad Sec-WebSocket-Accept'));
        return;
      }
      const proto = headers.get('sec-websocket-protocol');
      if (proto !== undefined && proto.toLowerCase() !== 'mqtt') {
        reject(new Error(`websocket handshake: server chose subprotocol ${proto}`));
        return;
      }
      resolve(head.subarray(end + 4));
    };
    const fail = (err: Error): void => {
      socket.off('data', onData);
      reject(err);
    };
    const onClose = (): void => fail(new Error('websocket handshake: connection closed'));
    socket.on('data', onData);
    socket.once('error', fail);
    socket.once('close', onClose);
  });
}

/** One masked client frame carrying `payload` (FIN set). */
export function encodeFrame(payload: Buffer, opcode = OP_BINARY): Buffer {
  const len = payload.length;
  const headerLength = (len < 126 ? 2 : len < 65536 ? 4 : 10) + 4;
  const frame = Buffer.allocUnsafe(headerLength + len);
  frame[0] = 0x80 | opcode;
  let pos: number;
  if (len < 126) {
    frame[1] = 0x80 | len;
    pos = 2;
  } else if (len < 65536) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(len, 2);
    pos = 4;
  } else {
    frame[1] = 0x80 | 127;
    frame.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
    frame.writeUInt32BE(len >>> 0, 6);
    pos = 10;
  }
  // Masking key from a fast PRNG: it only has to vary, this client is no browser.
  const m0 = (Math.random() * 256) | 0;
  const m1 = (Math.random() * 256) | 0;
  const m2 = (Math.random() * 256) | 0;
  const m3 = (Math.random() * 256) | 0;
  frame[pos] = m0;
  frame[pos + 1] = m1;
  frame[pos + 2] = m2;
  frame[pos + 3] = m3;
  pos += 4;
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    frame[pos + i] = payload[i]! ^ m0;
    frame[pos + i + 1] = payload[i + 1]! ^ m1;
    frame[pos + i + 2] = payload[i + 2]! ^ m2;
    frame[pos + i + 3] = payload[i + 3]! ^ m3;
  }
  const mask = [m0, m1, m2, m3];
  for (; i < len; i++) frame[pos + i] = payload[i]! ^ mask[i & 3]!;
  return frame;
}

/**
 * Streaming decoder of server frames (unmasked). Data frames' payload bytes go to `onData`
 * as soon as they arrive, possibly split; control frames are assembled and go to `onControl`.
 */
export class FrameDecoder {
  #header = Buffer.alloc(14);
  #headerHave = 0;
  #headerNeed = 2;
  /** Payload bytes still to come for the current frame. */
  #remaining = 0;
  #opcode = 0;
  #control: Buffer[] = [];
  /** Whether the current frame is data (binary/continuation) rather than control. */
  #inData = false;
  #inFrame = false;
  readonly onData: (bytes: Buffer) => void;
  readonly onControl: (opcode: number, payload: Buffer) => void;
  frames = 0;

  constructor(onData: (bytes: Buffer) => void, onControl: (opcode: number, payload: Buffer) => void) {
    this.onData = onData;
    this.onControl = onControl;
  }

  push(chunk: Buffer): void {
    let pos = 0;
    const len = chunk.length;
    while (pos < len) {
      if (!this.#inFrame) {
        // Fast path: whole header available in this chunk.
        if (this.#headerHave === 0 && len - pos >= 2) {
          const b1 = chunk[pos + 1]!;
          const l7 = b1 & 0x7f;
          const need = 2 + (l7 === 126 ? 2 : l7 === 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
          if (len - pos >= need) {
            this.#startFrame(chunk, pos);
            pos += need;
            if (this.#remaining === 0) this.#endFrame();
            continue;
          }
        }
        // Slow path: gather the header byte by byte across chunks.
        this.#header[this.#headerHave++] = chunk[pos++]!;
        if (this.#headerHave === 2) {
          const b1 = this.#header[1]!;
          const l7 = b1 & 0x7f;
          this.#headerNeed = 2 + (l7 === 126 ? 2 : l7 === 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
        }
        if (this.#headerHave >= 2 && this.#headerHave === this.#headerNeed) {
          this.#startFrame(this.#header, 0);
          this.#headerHave = 0;
          this.#headerNeed = 2;
          if (this.#remaining === 0) this.#endFrame();
        }
        continue;
      }
      const take = Math.min(this.#remaining, len - pos);
      const part = pos === 0 && take === len ? chunk : chunk.subarray(pos, pos + take);
      pos += take;
      this.#remaining -= take;
      if (this.#inData) this.onData(part);
      else this.#control.push(part);
      if (this.#remaining === 0) this.#endFrame();
    }
  }

  #startFrame(buf: Buffer, at: number): void {
    const b0 = buf[at]!;
    const b1 = buf[at + 1]!;
    if (b1 & 0x80) throw new Error('websocket: masked frame from server');
    this.#opcode = b0 & 0x0f;
    const l7 = b1 & 0x7f;
    if (l7 === 126) this.#remaining = buf.readUInt16BE(at + 2);
    else if (l7 === 127) this.#remaining = buf.readUInt32BE(at + 2) * 2 ** 32 + buf.readUInt32BE(at + 6);
    else this.#remaining = l7;
    this.#inData = this.#opcode === OP_BINARY || this.#opcode === OP_CONT || this.#opcode === 0x1;
    this.#inFrame = true;
    this.frames++;
  }

  #endFrame(): void {
    this.#inFrame = false;
    if (!this.#inData) {
      const payload = this.#control.length === 1 ? this.#control[0]! : Buffer.concat(this.#control);
      this.#control = [];
      this.onControl(this.#opcode, payload);
    }
  }
}
