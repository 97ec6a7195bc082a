/**
 * The one error type the codec produces. It carries the MQTT 5.0 reason code the receiver
 * must use (0x81 malformed, 0x82 protocol error, 0x95 packet too large, ...) and, for the
 * CONNECT refusals that need an answer in a specific protocol version, that version.
 * The parser returns these; it never throws them past its own boundary.
 */
export class ProtocolError extends Error {
  readonly reasonCode: number;
  /**
   * For a CONNECT refused with a CONNACK (an unsupported protocol level; an oversized CONNECT of
   * a v5 client): the version whose CONNACK format the answer uses. Undefined: close, no CONNACK.
   */
  readonly connackVersion: 4 | 5 | undefined;

  constructor(reasonCode: number, message: string, connackVersion?: 4 | 5) {
    super(message);
    this.name = 'ProtocolError';
    this.reasonCode = reasonCode;
    this.connackVersion = connackVersion;
  }
}

export const malformed = (message: string): ProtocolError => new ProtocolError(0x81, message);
export const protocolError = (message: string): ProtocolError => new ProtocolError(0x82, message);
