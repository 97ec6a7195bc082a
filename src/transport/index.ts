/**
 * transport/: listeners. Each accepts connections of one kind (tcp now; tls, ws, wss and the
 * PROXY protocol later) and hands the server a Duplex plus ConnectionInfo; nothing above this
 * folder knows which transport a connection came over.
 */
export { type Accept, type Listener, listenTcp } from './tcp.ts';
