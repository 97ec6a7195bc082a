/**
 * Persistence. Owns the embedded SQLite database (`<data-dir>/pubsub.db`, `node:sqlite`, WAL)
 * and its schema migrations, and the typed stores built on it: the control plane (accounts,
 * namespaces, brokers, admin tokens), credentials (signing keys, revocations), hooks (deployed
 * functions, their state), and message state (retained messages, persistent sessions, queued
 * and in-flight messages) behind one `MessageStore` interface with memory and SQLite adapters
 * (sqlite-message-store.ts group-commits; sqlite-message-rows.ts is its SQL), both run by one
 * contract suite (test/store/message-store.contract.ts; in cluster mode the SQLite one wrapped
 * so that session writes also reach a journal beyond the node, journaled-message-store.ts), and the admin API's audit log
 * (audit-store.ts: append, list by account with filters, prune by age).
 * One server per data directory: `DataDirLock` (`<data-dir>/pubsub.lock`, taken over from a dead pid).
 * The node's name, kept in `<data-dir>/node-name` (node-name.ts).
 * Promise: a committed write survives a process crash; a damaged file is reported, never replaced.
 */
export { type AuditDetail, type AuditQuery, type AuditRecord, AuditStore } from './audit-store.ts';
export {
  BROKER_LIMIT_FIELDS,
  BROKER_LIMIT_OPTIONS,
  type BrokerLimitField,
  type BrokerLimits,
  type LimitChanges,
  mergeLimits,
  RATE_LIMIT_ACTIONS,
  type RateLimitAction,
} from './broker-limits.ts';
export {
  type AccountRecord,
  type ApiTokenRecord,
  type AuthType,
  type BrokerPatch,
  type BrokerRecord,
  ConflictError,
  ControlPlaneStore,
  type HookFailurePolicy,
  type NamespaceRecord,
  type TokenCondition,
} from './control-plane-store.ts';
export {
  CONTROL_TABLES,
  type ColumnValue,
  ControlRows,
  type ControlTable,
  type Row,
} from './control-rows.ts';
export { type BrokerKeyRecord, CredentialStore } from './credential-store.ts';
export { DataDirLock, DataDirLockedError, LOCK_FILE } from './data-dir-lock.ts';
export { ensureDataDir, MIGRATIONS, openDatabase, StoreError, transaction } from './database.ts';
export { type HookFunctionRecord, HookStore } from './hook-store.ts';
export {
  type CommitGate,
  JournaledMessageStore,
  type JournalOp,
  type SessionJournal,
} from './journaled-message-store.ts';
export { MemoryMessageStore } from './memory-message-store.ts';
export type {
  BrokerState,
  CommitCallback,
  MessageStore,
  OutboundState,
  StoredMessage,
  StoredOutbound,
  StoredSession,
  StoredSessionState,
  StoredSubscription,
  StoredWill,
} from './message-store.ts';
export { isNodeName, NODE_NAME_FILE, resolveNodeName } from './node-name.ts';
export { SqliteMessageStore } from './sqlite-message-store.ts';
export { type TenancyStores, tenancyStores } from './stores.ts';
