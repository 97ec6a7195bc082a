/**
 * Incremental MQTT parser: bytes in, whole packets out.
 *
 * Invariants:
 * - `push` accepts chunks split at any byte boundary; a chunk may hold many packets.
 * - A packet wholly inside one chunk is decoded in place: its payload is a view of that chunk.
 *   Only a packet spanning chunks is copied, once: when its last byte arrives, or, after
 *   MAX_HELD_CHUNKS pieces, into one buffer of its length as each piece arrives, so what an
 *   incomplete packet holds is bounded by its length and not by how many reads delivered it.
 * - The remaining length is checked against the maximum packet size from the fixed header
 *   alone, so an oversized packet is refused (0x95) before its body is buffered; buffered bytes
 *   therefore never exceed the maximum packet size. The maximum may be changed between pushes
 *   (a server keeps it small until CONNECT is accepted, then raises it).
 * - An oversized CONNECT is refused once the first 7 bytes of its body are in, not before: they
 *   hold the protocol name and level, so the error says whether the client reads a v5 CONNACK
 *   (section 3.2.2.2, 0x95). Those few bytes are all that is held of it.
 * - The packet handler may yield (return `YIELD`) between packets: the push stops after that
 *   packet and keeps the rest of its input as a view, not a copy; `continue` resumes it later,
 *   in order. A push while input is still kept goes behind it (one copy: a caller that pauses
 *   its source while yielded never causes it).
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
import { NO_LIMITS, type PacketLimits } from './reader.ts';

export interface ParserOptions {
  /** Largest whole packet (fixed header included) accepted, in bytes. Default: the protocol maximum. */
  maximumPacketSize?: number;
  /** Protocol version of the peer when known up front (a client parsing the server's bytes). */
  protocolVersion?: ProtocolVersion;
  /** Bounds on what one packet carries, checked while decoding it (reader.ts). Default: none. */
  limits?: PacketLimits;
}

/** What a packet handler returns to stop between packets and keep the rest for `continue`. */
export const YIELD = 'yield';

/**
 * Called for each decoded packet. Returning false stops the current push after this packet and
 * drops the rest of its input (the connection closed); `YIELD` stops it and keeps the rest.
 */
// biome-ignore lint/suspicious/noConfusingVoidType: handlers that return nothing are the common case
export type PacketHandler = (packet: Packet) => boolean | typeof YIELD | void;

const MAX_TOTAL = 268_435_455 + 5;

/** Pieces of an incomplete packet held as views before they are gathered into one buffer. */
const MAX_HELD_CHUNKS = 8;

/** Body bytes of a CONNECT up to its protocol level: name length (2), "MQTT" (4), level (1). */
const CONNECT_LEVEL_END = 7;

export class Parser {
  #version: ProtocolVersion;
  #maximumPacketSize: number;
  #chunks: Buffer[] = [];
  /** The packet being assembled, once it spans MAX_HELD_CHUNKS pieces (see #hold). */
  #assembly: Buffer | undefined;
  #buffered = 0;
  /** Total bytes of the packet being assembled, once its fixed header is known; else 0. */
  #needed = 0;
  /** Fixed header length of the packet #packetLength last measured. */
  #headerLength = 0;
  /**
   * Set by #packetLength when the packet it measured is a CONNECT over the maximum: its total
   * length. The length returned is then only up to the protocol level, read before refusing.
   */
  #oversizedConnect = 0;
  #error: ProtocolError | null = null;
  /** Input left by a handler's YIELD, from the packet after it on (maybe empty); undefined if none. */
  #rest: Buffer | undefined;
  readonly #limits: PacketLimits;

  constructor(options: ParserOptions = {}) {
    this.#version = options.protocolVersion ?? 4;
    this.#maximumPacketSize = options.maximumPacketSize ?? MAX_TOTAL;
    this.#limits = options.limits ?? NO_LIMITS;
  }

  get protocolVersion(): ProtocolVersion {
    return this.#version;
  }

  set protocolVersion(v: ProtocolVersion) {
    this.#version = v;
  }

  /** Largest whole packet accepted; applies from the next packet whose fixed header is read. */
  get maximumPacketSize(): number {
    return this.#maximumPacketSize;
  }

  set maximumPacketSize(n: number) {
    this.#maximumPacketSize = n;
  }

  /** Bytes held: of a packet waiting for the rest of it, and input kept by a YIELD. */
  get bufferedBytes(): number {
    return this.#buffered + (this.#rest?.length ?? 0);
  }

  /** The handler yielded and `continue` has not yet taken up what followed. */
  get yielded(): boolean {
    return this.#rest !== undefined;
  }

  push(chunk: Buffer, onPacket: PacketHandler): ProtocolError | null {
    if (this.#error !== null) return this.#error;
    try {
      let input = chunk;
      if (this.#rest !== undefined) {
        input = this.#rest.length === 0 ? chunk : Buffer.concat([this.#rest, chunk]);
        this.#rest = undefined;
      }
      const rest = this.#buffered > 0 ? this.#finishSpanning(input, onPacket) : input;
      if (rest !== null) this.#drain(rest, onPacket);
    } catch (err) {
      return this.#fail(err);
    }
    return null;
  }

  /** Resumes the input a handler's YIELD kept, as `push` would have gone on; a no-op without one. */
  continue(onPacket: PacketHandler): ProtocolError | null {
    if (this.#error !== null) return this.#error;
    const rest = this.#rest;
    if (rest === undefined) return null;
    this.#rest = undefined;
    try {
      this.#drain(rest, onPacket);
    } catch (err) {
      return this.#fail(err);
    }
    return null;
  }

  /** The parser is dead after malformed input (see the header). */
  #fail(err: unknown): ProtocolError {
    // Decoders throw only ProtocolError; anything else is the packet handler's own failure.
    if (!(err instanceof ProtocolError)) throw err;
    this.#reset();
    this.#rest = undefined;
    this.#oversizedConnect = 0;
    this.#error = err;
    return err;
  }

  /**
   * Adds a chunk to the packet being assembled. Once that packet is whole it is decoded from one
   * copy of just its own bytes, and the rest of the chunk is returned (a view, for #drain).
   * Returns null while the packet is still incomplete, or when the handler asked to stop or
   * yielded (then the rest of the chunk is kept).
   */
  #finishSpanning(chunk: Buffer, onPacket: PacketHandler): Buffer | null {
    if (this.#needed === 0) {
      // The fixed header itself is split: at most 4 bytes are held, and 5 more complete it.
      const head = Buffer.concat([...this.#chunks, chunk.subarray(0, 5)]);
      this.#needed = this.#packetLength(head, 0);
    }
    const missing = this.#needed - this.#buffered;
    if (this.#needed === 0 || chunk.length < missing) {
      this.#hold(chunk);
      return null;
    }
    let packet: Buffer;
    if (this.#assembly !== undefined) {
      chunk.copy(this.#assembly, this.#buffered, 0, missing);
      packet = this.#assembly;
    } else {
      this.#chunks.push(chunk.subarray(0, missing));
      packet = Buffer.concat(this.#chunks, this.#needed);
    }
    this.#reset();
    if (this.#drain(packet, onPacket)) return chunk.subarray(missing);
    if (this.#rest !== undefined) this.#rest = chunk.subarray(missing);
    return null;
  }

  /**
   * Holds one more piece of an incomplete packet. Pieces are views until there are
   * MAX_HELD_CHUNKS of them; then (the packet's length being known) they move into one buffer of
   * that length, which takes every later piece: a packet trickled in one byte per read costs its
   * length, not a Buffer and a socket read per byte. Each byte is still copied once.
   */
  #hold(chunk: Buffer): void {
    if (this.#assembly !== undefined) {
      chunk.copy(this.#assembly, this.#buffered);
    } else {
      this.#chunks.push(chunk);
      if (this.#needed > 0 && this.#chunks.length >= MAX_HELD_CHUNKS) {
        this.#assembly = Buffer.allocUnsafe(this.#needed);
        let at = 0;
        for (const piece of this.#chunks) at += piece.copy(this.#assembly, at);
        this.#chunks = [];
      }
    }
    this.#buffered += chunk.length;
  }

  #reset(): void {
    this.#chunks = [];
    this.#assembly = undefined;
    this.#buffered = 0;
    this.#needed = 0;
  }

  /**
   * Total length of the packet starting at pos, read from its fixed header (type/flags byte, then
   * the remaining length in 1..4 bytes [MQTT-1.5.5]), and its header length in #headerLength.
   * Returns 0 while the header is incomplete; refuses an oversized packet from the header alone,
   * except a CONNECT, measured up to its protocol level (#oversizedConnect).
   */
  #packetLength(buf: Buffer, pos: number): number {
    const avail = buf.length - pos;
    let remaining = 0;
    let multiplier = 1;
    for (let i = 1; i <= 4 && i < avail; i++) {
      const b = buf[pos + i]!;
      remaining += (b & 0x7f) * multiplier;
      if ((b & 0x80) === 0) {
        const total = i + 1 + remaining;
        this.#headerLength = i + 1;
        if (total <= this.#maximumPacketSize) {
          this.#oversizedConnect = 0;
          return total;
        }
        const probe = i + 1 + CONNECT_LEVEL_END;
        if (buf[pos] === 0x10 && probe <= this.#maximumPacketSize) {
          this.#oversizedConnect = total;
          return probe;
        }
        throw new ProtocolError(0x95, `packet of ${total} bytes exceeds maximum ${this.#maximumPacketSize}`);
      }
      multiplier *= 128;
    }
    if (avail > 4) throw malformed('remaining length longer than 4 bytes'); // [MQTT-1.5.5]
    return 0;
  }

  /**
   * Decodes every whole packet in buf in place and holds a trailing partial one.
   * Returns false when the handler asked to stop (the rest of buf is then dropped) or yielded
   * (the rest is kept in #rest).
   */
  #drain(buf: Buffer, onPacket: PacketHandler): boolean {
    let pos = 0;
    while (pos < buf.length) {
      const total = this.#packetLength(buf, pos);
      if (total === 0 || buf.length - pos < total) {
        this.#needed = total;
        this.#chunks.push(buf.subarray(pos));
        this.#buffered = buf.length - pos;
        return true;
      }
      if (this.#oversizedConnect !== 0) throw this.#connectTooLarge(buf, pos + this.#headerLength);
      const packet = decodePacket(
        buf[pos]!,
        buf,
        pos + this.#headerLength,
        pos + total,
        this.#version,
        this.#limits,
      );
      pos += total;
      if (packet.type === 'connect') this.#version = packet.protocolVersion;
      const verdict = onPacket(packet);
      if (verdict === false) return false;
      if (verdict === YIELD) {
        this.#rest = buf.subarray(pos);
        return false;
      }
    }
    return true;
  }

  /**
   * The refusal of an oversized CONNECT, whose body starts at `start` with at least its protocol
   * name and level. It names CONNACK version 5 only for a v5 client, which has a code for it
   * (0x95, section 3.2.2.2); a v3.1/3.1.1 CONNACK has none, so those clients get no CONNACK
   * [MQTT-3.2.2-6] (3.1.1), nor do bytes not known to be MQTT. The connection is closed either
   * way [MQTT-4.13.2-1].
   */
  #connectTooLarge(buf: Buffer, start: number): ProtocolError {
    const v5 =
      buf.readUInt16BE(start) === 4 &&
      buf.toString('latin1', start + 2, start + 6) === 'MQTT' &&
      buf[start + 6] === 5;
    return new ProtocolError(
      0x95,
      `CONNECT of ${this.#oversizedConnect} bytes exceeds maximum ${this.#maximumPacketSize}`,
      v5 ? 5 : undefined,
    );
  }
}
