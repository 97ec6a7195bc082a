/**
 * Incremental MQTT parser: bytes in, whole packets out.
 *
 * Invariants:
 * - `push` accepts chunks split at any byte boundary; a chunk may hold many packets.
 * - A packet wholly inside one chunk is decoded in place: its payload is a view of that chunk.
 *   Only a packet spanning chunks is copied, once, when its last byte arrives.
 * - The remaining length is checked against the maximum packet size from the fixed header
 *   alone, so an oversized packet is refused (0x95) before its body is buffered; buffered bytes
 *   therefore never exceed the maximum packet size.
 * - Malformed input is returned as a ProtocolError, never thrown. After one the parser is dead:
 *   every later push returns the same error. (An exception thrown by the packet handler itself
 *   propagates to the caller unchanged.)
 * - The protocol version is fixed by the first CONNECT decoded (server side) or by the caller
 *   (client side); v5-only fields are read only for version 5.
 */
import type { ProtocolVersion } from './constants.ts';
import { decodePacket } from './decode.ts';
import type { Packet } from './packets.ts';
import { malformed, ProtocolError } from './protocol-error.ts';

export interface ParserOptions {
  /** Largest whole packet (fixed header included) accepted, in bytes. Default: the protocol maximum. */
  maximumPacketSize?: number;
  /** Protocol version of the peer when known up front (a client parsing the server's bytes). */
  protocolVersion?: ProtocolVersion;
}

/** Called for each decoded packet; returning false stops the current push after this packet. */
// biome-ignore lint/suspicious/noConfusingVoidType: handlers that return nothing are the common case
export type PacketHandler = (packet: Packet) => boolean | void;

const MAX_TOTAL = 268_435_455 + 5;

export class Parser {
  #version: ProtocolVersion;
  #maximumPacketSize: number;
  #chunks: Buffer[] = [];
  #buffered = 0;
  /** Total bytes of the packet being assembled, once its fixed header is known; else 0. */
  #needed = 0;
  #error: ProtocolError | null = null;

  constructor(options: ParserOptions = {}) {
    this.#version = options.protocolVersion ?? 4;
    this.#maximumPacketSize = options.maximumPacketSize ?? MAX_TOTAL;
  }

  get protocolVersion(): ProtocolVersion {
    return this.#version;
  }

  set protocolVersion(v: ProtocolVersion) {
    this.#version = v;
  }

  set maximumPacketSize(n: number) {
    this.#maximumPacketSize = n;
  }

  /** Bytes held while waiting for the rest of a packet. */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  push(chunk: Buffer, onPacket: PacketHandler): ProtocolError | null {
    if (this.#error !== null) return this.#error;
    let buf: Buffer;
    if (this.#buffered === 0) {
      buf = chunk;
    } else {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
      if (this.#buffered < this.#needed) return null;
      buf = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#buffered);
      this.#chunks = [];
      this.#buffered = 0;
    }
    this.#needed = 0;
    try {
      this.#drain(buf, onPacket);
    } catch (err) {
      // Decoders throw only ProtocolError; anything else is the packet handler's own failure.
      if (!(err instanceof ProtocolError)) throw err;
      this.#chunks = [];
      this.#buffered = 0;
      this.#error = err;
      return err;
    }
    return null;
  }

  #drain(buf: Buffer, onPacket: PacketHandler): void {
    const len = buf.length;
    let pos = 0;
    while (pos < len) {
      const avail = len - pos;
      if (avail < 2) break;
      // Fixed header: type/flags byte, then the remaining length (1..4 bytes) [MQTT-1.5.5].
      let remaining = 0;
      let multiplier = 1;
      let i = 1;
      let complete = false;
      for (; i <= 4 && i < avail; i++) {
        const b = buf[pos + i]!;
        remaining += (b & 0x7f) * multiplier;
        multiplier *= 128;
        if ((b & 0x80) === 0) {
          complete = true;
          break;
        }
      }
      if (!complete) {
        if (i > 4) throw malformed('remaining length longer than 4 bytes'); // [MQTT-1.5.5]
        break; // header itself incomplete
      }
      const headerLength = i + 1;
      const total = headerLength + remaining;
      if (total > this.#maximumPacketSize) {
        throw new ProtocolError(0x95, `packet of ${total} bytes exceeds maximum ${this.#maximumPacketSize}`);
      }
      if (avail < total) {
        this.#needed = total;
        break;
      }
      const packet = decodePacket(buf[pos]!, buf, pos + headerLength, pos + total, this.#version);
      pos += total;
      if (packet.type === 'connect') this.#version = packet.protocolVersion;
      if (onPacket(packet) === false) {
        pos = len;
        break;
      }
    }
    if (pos < len) {
      this.#chunks.push(buf.subarray(pos));
      this.#buffered = len - pos;
    }
  }
}
