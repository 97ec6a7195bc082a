/**
 * The one error type the codec produces. It carries the MQTT 5.0 reason code the receiver
 * must use (0x81 malformed, 0x82 protocol error, 0x95 packet too large, ...) and, for the
 * CONNECT refusals that need an answer in a specific protocol version, that version.
 * The parser returns these; it never throws them past its own boundary.
 */
/** The decoder's per-packet bounds (ParserOptions.limits) a packet can exceed, by flag name. */
export type PacketLimit =
  | 'max_user_properties'
  | 'max_properties_bytes'
  | 'max_will_bytes'
  | 'max_filters_per_subscribe';

export class ProtocolError extends Error {
  readonly reasonCode: number;
  /** Set when the packet is well formed but over one of the configured bounds. */
  readonly limit: PacketLimit | undefined;
  /**
   * For a CONNECT refused with a CONNACK (an unsupported protocol level; an oversized CONNECT of
   * a v5 client): the version whose CONNACK format the answer uses. Undefined: close, no CONNACK.
   */
  readonly connackVersion: 4 | 5 | undefined;

  constructor(reasonCode: number, message: string, connackVersion?: 4 | 5, limit?: PacketLimit) {
    super(message);
    this.name = 'ProtocolError';
    this.reasonCode = reasonCode;
    this.connackVersion = connackVersion;
    this.limit = limit;
  }
}

export const malformed = (message: string): ProtocolError => new ProtocolError(0x81, message);
export const protocolError = (message: string): ProtocolError => new ProtocolError(0x82, message);

/**
 * A packet over a configured bound: 0x95 Packet too large (section 3.14.2.1: "the packet size is
 * greater than Maximum Packet Size"), except a SUBSCRIBE with too many filters, 0x97 Quota exceeded.
 */
export const overLimit = (limit: PacketLimit, message: string): ProtocolError =>
  new ProtocolError(limit === 'max_filters_per_subscribe' ? 0x97 : 0x95, message, undefined, limit);
