/**
 * Persistence. Owns the embedded SQLite database (`<data-dir>/pubsub.db`, `node:sqlite`, WAL)
 * and its schema migrations, and the typed stores built on it: today the control plane
 * (accounts, namespaces, brokers, admin tokens); the durability issue adds sessions, queues
 * and retained messages behind one `Store` interface with memory and SQLite adapters.
 * Promise: a committed write survives a process crash; a damaged file is reported, never replaced.
 */
export {
  type AccountRecord,
  type ApiTokenRecord,
  type AuthType,
  type BrokerPatch,
  type BrokerRecord,
  ConflictError,
  ControlPlaneStore,
  type NamespaceRecord,
} from './control-plane-store.ts';
export { type BrokerKeyRecord, CredentialStore } from './credential-store.ts';
export { MIGRATIONS, openDatabase, StoreError, transaction } from './database.ts';
