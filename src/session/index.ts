/**
 * session/: one client's side of the broker. Owns the Connection (connection-io.ts: bytes in
 * and out, cork/flush, backpressure, commit-waiting acks; connection.ts: states, timers,
 * accept/refuse/disconnect/release), the dispatcher and one handler per packet, the Session
 * (subscriptions, in-flight window, bounded queue, QoS 2 ids, will and expiry clocks, its
 * persistent mirror), the publish gate every client PUBLISH goes through, and the process-wide
 * CONNECT admission (connection-guard.ts: overload, connection caps, client-id connect rate).
 * Promises: session/ imports nothing above it; what it needs of its broker is stated here as
 * interfaces (`SessionHost`, `BrokerPort`, `PublishHost`) that src/broker/ implements.
 * Acknowledgements leave in PUBLISH order and only after the commit of what they vouch for.
 */

export { type LimitsInForce, limitsInForce } from './broker-limits.ts';
export type { BrokerPort } from './broker-port.ts';
export { Connection } from './connection.ts';
export { ConnectionGuard, type GuardRefusal } from './connection-guard.ts';
export type { Admitted, ConnectionContext, Refused } from './handler-context.ts';
export {
  type BrokerStats,
  countCode,
  type LimitName,
  type LinkView,
  newBrokerStats,
  ROUTED_MATCHED,
  ROUTED_PENDING,
  ROUTED_WROTE,
  type Routed,
  type RoutedSession,
  type SessionGroup,
  type SessionHost,
  type Subscription,
} from './host.ts';
export { HOLD_OVERLOAD } from './input-holds.ts';
export { type HeldDelivery, MoveHold } from './move-hold.ts';
export { PublishGate } from './publish-gate.ts';
export { inputWork } from './read-budget.ts';
export { Session } from './session.ts';
export type { SessionView } from './session-outcomes.ts';
export { willOf } from './will.ts';
export { WriteBudget } from './write-budget.ts';
