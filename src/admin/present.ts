/**
 * Records → the JSON objects of the Cloudflare Pub/Sub API. A broker carries both `authType`
 * (Cloudflare's docs) and `auth_type` (what wrangler and live responses used), `expiration` as
 * seconds or null, `on_publish` only when set, and `endpoint`: the URL a client should use,
 * built from the configured domain and the listeners actually running (MQTT over TLS when
 * there is a TLS listener, as Cloudflare's; else plain MQTT). `endpoints` (ours) lists every
 * listener's URL for the broker, and `mqtt_username` (ours) the MQTT user name that names the
 * broker where no host name can (no DNS for the name, plain TCP): src/tenancy/routing.ts.
 *
 * A client is a session as `Session.describe` gives it: the connection's fields are null while
 * a persistent session is offline. A retained message shows its payload (base64) only when
 * asked, and then at most `payloadBytes` of it.
 */
import type { Message } from '../router/index.ts';
import type { SessionView } from '../session/index.ts';
import {
  type AccountRecord,
  type ApiTokenRecord,
  BROKER_LIMIT_FIELDS,
  type BrokerLimits,
  type BrokerRecord,
  type NamespaceRecord,
} from '../store/index.ts';
import { brokerHostname, brokerUsername, tokenStatus } from '../tenancy/index.ts';

/** Bound ports of the MQTT listeners, by scheme. */
export interface ListenerPorts {
  mqtt?: number;
  mqtts?: number;
  ws?: number;
  wss?: number;
}

export function presentNamespace(n: NamespaceRecord): Record<string, unknown> {
  return {
    id: n.id,
    name: n.name,
    description: n.description,
    created_on: n.createdOn,
    modified_on: n.modifiedOn,
  };
}

export function brokerEndpoints(
  b: BrokerRecord,
  domain: string,
  ports: ListenerPorts,
): Record<string, string> {
  const host = brokerHostname(b.name, b.namespaceName, domain);
  const out: Record<string, string> = {};
  if (ports.mqtts !== undefined) out.mqtts = `mqtts://${host}:${ports.mqtts}`;
  if (ports.mqtt !== undefined) out.mqtt = `mqtt://${host}:${ports.mqtt}`;
  if (ports.wss !== undefined) out.wss = `wss://${host}:${ports.wss}/mqtt`;
  if (ports.ws !== undefined) out.ws = `ws://${host}:${ports.ws}/mqtt`;
  return out;
}

export function presentBroker(
  b: BrokerRecord,
  domain: string,
  ports: ListenerPorts,
): Record<string, unknown> {
  const endpoints = brokerEndpoints(b, domain, ports);
  const out: Record<string, unknown> = {
    id: b.id,
    name: b.name,
    description: b.description,
    authType: b.authType,
    auth_type: b.authType,
    created_on: b.createdOn,
    modified_on: b.modifiedOn,
    expiration: b.expiration,
    endpoint: endpoints.mqtts ?? endpoints.mqtt ?? endpoints.wss ?? endpoints.ws ?? null,
    endpoints,
    mqtt_username: brokerUsername(b.name, b.namespaceName),
    sys_topics: b.sysTopics,
    mtls_client_id_pattern: b.mtlsClientIdPattern,
    limits: presentLimits(b.limits),
  };
  if (b.onPublishUrl !== null)
    out.on_publish = { url: b.onPublishUrl, policy: b.onPublishPolicy, timeout_ms: b.onPublishTimeoutMs };
  return out;
}

/** Every limit field, the broker's own value or null (the server's flag). */
function presentLimits(limits: BrokerLimits): Record<string, number | string | null> {
  const out: Record<string, number | string | null> = {};
  for (const field of BROKER_LIMIT_FIELDS) out[field] = limits[field] ?? null;
  out.rate_limit_action = limits.rate_limit_action ?? null;
  return out;
}

export function presentAccount(a: AccountRecord): Record<string, unknown> {
  return { id: a.id, name: a.name, created_on: a.createdOn };
}

/** An API token: its grant and status, never its secret except `value` when just created. */
export function presentApiToken(
  t: ApiTokenRecord,
  value?: string,
  nowMs = Date.now(),
): Record<string, unknown> {
  const resources: Record<string, string[]> = { accounts: t.accounts };
  if (t.namespaces !== null) resources.namespaces = t.namespaces;
  if (t.brokers !== null) resources.brokers = t.brokers;
  const out: Record<string, unknown> = {
    ...presentVerifiedToken(t, nowMs),
    name: t.name,
    issued_on: t.issuedOn,
    last_used_on: t.lastUsedOn,
    permissions: t.permissions,
    resources,
  };
  if (t.condition !== null) out.condition = t.condition;
  if (value !== undefined) out.value = value;
  return out;
}

/** What Cloudflare's `GET /user/tokens/verify` answers: id, status and the validity window. */
export function presentVerifiedToken(t: ApiTokenRecord, nowMs = Date.now()): Record<string, unknown> {
  const out: Record<string, unknown> = { id: t.id, status: tokenStatus(t, nowMs) };
  if (t.expiresOn !== null) out.expires_on = t.expiresOn;
  if (t.notBefore !== null) out.not_before = t.notBefore;
  return out;
}

const isoOrNull = (ms: number | undefined): string | null =>
  ms === undefined ? null : new Date(ms).toISOString();

/** A client (a session, connected or not); `detail` adds its subscriptions. */
export function presentClient(v: SessionView, detail: boolean): Record<string, unknown> {
  const link = v.link;
  const out: Record<string, unknown> = {
    client_id: v.clientId,
    connected: link !== undefined,
    transport: link?.transport ?? null,
    remote_address: link?.remoteAddress ?? null,
    remote_port: link?.remotePort ?? null,
    protocol_version: link?.protocolVersion ?? null,
    keep_alive: link?.keepAlive ?? null,
    connected_at: isoOrNull(link?.connectedAt),
    subscription_count: v.subscriptions.length,
    inflight: v.inflight,
    queued: v.queued,
    session_expiry_interval: v.expiryInterval,
    session_expires_at: isoOrNull(v.expiresAt),
  };
  if (detail)
    out.subscriptions = v.subscriptions.map((s) => ({
      filter: s.topicFilter,
      qos: s.qos,
      no_local: s.noLocal,
      retain_as_published: s.retainAsPublished,
      retain_handling: s.retainHandling,
      subscription_id: s.subscriptionId ?? null,
      share_group: s.share?.name ?? null,
    }));
  return out;
}

/** A retained message; the payload (base64, at most `payloadBytes`) only when `payloadBytes` is given. */
export function presentRetained(
  m: Message,
  payloadBytes: number | undefined,
  now: number,
): Record<string, unknown> {
  const out: Record<string, unknown> = { topic: m.topic, qos: m.qos, payload_size: m.payload.length };
  if (payloadBytes !== undefined) {
    out.payload = m.payload.subarray(0, payloadBytes).toString('base64');
    out.payload_truncated = m.payload.length > payloadBytes;
  }
  const p = m.properties;
  const properties: Record<string, unknown> = {};
  if (p?.payloadFormatIndicator !== undefined) properties.payload_format_indicator = p.payloadFormatIndicator;
  if (p?.contentType !== undefined) properties.content_type = p.contentType;
  if (p?.responseTopic !== undefined) properties.response_topic = p.responseTopic;
  if (p?.correlationData !== undefined) properties.correlation_data = p.correlationData.toString('base64');
  if (p?.userProperties !== undefined)
    properties.user_properties = p.userProperties.map(([key, value]) => ({ key, value }));
  const remaining = m.remainingExpiry(now);
  if (remaining !== undefined) properties.message_expiry_interval = remaining;
  out.properties = properties;
  out.stored_at = new Date(m.receivedAt).toISOString();
  out.expires_at = isoOrNull(m.expiresAt);
  return out;
}
