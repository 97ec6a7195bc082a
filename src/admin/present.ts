/**
 * Records → the JSON objects of the Cloudflare Pub/Sub API. A broker carries both `authType`
 * (Cloudflare's docs) and `auth_type` (what wrangler and live responses used), `expiration` as
 * seconds or null, `on_publish` only when set, and `endpoint`: the URL a client should use,
 * built from the configured domain and the listeners actually running (MQTT over TLS when
 * there is a TLS listener, as Cloudflare's; else plain MQTT). `endpoints` (ours) lists every
 * listener's URL for the broker, and `mqtt_username` (ours) the MQTT user name that names the
 * broker where no host name can (no DNS for the name, plain TCP): src/tenancy/routing.ts.
 */
import type { ApiTokenRecord, BrokerRecord, NamespaceRecord } from '../store/index.ts';
import { brokerHostname } from '../tenancy/hostname.ts';
import { brokerUsername } from '../tenancy/routing.ts';

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
  };
  if (b.onPublishUrl !== null)
    out.on_publish = { url: b.onPublishUrl, policy: b.onPublishPolicy, timeout_ms: b.onPublishTimeoutMs };
  return out;
}

export function presentApiToken(t: ApiTokenRecord, value?: string): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: t.id,
    name: t.name,
    status: 'active',
    issued_on: t.issuedOn,
    last_used_on: t.lastUsedOn,
  };
  if (value !== undefined) out.value = value;
  return out;
}
