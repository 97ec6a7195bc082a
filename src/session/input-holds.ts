/**
 * Why a connection's input is not being read: each reason holds reading on its own, and
 * reading resumes only when none holds it. Reasons are bits of one number so a connection
 * pays one field for all of them.
 *
 * Invariants:
 * - The socket is paused exactly while some hold is set (`holdInput`/`releaseInput` in
 *   connection-io.ts are the only writers).
 * - Keep alive does not count a held connection's silence against it: the server chose not to
 *   read, so the client's PINGREQs are simply not read yet.
 */

/** An on-publish hook has too many of this client's messages pending (hooks/pipeline.ts). */
export const HOLD_HOOK = 1;
/** This connection used its share of the current event-loop turn; reading goes on next turn. */
export const HOLD_TURN = 2;
/** The client or its broker is over an inbound rate; reading goes on when the budget refills. */
export const HOLD_RATE = 4;
/** The process is over its memory or event-loop lag bound and this connection's broker is shed. */
export const HOLD_OVERLOAD = 8;

/**
 * A message of this client waits in its broker's split fan-out (src/broker/fan-out.ts); reading
 * goes on once the broker's fan-out queue is empty, so a flood cannot grow that queue unbounded.
 */
export const HOLD_FANOUT = 16;

/**
 * CONNECT waits for another cluster node to hand the client's session over
 * (src/cluster/session-handover.ts); what the client sent behind it is read once it is opened.
 */
export const HOLD_SESSION = 32;

/** One of the reasons above. */
export type InputHold =
  | typeof HOLD_HOOK
  | typeof HOLD_TURN
  | typeof HOLD_RATE
  | typeof HOLD_OVERLOAD
  | typeof HOLD_FANOUT
  | typeof HOLD_SESSION;
