/**
 * transport/: listeners. Each accepts connections of one kind (tcp and ws now; tls, wss and
 * the PROXY protocol later) and hands the server a Duplex plus ConnectionInfo; nothing above this
 * folder knows which transport a connection came over.
 */
export { type Accept, type Listener, listenTcp } from './tcp.ts';
export { listenWebSocket } from './ws.ts';
