/**
 * The error catalogue: every refusal the server can express, by code, with its MQTT 5.0
 * reason code, its MQTT 3.x CONNACK return code where one exists, and the HTTP status the
 * admin API will use. Connections refuse and disconnect by catalogue code; the functions below
 * are the only places that turn an MQTT code into wire values. Two more tables: the admin
 * API's Cloudflare error codes (API_ERRORS, thrown as ApiError) and the refusals answered in
 * plain HTTP outside that API (HTTP_REFUSALS: WebSocket listeners, the liveness and readiness probes).
 */
import { ConnectReturnCode, type ProtocolVersion, ReasonCode } from './protocol/index.ts';

interface ErrorDef {
  reason: number;
  http: number;
  message: string;
}

export const ERRORS = {
  MALFORMED_PACKET: { reason: ReasonCode.MalformedPacket, http: 400, message: 'malformed packet' },
  PROTOCOL_ERROR: { reason: ReasonCode.ProtocolError, http: 400, message: 'protocol error' },
  UNSUPPORTED_PROTOCOL_VERSION: {
    reason: ReasonCode.UnsupportedProtocolVersion,
    http: 400,
    message: 'unsupported protocol version',
  },
  CLIENT_ID_NOT_VALID: {
    reason: ReasonCode.ClientIdentifierNotValid,
    http: 400,
    message: 'client identifier not valid',
  },
  BAD_AUTHENTICATION_METHOD: {
    reason: ReasonCode.BadAuthenticationMethod,
    http: 400,
    message: 'bad authentication method',
  },
  BAD_CREDENTIALS: {
    reason: ReasonCode.BadUserNameOrPassword,
    http: 401,
    message: 'bad user name or password',
  },
  NOT_AUTHORIZED: { reason: ReasonCode.NotAuthorized, http: 403, message: 'not authorized' },
  /** The source address failed to authenticate too often (src/auth/failure-limiter.ts); v3: 0x05. */
  BANNED: { reason: ReasonCode.Banned, http: 429, message: 'banned: too many failed authentications' },
  SERVER_UNAVAILABLE: { reason: ReasonCode.ServerUnavailable, http: 503, message: 'server unavailable' },
  SERVER_SHUTTING_DOWN: { reason: ReasonCode.ServerShuttingDown, http: 503, message: 'server shutting down' },
  /** A cluster node cut off from NATS closes its persistent sessions' connections (src/cluster/session-fence.ts). */
  USE_ANOTHER_SERVER: { reason: ReasonCode.UseAnotherServer, http: 503, message: 'use another server' },
  KEEP_ALIVE_TIMEOUT: { reason: ReasonCode.KeepAliveTimeout, http: 408, message: 'keep alive timeout' },
  SESSION_TAKEN_OVER: { reason: ReasonCode.SessionTakenOver, http: 409, message: 'session taken over' },
  TOPIC_FILTER_INVALID: { reason: ReasonCode.TopicFilterInvalid, http: 400, message: 'topic filter invalid' },
  TOPIC_NAME_INVALID: { reason: ReasonCode.TopicNameInvalid, http: 400, message: 'topic name invalid' },
  RECEIVE_MAXIMUM_EXCEEDED: {
    reason: ReasonCode.ReceiveMaximumExceeded,
    http: 429,
    message: 'receive maximum exceeded',
  },
  TOPIC_ALIAS_INVALID: { reason: ReasonCode.TopicAliasInvalid, http: 400, message: 'topic alias invalid' },
  PACKET_TOO_LARGE: { reason: ReasonCode.PacketTooLarge, http: 413, message: 'packet too large' },
  QUOTA_EXCEEDED: { reason: ReasonCode.QuotaExceeded, http: 429, message: 'quota exceeded' },
  /** `--max-connections`: the process serves as many connections as it may (v3: 0x03). */
  MAX_CONNECTIONS: {
    reason: ReasonCode.QuotaExceeded,
    http: 429,
    message: 'server connection limit reached',
  },
  /** `--max-connections-per-address`: this source address holds as many as it may (v3: 0x03). */
  MAX_CONNECTIONS_PER_ADDRESS: {
    reason: ReasonCode.QuotaExceeded,
    http: 429,
    message: 'too many connections from this address',
  },
  /** A broker's `limits.max_connections` (`--max-broker-connections`): it serves as many as it may (v3: 0x03). */
  BROKER_MAX_CONNECTIONS: {
    reason: ReasonCode.QuotaExceeded,
    http: 429,
    message: 'broker connection limit reached',
  },
  /** Over `--max-memory` (or `--max-event-loop-lag`): new connections wait until the process recovers. */
  SERVER_BUSY: { reason: ReasonCode.ServerBusy, http: 503, message: 'server busy' },
  /** `--max-client-connect-rate`: this client id connects too often (a takeover or reconnect loop). */
  CONNECTION_RATE_EXCEEDED: {
    reason: ReasonCode.ConnectionRateExceeded,
    http: 429,
    message: 'connection rate exceeded',
  },
  /** `--max-address-connect-rate`: this source address connects too often (v3: 0x03). */
  ADDRESS_CONNECTION_RATE_EXCEEDED: {
    reason: ReasonCode.ConnectionRateExceeded,
    http: 429,
    message: 'connection rate from this address exceeded',
  },
  RETAIN_NOT_SUPPORTED: { reason: ReasonCode.RetainNotSupported, http: 400, message: 'retain not supported' },
  QOS_NOT_SUPPORTED: { reason: ReasonCode.QoSNotSupported, http: 400, message: 'QoS not supported' },
  PAYLOAD_FORMAT_INVALID: {
    reason: ReasonCode.PayloadFormatInvalid,
    http: 400,
    message: 'payload format invalid',
  },
  MESSAGE_RATE_TOO_HIGH: {
    reason: ReasonCode.MessageRateTooHigh,
    http: 429,
    message: 'message rate too high',
  },
  ADMINISTRATIVE_ACTION: {
    reason: ReasonCode.AdministrativeAction,
    http: 409,
    message: 'disconnected by an administrative action',
  },
  SHARED_SUBSCRIPTIONS_NOT_SUPPORTED: {
    reason: ReasonCode.SharedSubscriptionsNotSupported,
    http: 400,
    message: 'shared subscriptions not supported',
  },
  SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED: {
    reason: ReasonCode.SubscriptionIdentifiersNotSupported,
    http: 400,
    message: 'subscription identifiers not supported',
  },
  WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED: {
    reason: ReasonCode.WildcardSubscriptionsNotSupported,
    http: 400,
    message: 'wildcard subscriptions not supported',
  },
  MAXIMUM_CONNECT_TIME: {
    reason: ReasonCode.MaximumConnectTime,
    http: 401,
    message: 'maximum connect time: credentials expired',
  },
  STORAGE_UNAVAILABLE: {
    reason: ReasonCode.UnspecifiedError,
    http: 503,
    message: 'message store unavailable',
  },
  /** The on-publish hook failed and the broker fails closed: the message was not delivered. */
  HOOK_FAILED: { reason: ReasonCode.UnspecifiedError, http: 502, message: 'on-publish hook failed' },
  PACKET_ID_NOT_FOUND: {
    reason: ReasonCode.PacketIdentifierNotFound,
    http: 404,
    message: 'packet identifier not found',
  },
  IMPLEMENTATION_ERROR: {
    reason: ReasonCode.ImplementationSpecificError,
    http: 500,
    message: 'internal error',
  },
  /**
   * A valid CONNECT whose CONNACK, even without its optional properties, exceeds the client's
   * Maximum Packet Size [MQTT-3.1.2-24]: 0x83, "valid but not accepted by this Server".
   */
  CONNACK_TOO_LARGE: {
    reason: ReasonCode.ImplementationSpecificError,
    http: 413,
    message: "CONNACK larger than the client's Maximum Packet Size",
  },
} as const satisfies Record<string, ErrorDef>;

export type ErrorCode = keyof typeof ERRORS;

export const reasonCodeOf = (code: ErrorCode): number => ERRORS[code].reason;

/** Reason code → catalogue code; where codes share a reason, the first in the catalogue names it. */
const CODE_BY_REASON = new Map<number, ErrorCode>(
  (Object.keys(ERRORS) as ErrorCode[]).reverse().map((code) => [ERRORS[code].reason, code]),
);

/** Reason codes of 0x80 and above report a failure (section 2.4). */
export const isFailureReason = (reason: number): boolean => reason >= ReasonCode.UnspecifiedError;

/** The catalogue code for a v5 reason code carried by a codec error (unknown: malformed). */
export const errorCodeOfReason = (reason: number): ErrorCode =>
  CODE_BY_REASON.get(reason) ?? 'MALFORMED_PACKET';

/**
 * v5 CONNACK reason code → v3.1/3.1.1 CONNACK return code (3.1.1 table 3.1; 3.1 has the same
 * six). 0x03 "the MQTT service is unavailable" is for faults of the service, never of the
 * CONNECT: a client told the server is down retries. A reason not listed (a malformed or
 * invalid CONNECT, an unsupported will QoS or retain) has no applicable return code, so the
 * CONNECT is refused by closing without a CONNACK [MQTT-3.1.4-1], [MQTT-3.2.2-6] (3.1.1).
 */
const V3_CONNACK: Record<number, number> = {
  [ReasonCode.Success]: ConnectReturnCode.Accepted,
  [ReasonCode.UnsupportedProtocolVersion]: ConnectReturnCode.UnacceptableProtocolVersion,
  [ReasonCode.ClientIdentifierNotValid]: ConnectReturnCode.IdentifierRejected,
  [ReasonCode.BadUserNameOrPassword]: ConnectReturnCode.BadUserNameOrPassword,
  [ReasonCode.NotAuthorized]: ConnectReturnCode.NotAuthorized,
  [ReasonCode.Banned]: ConnectReturnCode.NotAuthorized,
  [ReasonCode.UnspecifiedError]: ConnectReturnCode.ServerUnavailable,
  [ReasonCode.ImplementationSpecificError]: ConnectReturnCode.ServerUnavailable,
  [ReasonCode.ServerUnavailable]: ConnectReturnCode.ServerUnavailable,
  [ReasonCode.ServerBusy]: ConnectReturnCode.ServerUnavailable,
  [ReasonCode.ServerShuttingDown]: ConnectReturnCode.ServerUnavailable,
  [ReasonCode.QuotaExceeded]: ConnectReturnCode.ServerUnavailable,
  [ReasonCode.ConnectionRateExceeded]: ConnectReturnCode.ServerUnavailable,
};

/**
 * The CONNACK code for a v5 reason in the given protocol version; undefined when a v3.1/3.1.1
 * CONNACK has none, and the refusal is a close without CONNACK.
 */
export function connackCode(reason: number, version: ProtocolVersion): number | undefined {
  if (version === 5) return reason;
  return V3_CONNACK[reason];
}

interface ApiErrorDef {
  http: number;
  code: number;
  message: string;
}

export const API_ERRORS = {
  INVALID_CONTENT_TYPE: { http: 415, code: 6003, message: 'request body must be application/json' },
  MALFORMED_JSON: { http: 400, code: 6007, message: 'malformed JSON in request body' },
  BODY_TOO_LARGE: { http: 413, code: 6008, message: 'request body too large' },
  VALIDATION_FAILED: { http: 400, code: 6009, message: 'request failed validation' },
  NO_ROUTE: { http: 404, code: 7000, message: 'no route for that URI' },
  AMBIGUOUS_PATH: { http: 400, code: 7010, message: 'request path can be read more than one way' },
  ACCOUNT_NOT_FOUND: { http: 404, code: 7003, message: 'could not route to account: identifier invalid' },
  PERMISSION_DENIED: { http: 403, code: 9109, message: 'unauthorized to access requested resource' },
  TOKEN_ADDRESS_REFUSED: {
    http: 403,
    code: 9109,
    message: 'this API token may not be used from this client address',
  },
  TOKEN_INACTIVE: { http: 403, code: 10000, message: 'API token expired or not yet valid' },
  AUTHENTICATION_ERROR: { http: 403, code: 10000, message: 'authentication error' },
  /** Too many failed authentications from the caller's address; answered with Retry-After. */
  AUTH_RATE_LIMITED: {
    http: 429,
    code: 971,
    message: 'too many failed authentications from this address; retry later',
  },
  METRICS_TOKEN_REQUIRED: { http: 401, code: 10000, message: 'GET /metrics needs the metrics token' },
  INTERNAL: { http: 500, code: 10001, message: 'internal error' },
  NAME_INVALID: { http: 400, code: 14001, message: 'name is not a valid DNS label' },
  NAMESPACE_EXISTS: { http: 409, code: 14002, message: 'namespace name already in use' },
  NAMESPACE_NOT_FOUND: { http: 404, code: 14003, message: 'namespace not found' },
  NAMESPACE_NOT_EMPTY: { http: 409, code: 14004, message: 'namespace has brokers' },
  BROKER_EXISTS: { http: 409, code: 14005, message: 'broker name already in use in this namespace' },
  BROKER_NOT_FOUND: { http: 404, code: 14006, message: 'broker not found' },
  QUOTA_EXCEEDED: { http: 400, code: 14007, message: 'quota exceeded' },
  TOKEN_NOT_FOUND: { http: 404, code: 14008, message: 'API token not found' },
  INVALID_PARAMETER: { http: 400, code: 14009, message: 'invalid parameter' },
  FUNCTION_INVALID: { http: 400, code: 14010, message: 'on-publish function refused' },
  HOOK_CONFLICT: { http: 409, code: 14011, message: 'broker already has the other kind of on-publish hook' },
  FUNCTION_NOT_FOUND: { http: 404, code: 14012, message: 'no on-publish function deployed' },
  HOOK_URL_REFUSED: {
    http: 400,
    code: 14013,
    message: "on_publish.url refused by the server's webhook egress policy",
  },
  CLIENT_NOT_FOUND: { http: 404, code: 14014, message: 'client not connected and no session' },
  RETAINED_NOT_FOUND: { http: 404, code: 14015, message: 'no retained message on that topic' },
  /** Cluster mode: this node does not hold the cluster's control plane now (its NATS link is down). */
  CONTROL_PLANE_UNAVAILABLE: {
    http: 503,
    code: 14030,
    message: 'the control plane cannot be changed on this node now; retry, or use another node',
  },
  /** Cluster mode: the change lost to a change of the same record made on another node at the same time. */
  CONTROL_PLANE_CONFLICT: {
    http: 409,
    code: 14031,
    message: 'changed on another node at the same time; read it again and retry',
  },
} as const satisfies Record<string, ApiErrorDef>;

export type ApiErrorCode = keyof typeof API_ERRORS;

/** A refusal of an admin API request: carries its catalogue code and a message for the user. */
export class ApiError extends Error {
  override name = 'ApiError';
  readonly code: ApiErrorCode;
  /** Seconds for a Retry-After header (RFC 9110 section 10.2.3), when the refusal is temporary. */
  readonly retryAfterSeconds: number | undefined;
  constructor(code: ApiErrorCode, message: string = API_ERRORS[code].message, retryAfterSeconds?: number) {
    super(message);
    this.code = code;
    this.retryAfterSeconds = retryAfterSeconds;
  }
  get status(): number {
    return API_ERRORS[this.code].http;
  }
  /** The Cloudflare-style error object of the response envelope. */
  toJSON(): { code: number; message: string } {
    return { code: API_ERRORS[this.code].code, message: this.message };
  }
}

interface HttpRefusalDef {
  http: number;
  message: string;
}

/**
 * Refusals answered in plain HTTP, outside the admin API's envelope: by a WebSocket listener
 * before any MQTT (an upgrade refused on the raw socket carries the status and its standard
 * reason phrase, no body; a request that asked for no upgrade gets `message` as text), and by
 * the liveness and readiness probes (`{ status: message, ... }`).
 */
export const HTTP_REFUSALS = {
  WS_PATH_NOT_FOUND: { http: 404, message: 'not found' },
  WS_UPGRADE_REQUIRED: { http: 426, message: 'MQTT over WebSocket: upgrade required' },
  WS_SUBPROTOCOL_REFUSED: { http: 400, message: 'no MQTT subprotocol offered' },
  NOT_READY: { http: 503, message: 'not ready' },
  NOT_LIVE: { http: 503, message: 'event loop stalled' },
} as const satisfies Record<string, HttpRefusalDef>;

export type HttpRefusal = keyof typeof HTTP_REFUSALS;
