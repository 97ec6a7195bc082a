/**
 * Cursor over one packet's bytes [pos, end). Every read checks the bound and throws a
 * ProtocolError (malformed, 0x81) when the packet is shorter than its contents claim; the
 * parser catches it at its boundary. Binary reads return views (subarray), not copies.
 */
import { malformed, type ProtocolError } from './protocol-error.ts';
import { isValidMqttUtf8 } from './utf8.ts';

/**
 * Bounds on what one packet may carry, checked while it is decoded (never in a second pass), so
 * a packet over one is refused before the rest of it is built. Each is `Infinity` when unset.
 */
export interface PacketLimits {
  /** User Property pairs in one property block. */
  readonly maxUserProperties: number;
  /** Bytes of one property block (its contents, after the length). */
  readonly maxPropertiesBytes: number;
  /** Encoded bytes of a CONNECT's will: properties, topic and payload with their length prefixes. */
  readonly maxWillBytes: number;
  /** Topic filters in one SUBSCRIBE. */
  readonly maxFiltersPerSubscribe: number;
}

export const NO_LIMITS: PacketLimits = {
  maxUserProperties: Number.POSITIVE_INFINITY,
  maxPropertiesBytes: Number.POSITIVE_INFINITY,
  maxWillBytes: Number.POSITIVE_INFINITY,
  maxFiltersPerSubscribe: Number.POSITIVE_INFINITY,
};

export class Reader {
  buf: Buffer;
  pos: number;
  end: number;
  readonly limits: PacketLimits;
  /**
   * Set by a decoder that must finish the packet despite a bound (a CONNECT, refused only once
   * its broker is known): an over-bound property block is then skipped, not built, and the
   * first bound exceeded is kept in `overLimit` instead of thrown.
   */
  deferLimits = false;
  overLimit: ProtocolError | undefined;

  constructor(buf: Buffer, pos: number, end: number, limits: PacketLimits = NO_LIMITS) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
    this.limits = limits;
  }

  remaining(): number {
    return this.end - this.pos;
  }

  #need(n: number, what: string): void {
    if (this.pos + n > this.end) throw malformed(`packet too short for ${what}`);
  }

  u8(what = 'byte'): number {
    this.#need(1, what);
    return this.buf[this.pos++]!;
  }

  u16(what = 'two byte integer'): number {
    this.#need(2, what);
    const v = (this.buf[this.pos]! << 8) | this.buf[this.pos + 1]!;
    this.pos += 2;
    return v;
  }

  u32(what = 'four byte integer'): number {
    this.#need(4, what);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** Variable Byte Integer: at most 4 bytes [MQTT-1.5.5-1]. */
  varint(what = 'variable byte integer'): number {
    let value = 0;
    let multiplier = 1;
    for (let i = 0; i < 4; i++) {
      this.#need(1, what);
      const b = this.buf[this.pos++]!;
      value += (b & 0x7f) * multiplier;
      if ((b & 0x80) === 0) return value;
      multiplier *= 128;
    }
    throw malformed(`${what} longer than 4 bytes`);
  }

  /** UTF-8 Encoded String [MQTT-1.5.4]: 2-byte length, well-formed, no U+0000. */
  utf8(what = 'string'): string {
    const len = this.u16(what);
    this.#need(len, what);
    const start = this.pos;
    this.pos += len;
    if (!isValidMqttUtf8(this.buf, start, this.pos)) throw malformed(`${what} is not valid UTF-8`);
    return this.buf.toString('utf8', start, this.pos);
  }

  /** Binary Data [MQTT-1.5.6]: 2-byte length then bytes, returned as a view. */
  binary(what = 'binary data'): Buffer {
    const len = this.u16(what);
    this.#need(len, what);
    const start = this.pos;
    this.pos += len;
    return this.buf.subarray(start, this.pos);
  }

  /** The rest of the packet as a view (PUBLISH payload). */
  rest(): Buffer {
    const view = this.buf.subarray(this.pos, this.end);
    this.pos = this.end;
    return view;
  }
}
