/**
 * Client events: what happened to a client, one structured log line per event, each with
 * `event` (below), `broker` (`<broker>.<namespace>`, when known), and from the connection's
 * logger `remote` (address:port), `transport` and `clientId`; docs/observability.md lists them.
 *
 *   client.connected           info  CONNACK 0 sent
 *   client.disconnected        info  a connection that served a session ended: `cause` client |
 *                                    server | network, the DISCONNECT `reason` code, `code` and
 *                                    `detail` when the server closed it
 *   client.subscribed          info  one line per SUBSCRIBE: filters and SUBACK reason codes
 *   client.unsubscribed        info  one line per UNSUBSCRIBE: filters and UNSUBACK reason codes
 *   client.session_taken_over  info  a CONNECT took over a connected client id (the old
 *                                    connection then logs client.disconnected, code SESSION_TAKEN_OVER)
 *   client.auth_failed         warn  CONNECT refused for its credentials or authorization
 *   client.connect_refused     warn  CONNECT refused for anything else
 *
 * Nothing here runs per message. Connects, disconnects, takeovers and refused connects share one
 * rate (`--client-log-rate`, the server's LogSampler): past it their lines are dropped, and the
 * next one logged carries `suppressed`, the count dropped since the last (auth_failed excepted:
 * an authentication failure is always logged). With `--client-events`, connects and disconnects are also
 * published by the broker itself (never through the on-publish hook) on
 * `$SYS/brokers/<broker>/clients/<clientId>/connected|disconnected`, QoS 0, not retained, with
 * an EMQX-style JSON payload; a client id that is not one valid topic level (holding `/`, `+`
 * or `#`) is logged but not published.
 */
import type { ErrorCode } from '../errors.ts';
import { withSuppressed } from '../observability/index.ts';
import { Message } from '../router/index.ts';
import type { BrokerPort } from './broker-port.ts';
import type { PacketContext } from './handler-context.ts';

/** Why a connection that served a session ended. */
export interface CloseCause {
  /** client: it sent DISCONNECT; server: the server closed it; network: the socket closed or ended without DISCONNECT. */
  by: 'client' | 'server' | 'network';
  /** The DISCONNECT's reason code (the client's, or the server's own). */
  reason?: number;
  /** The catalogue code the server closed it with. */
  code?: ErrorCode;
  detail?: string;
}

/** Refusals that are about who the client is or what it may do (`client.auth_failed`). */
const AUTH_FAILURES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'BAD_CREDENTIALS',
  'NOT_AUTHORIZED',
  'BAD_AUTHENTICATION_METHOD',
]);

/** Longest topic filter text a subscribe or unsubscribe line carries. */
const FILTER_LOG_CHARS = 256;

export function clientConnected(
  conn: PacketContext,
  broker: BrokerPort,
  details: {
    version: number;
    clean: boolean;
    keepalive: number;
    sessionPresent: boolean;
    sessionExpiry: number;
  },
): void {
  const dropped = conn.ctx.clientLog.take();
  if (dropped !== false)
    conn.log.info(
      withSuppressed(
        { event: 'client.connected', broker: broker.address, ...details, authMethod: conn.authMethod },
        dropped,
      ),
      'client connected',
    );
  if (broker.config.clientEvents) {
    const now = Date.now();
    publishEvent(broker, conn.clientId, 'connected', {
      clientid: conn.clientId,
      ipaddress: conn.info.remoteAddress,
      transport: conn.info.transport,
      proto_name: details.version === 3 ? 'MQIsdp' : 'MQTT',
      proto_ver: details.version,
      keepalive: details.keepalive,
      clean_start: details.clean,
      expiry_interval: details.sessionExpiry,
      connected_at: now,
      ts: now,
    });
  }
}

export function clientDisconnected(
  conn: PacketContext,
  broker: BrokerPort,
  cause: CloseCause,
  sessionKept: boolean,
): void {
  const dropped = conn.ctx.clientLog.take();
  if (dropped !== false)
    conn.log.info(
      withSuppressed(
        {
          event: 'client.disconnected',
          broker: broker.address,
          cause: cause.by,
          ...causeFields(cause),
          sessionKept,
        },
        dropped,
      ),
      'client disconnected',
    );
  // At shutdown every client is leaving: nobody is left to tell.
  if (broker.config.clientEvents && !conn.ctx.shuttingDown) {
    const now = Date.now();
    publishEvent(broker, conn.clientId, 'disconnected', {
      clientid: conn.clientId,
      ipaddress: conn.info.remoteAddress,
      transport: conn.info.transport,
      proto_ver: conn.version,
      reason: reasonName(cause),
      reason_code: cause.reason,
      disconnected_at: now,
      ts: now,
    });
  }
}

export function clientSubscribed(
  conn: PacketContext,
  subscriptions: readonly { readonly topicFilter: string }[],
  reasonCodes: readonly number[],
): void {
  if (!conn.ctx.logger.isLevelEnabled('info')) return;
  const filters = subscriptions.map((s) => s.topicFilter);
  filterEvent(conn, 'client.subscribed', 'client subscribed', filters, reasonCodes);
}

export function clientUnsubscribed(
  conn: PacketContext,
  filters: readonly string[],
  reasonCodes: readonly number[],
): void {
  filterEvent(conn, 'client.unsubscribed', 'client unsubscribed', filters, reasonCodes);
}

/** A CONNECT (on `conn`) takes over the client id of a connected client. */
export function sessionTakenOver(conn: PacketContext, broker: BrokerPort): void {
  const dropped = conn.ctx.clientLog.take();
  if (dropped !== false)
    conn.log.info(
      withSuppressed({ event: 'client.session_taken_over', broker: broker.address }, dropped),
      'session taken over',
    );
}

/** A CONNECT refused: an authentication failure, or another refusal. */
export function connectRefused(
  conn: PacketContext,
  refusal: {
    code: ErrorCode;
    reason: number;
    detail: string;
    connackSent: boolean;
    broker: string | undefined;
  },
): void {
  const { code, reason, detail, connackSent, broker } = refusal;
  if (AUTH_FAILURES.has(code))
    conn.log.warn(
      { event: 'client.auth_failed', broker, reason, code, detail, connackSent },
      'authentication failed',
    );
  else {
    const dropped = conn.ctx.clientLog.take();
    if (dropped !== false)
      conn.log.warn(
        withSuppressed(
          { event: 'client.connect_refused', broker, reason, code, detail, connackSent },
          dropped,
        ),
        'connection refused',
      );
  }
}

function filterEvent(
  conn: PacketContext,
  event: string,
  msg: string,
  filters: readonly string[],
  reasonCodes: readonly number[],
): void {
  if (!conn.ctx.logger.isLevelEnabled('info')) return; // spares building the child logger and the lists
  conn.log.info(
    {
      event,
      broker: conn.broker?.address,
      filters: filters.map((f) => f.slice(0, FILTER_LOG_CHARS)),
      reasonCodes,
    },
    msg,
  );
}

function causeFields(cause: CloseCause): Partial<CloseCause> {
  const { reason, code, detail } = cause;
  return { reason, code, detail };
}

/** The `reason` of a disconnected payload: EMQX-like words. */
function reasonName(cause: CloseCause): string {
  if (cause.by === 'network') return 'connection_lost';
  if (cause.by === 'client') return cause.reason === 0 ? 'normal' : 'client_disconnect';
  return cause.code === undefined ? 'server_disconnect' : cause.code.toLowerCase();
}

function publishEvent(broker: BrokerPort, clientId: string, kind: string, payload: object): void {
  // The client id becomes one topic level: one that would make more levels or a wildcard is not published.
  if (/[/+#]/.test(clientId)) return;
  broker.publish(
    new Message({
      topic: `$SYS/brokers/${broker.address}/clients/${clientId}/${kind}`,
      payload: Buffer.from(JSON.stringify(payload)),
      qos: 0,
      retain: false,
      properties: { payloadFormatIndicator: 1, contentType: 'application/json' },
    }),
  );
}
