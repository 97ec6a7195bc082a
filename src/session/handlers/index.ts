/**
 * session/handlers/: one file per packet a client sends, each a short pipeline of named steps
 * (validate → authorize → act → answer). Handlers see their connection only as a
 * `PacketContext` (../handler-context.ts), never the Connection class, so nothing here imports
 * the connection back; the dispatcher (../dispatcher.ts) is the only caller and the only place
 * that enforces CONNECT first and packet direction.
 */
export { handleAuth } from './auth.ts';
export { handleConnect } from './connect.ts';
export { handleDisconnect } from './disconnect.ts';
export { handlePuback, handlePubcomp, handlePubrec } from './outbound-acks.ts';
export { handlePingreq } from './pingreq.ts';
export { handlePublish } from './publish.ts';
export { handlePubrel } from './pubrel.ts';
export { handleSubscribe } from './subscribe.ts';
export { handleUnsubscribe } from './unsubscribe.ts';
