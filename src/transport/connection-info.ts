/**
 * What a listener knows about one accepted connection, handed up with its Duplex. The lowest
 * file of transport/: it imports nothing, so session/ and tenancy/ read it without depending
 * on any listener, and no listener depends on them.
 */

/** The kind of listener a connection came through ('memory': an in-process duplex, tests). */
export type TransportKind = 'tcp' | 'tls' | 'ws' | 'wss' | 'memory';

export interface ConnectionInfo {
  transport: TransportKind;
  /** The client's address: from the socket, or from a trusted proxy (PROXY header, X-Forwarded-For). */
  remoteAddress: string;
  remotePort: number;
  /** TLS Server Name Indication sent by the client (tls, wss); routes to a tenant. */
  servername?: string;
  /** The HTTP Host header of the WebSocket upgrade (ws, wss), without the port; routes to a tenant. */
  host?: string;
  /** The client certificate verified against the listener's CA (mutual TLS), for authentication. */
  clientCertificate?: { subjectCN: string; fingerprint256: string };
  /**
   * The transport's own bound on input it buffers before the parser sees it, raised with the
   * parser's when CONNECT is accepted (WebSocket: ws holds a whole frame first).
   */
  raiseInputLimit?: (maximumPacketSize: number) => void;
}
