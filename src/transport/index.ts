/**
 * transport/: listeners. Each accepts connections of one kind (tcp, tls, ws, wss; tcp and tls
 * optionally behind the PROXY protocol) and hands the server a Duplex plus ConnectionInfo;
 * nothing above this folder knows which transport a connection came over.
 *
 * Layer: below session/ and tenancy/. Listeners hand connections up through the `Accept`
 * callback the server gives them and import nothing above config.ts; the connection they feed
 * is built by the server (src/server.ts), so transport/ never imports session/.
 */
export type { ConnectionInfo, TransportKind } from './connection-info.ts';
export { ensureDevelopmentCertificate } from './self-signed.ts';
export { type Accept, type Listener, listenTcp } from './tcp.ts';
export { listenTls } from './tls.ts';
export { TlsContext } from './tls-context.ts';
export { listenWebSocket } from './ws.ts';
