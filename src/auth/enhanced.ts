/**
 * Enhanced authentication (MQTT 5.0 section 4.12): the contract between the connection's AUTH
 * exchange and an authentication method.
 *
 * One `EnhancedAuthenticator` per Authentication Method name. Each authentication (at CONNECT,
 * or a re-authentication started by AUTH 0x19) opens a fresh `AuthExchange`; the connection
 * feeds it the Authentication Data of CONNECT (or of the AUTH 0x19), then of each AUTH 0x18,
 * until it answers success or failure:
 *
 *   CONNECT(method, data) → start(data) → continue: AUTH 0x18(data) ⇄ client AUTH 0x18(data) → continue(data)
 *                                       → success: CONNACK 0x00 (or AUTH 0x00 when re-authenticating)
 *                                       → fail:    CONNACK with the code (or DISCONNECT) and close
 *
 * Steps may be returned synchronously or as promises (a credential store may be remote). An
 * exchange is used by one connection, one step at a time.
 *
 * Types only: methods (scram.ts) implement them, authenticators.ts picks the ones the
 * configuration enables.
 */
import type { ErrorCode } from '../errors.ts';

export type AuthStep =
  /** More data is needed: send it to the client in AUTH 0x18. */
  | { outcome: 'continue'; data?: Buffer }
  /** Authenticated; `data` goes in the CONNACK (or AUTH 0x00); `username` names the principal. */
  | { outcome: 'success'; data?: Buffer; username?: string }
  /** Refused with this catalogue code; `detail` is logged (and sent as Reason String). */
  | { outcome: 'fail'; code: ErrorCode; detail: string };

export interface AuthExchange {
  /** The client's first Authentication Data (absent when CONNECT or AUTH 0x19 carried none). */
  start(data: Buffer | undefined): AuthStep | Promise<AuthStep>;
  /** Authentication Data of the client's next AUTH 0x18. */
  continue(data: Buffer | undefined): AuthStep | Promise<AuthStep>;
}

export interface EnhancedAuthenticator {
  /** The Authentication Method name clients put in CONNECT, e.g. "SCRAM-SHA-256". */
  readonly method: string;
  /** A new exchange for one authentication of `clientId`. */
  begin(clientId: string): AuthExchange;
}
