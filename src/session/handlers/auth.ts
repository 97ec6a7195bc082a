/**
 * AUTH and the enhanced authentication exchange (section 4.12), at CONNECT and for
 * re-authentication once connected.
 *
 * - A client that named no Authentication Method in CONNECT must not send AUTH [MQTT-4.12.0-7].
 * - Every AUTH either way carries the CONNECT's method [MQTT-4.12.0-5], [MQTT-4.12.1-1].
 * - The client continues with 0x18 only when we asked (our AUTH 0x18) [MQTT-4.12.0-3]; it
 *   re-authenticates with 0x19 after CONNACK, one exchange at a time; anything else is a
 *   protocol error.
 * - A failed authentication before CONNACK is a CONNACK with the code [MQTT-4.12.0-4]; a failed
 *   re-authentication is a DISCONNECT [MQTT-4.12.1-2]. Either way the connection closes.
 */
import { type AuthExchange, type AuthStep, isAuthFailure } from '../../auth/index.ts';
import { type ErrorCode, reasonCodeOf } from '../../errors.ts';
import { type AuthPacket, ReasonCode, ValidReasonCodes } from '../../protocol/index.ts';
import type { PacketContext, PendingAuth } from '../handler-context.ts';
import { countCode } from '../host.ts';

const CONTINUE = ReasonCode.ContinueAuthentication;
const REAUTHENTICATE = ReasonCode.ReAuthenticate;

/** Starts an exchange with the client's first Authentication Data. */
export function beginAuth(
  conn: PacketContext,
  method: string,
  exchange: AuthExchange,
  data: Buffer | undefined,
  onSuccess: (data: Buffer | undefined) => void,
): void {
  const auth: PendingAuth = { method, exchange, busy: false, onSuccess };
  conn.auth = auth;
  runStep(conn, auth, () => exchange.start(data));
}

export function handleAuth(conn: PacketContext, packet: AuthPacket): void {
  if (conn.authMethod === undefined) {
    return conn.disconnect('PROTOCOL_ERROR', 'AUTH without an authentication method in CONNECT'); // [MQTT-4.12.0-7]
  }
  const method = packet.properties?.authenticationMethod;
  if (method !== conn.authMethod) {
    return conn.disconnect('PROTOCOL_ERROR', 'AUTH with an authentication method other than CONNECT’s'); // [MQTT-4.12.0-5], [MQTT-4.12.1-1]
  }
  const data = packet.properties?.authenticationData;
  const auth = conn.auth;
  if (packet.reasonCode === CONTINUE) {
    if (auth === undefined || auth.busy) {
      return conn.disconnect('PROTOCOL_ERROR', 'AUTH 0x18 when no authentication step awaited it'); // [MQTT-4.12.0-3]
    }
    runStep(conn, auth, () => auth.exchange.continue(data));
    return;
  }
  if (packet.reasonCode === REAUTHENTICATE && conn.state === 'connected' && auth === undefined) {
    const authenticator = conn.broker!.authenticators.get(method);
    if (authenticator === undefined) {
      return conn.disconnect('NOT_AUTHORIZED', `authentication method ${method} no longer offered`);
    }
    beginAuth(conn, method, authenticator.begin(conn.clientId), data, (finalData) => {
      const ok: AuthPacket = { type: 'auth', reasonCode: 0, properties: { authenticationMethod: method } };
      if (finalData !== undefined) ok.properties!.authenticationData = finalData;
      conn.send(ok);
      conn.log.info({ authMethod: method }, 'client re-authenticated');
    });
    return;
  }
  conn.disconnect('PROTOCOL_ERROR', `AUTH reason 0x${packet.reasonCode.toString(16)} out of place`); // section 4.12.1
}

function runStep(conn: PacketContext, auth: PendingAuth, step: () => AuthStep | Promise<AuthStep>): void {
  let result: AuthStep | Promise<AuthStep>;
  try {
    result = step();
  } catch (err) {
    conn.log.error({ err, authMethod: auth.method }, 'authenticator failed');
    result = { outcome: 'fail', code: 'IMPLEMENTATION_ERROR', detail: 'authenticator failed' };
  }
  if (!(result instanceof Promise)) {
    apply(conn, auth, result);
    return;
  }
  auth.busy = true;
  result.then(
    (r) => {
      auth.busy = false;
      if (conn.auth === auth && !conn.closed) apply(conn, auth, r);
    },
    (err: unknown) => {
      auth.busy = false;
      conn.log.error({ err, authMethod: auth.method }, 'authenticator failed');
      if (conn.auth === auth && !conn.closed) {
        apply(conn, auth, { outcome: 'fail', code: 'IMPLEMENTATION_ERROR', detail: 'authenticator failed' });
      }
    },
  );
}

function apply(conn: PacketContext, auth: PendingAuth, step: AuthStep): void {
  if (step.outcome === 'continue') {
    const packet: AuthPacket = {
      type: 'auth',
      reasonCode: CONTINUE, // [MQTT-4.12.0-2]
      properties: { authenticationMethod: auth.method },
    };
    if (step.data !== undefined) packet.properties!.authenticationData = step.data;
    conn.send(packet);
    return;
  }
  conn.auth = undefined;
  if (step.outcome === 'success') {
    if (step.username !== undefined) conn.username = step.username;
    auth.onSuccess(step.data);
    return;
  }
  countCode(conn.stats!.authFailures, step.code);
  // A wrong SCRAM proof counts against the source address as a wrong password would at
  // admission (brute-force limiter), and is answered after the same delay.
  const delayMs = isAuthFailure(step.code)
    ? conn.ctx.authFailures.recordFailure(conn.info.remoteAddress, 'mqtt').delayMs
    : 0;
  if (conn.state === 'authenticating') {
    conn.refuse(step.code, step.detail, delayMs); // [MQTT-4.12.0-4]
    return;
  }
  conn.disconnect(disconnectable(step.code), step.detail); // [MQTT-4.12.1-2]
}

/** A DISCONNECT cannot carry every CONNACK code (0x86 for one): those become Not authorized. */
function disconnectable(code: ErrorCode): ErrorCode {
  return ValidReasonCodes.disconnect!.has(reasonCodeOf(code)) ? code : 'NOT_AUTHORIZED';
}
