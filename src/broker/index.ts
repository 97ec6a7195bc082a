/**
 * broker/: the tenant object. Owns, per broker, the subscription index, the retained store, the
 * sessions by client id, the counters and the publish gate; reloads retained messages and
 * persistent sessions from the message store at construction.
 * Promises: `publish` is the single entry for every message (sockets through the gate, wills,
 * hooks, in-process publishers) and tells whether it wrote to the store; sessions see the broker
 * only through the interfaces session/ states (`SessionHost`, `BrokerPort`), so nothing below
 * this folder imports it; a closed broker routes and stores nothing more. Each broker's $SYS
 * tree (sys-tree.ts) reads its figures only, retained apart from the tenant's messages.
 */
export { Broker, hashString } from './broker.ts';
export type { BrokerBus, FetchedSession } from './bus.ts';
export { InputShedding } from './input-shedding.ts';
export { discard as discardRestoredSession } from './session-moves.ts';
export type { SessionRelay } from './session-relay.ts';
export { SysTicker } from './sys-tree.ts';
