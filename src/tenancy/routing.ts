/**
 * Which broker a new connection names, decided before any credential is checked. First rule
 * that names a broker wins:
 * 1. the host name: TLS SNI, else the WebSocket Host, `<broker>.<namespace>.<domain>`
 *    (hostname.ts);
 * 2. the `aud` claim of a token in the password (read unverified: it only picks the broker
 *    whose keys then verify the token, and a forged `aud` fails there);
 * 3. the MQTT user name `<broker>.<namespace>` or `<anything>@<broker>.<namespace>`, for
 *    clients that cannot send a host name (no DNS for `*.localhost` outside browsers; plain TCP
 *    carries none);
 * 4. the listener's default broker (`--default-broker`).
 *
 * Invariants:
 * - Naming is not authentication: a client could always send any SNI or Host header, and the
 *   named broker's own authType decides admission (admission.ts). A token verifies only
 *   against its own broker's keys, so credentials of broker A never open broker B.
 * - A name that names a missing broker is refused (NOT_AUTHORIZED: v5 0x87, v3 0x05), never
 *   sent elsewhere; a token for a missing broker is BAD_CREDENTIALS.
 * - A user name names a broker only when, after its last '@', it is exactly two DNS labels and
 *   the second is a namespace with brokers on this server. Anything else (`alice`,
 *   `john.doe`, `me@example.com`) is an ordinary user name and falls through to the default
 *   broker as before, so anonymous clients with any other user name are unaffected. A name
 *   whose namespace exists but whose broker does not is refused, like an unknown host.
 * - Reads memory only (the registry), never the database.
 */
import { audienceOf, MAX_JWT_BYTES } from '../auth/index.ts';
import type { ErrorCode } from '../errors.ts';
import { type BrokerAddress, brokerAddressOf } from './hostname.ts';
import { canonicalName } from './names.ts';
import type { TenantRegistry } from './registry.ts';
import type { Tenant } from './tenant.ts';

/** The password of a token client: the JWT, at most this many bytes (Cloudflare's limit). */
export const MAX_TOKEN_BYTES = MAX_JWT_BYTES;

/** What of a connection and its CONNECT can name a broker. */
export interface Naming {
  /** TLS SNI. */
  servername?: string | undefined;
  /** WebSocket Host header. */
  host?: string | undefined;
  username?: string | undefined;
  password?: Buffer | undefined;
}

export type Route = { tenant: Tenant } | { refuse: ErrorCode; detail: string };

/** The MQTT user name that names a broker: `<broker>.<namespace>` (any `<who>@` before it too). */
export const brokerUsername = (broker: string, namespace: string): string => `${broker}.${namespace}`;

/** The `<broker>.<namespace>` a user name has the shape of (after its last '@'), if any. */
export function brokerAddressOfUsername(username: string | undefined): BrokerAddress | undefined {
  if (username === undefined) return undefined;
  const labels = username.slice(username.lastIndexOf('@') + 1).split('.');
  if (labels.length !== 2) return undefined;
  const broker = canonicalName(labels[0]);
  const namespace = canonicalName(labels[1]);
  return broker === undefined || namespace === undefined ? undefined : { broker, namespace };
}

/** The tenant a connection names, by the rules above, or why it is refused. */
export function routeConnection(
  naming: Naming,
  registry: TenantRegistry,
  domain: string,
  defaultBroker: string,
): Route {
  const host = brokerAddressOf(naming.servername ?? naming.host, domain);
  if (host !== undefined) return named(registry, host, 'host name');
  const password = naming.password;
  const aud =
    password !== undefined && password.length <= MAX_TOKEN_BYTES
      ? audienceOf(password.toString('utf8'))
      : undefined;
  if (aud !== undefined) {
    const tenant = registry.byAddress(aud);
    return tenant !== undefined
      ? { tenant }
      : { refuse: 'BAD_CREDENTIALS', detail: `token for unknown broker ${aud}` };
  }
  const user = brokerAddressOfUsername(naming.username);
  if (user !== undefined && registry.hasNamespace(user.namespace)) return named(registry, user, 'user name');
  const tenant = registry.byAddress(defaultBroker);
  return tenant !== undefined
    ? { tenant }
    : { refuse: 'SERVER_UNAVAILABLE', detail: `default broker ${defaultBroker} does not exist` };
}

function named(registry: TenantRegistry, address: BrokerAddress, by: string): Route {
  const tenant = registry.byAddress(`${address.broker}.${address.namespace}`);
  return tenant !== undefined
    ? { tenant }
    : {
        refuse: 'NOT_AUTHORIZED',
        detail: `no broker ${address.broker} in namespace ${address.namespace} (named by the ${by})`,
      };
}
