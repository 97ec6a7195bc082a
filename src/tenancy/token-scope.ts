/**
 * What an admin API token may do, as pure rules over its record (Cloudflare's model, cut to
 * this server: permission groups, the accounts a token may use, a validity window and a
 * client-address condition).
 *
 * - Permissions: `pubsub:read` (every GET of namespaces, brokers, keys, clients, retained,
 *   hooks), `pubsub:edit` (those and every change; includes `pubsub:read`), `tokens:edit`
 *   (create, list and revoke API tokens, within its own grant), `operator` (everything, on
 *   every account, and the account routes).
 * - Scope: the accounts a token may use (all, for an operator); optional namespace and broker
 *   (`<broker>.<namespace>`) lists it is limited to. Anything out of scope is answered as if it
 *   did not exist (404), so a token learns nothing of other accounts.
 * - Validity: `not_before` ≤ now < `expires_on` (each optional); `condition.request_ip.in` /
 *   `not_in`: CIDR lists the request's client address must be in / must not be in.
 *
 * Invariant: a token with `tokens:edit` never makes a token that can do more than itself
 * (`narrowGrant`): permissions, accounts, namespaces, brokers, expiry and address ranges of the
 * new token are within its own, and the limits it omits are inherited.
 */
import { cidrWithin, listHas, parseCidrList } from '../cidr-list.ts';
import { ApiError } from '../errors.ts';
import type { ApiTokenRecord, TokenCondition } from '../store/index.ts';

export const PERMISSIONS = ['pubsub:read', 'pubsub:edit', 'tokens:edit', 'operator'] as const;
export type Permission = (typeof PERMISSIONS)[number];

/** The permissions each permission includes. */
const INCLUDES: Readonly<Record<Permission, readonly Permission[]>> = {
  'pubsub:read': ['pubsub:read'],
  'pubsub:edit': ['pubsub:edit', 'pubsub:read'],
  'tokens:edit': ['tokens:edit'],
  operator: PERMISSIONS,
};

export const isPermission = (value: string): value is Permission =>
  (PERMISSIONS as readonly string[]).includes(value);

/** Cloudflare's token statuses; `disabled` here means "before its not_before". */
export type TokenStatus = 'active' | 'expired' | 'disabled';

/** What a token grants: the fields of its record a create request sets. */
export type TokenGrant = Omit<
  ApiTokenRecord,
  'id' | 'accountId' | 'name' | 'issuedOn' | 'lastUsedOn' | 'permissions'
> & {
  permissions: Permission[];
};

export function hasPermission(token: ApiTokenRecord, wanted: Permission): boolean {
  return token.permissions.some((p) => isPermission(p) && INCLUDES[p].includes(wanted));
}

export const isOperator = (token: ApiTokenRecord): boolean => token.permissions.includes('operator');

export function tokenStatus(
  token: Pick<ApiTokenRecord, 'expiresOn' | 'notBefore'>,
  nowMs: number,
): TokenStatus {
  if (token.expiresOn !== null && nowMs >= Date.parse(token.expiresOn)) return 'expired';
  if (token.notBefore !== null && nowMs < Date.parse(token.notBefore)) return 'disabled';
  return 'active';
}

/** Whether the token's request_ip condition lets `address` use it. */
export function addressAllowed(token: ApiTokenRecord, address: string): boolean {
  const ip = token.condition?.request_ip;
  if (ip === undefined) return true;
  if (ip.in !== undefined && !listHas(parseCidrList(ip.in.join(',')), address)) return false;
  if (ip.not_in !== undefined && listHas(parseCidrList(ip.not_in.join(',')), address)) return false;
  return true;
}

export function mayUseAccount(token: ApiTokenRecord, accountId: string): boolean {
  return isOperator(token) || token.accounts.includes(accountId);
}

/** Whether the token's limits admit namespace `name` (a broker limit admits its namespaces). */
export function mayUseNamespace(token: ApiTokenRecord, name: string): boolean {
  const ns = name.toLowerCase();
  if (token.namespaces !== null && !token.namespaces.includes(ns)) return false;
  return token.brokers === null || token.brokers.some((b) => b.slice(b.indexOf('.') + 1) === ns);
}

export function mayUseBroker(token: ApiTokenRecord, namespace: string, broker: string): boolean {
  if (!mayUseNamespace(token, namespace)) return false;
  return token.brokers === null || token.brokers.includes(`${broker}.${namespace}`.toLowerCase());
}

/**
 * The grant a token made by `creator` gets: `requested` with the creator's limits inherited
 * where it names none. Throws PERMISSION_DENIED (403) when it would exceed the creator's.
 */
export function narrowGrant(creator: ApiTokenRecord, requested: TokenGrant): TokenGrant {
  if (isOperator(creator)) return requested;
  const exceeds = (what: string): never => {
    throw new ApiError('PERMISSION_DENIED', `a token cannot grant more than it has: ${what}`);
  };
  for (const p of requested.permissions) if (!hasPermission(creator, p)) exceeds(`permission ${p}`);
  for (const a of requested.accounts) if (!creator.accounts.includes(a)) exceeds(`account ${a}`);
  const namespaces = within(requested.namespaces, creator.namespaces, exceeds, 'namespace');
  const brokers = within(requested.brokers, creator.brokers, exceeds, 'broker');
  const expiresOn = requested.expiresOn ?? creator.expiresOn;
  if (
    creator.expiresOn !== null &&
    expiresOn !== null &&
    Date.parse(expiresOn) > Date.parse(creator.expiresOn)
  )
    exceeds(`expires_on later than its own (${creator.expiresOn})`);
  const condition = narrowCondition(creator, requested, exceeds);
  return { ...requested, namespaces, brokers, expiresOn, condition };
}

/** `requested` when it lies within `own` (null: unlimited), `own` when nothing is requested. */
function within(
  requested: string[] | null,
  own: string[] | null,
  exceeds: (what: string) => never,
  what: string,
): string[] | null {
  if (requested === null) return own;
  if (own !== null) for (const item of requested) if (!own.includes(item)) exceeds(`${what} ${item}`);
  return requested;
}

/** The creator's `in` ranges bound the new token's; its `not_in` ranges are always kept. */
function narrowCondition(
  creator: ApiTokenRecord,
  requested: TokenGrant,
  exceeds: (what: string) => never,
): TokenCondition | null {
  const own = creator.condition?.request_ip;
  const asked = requested.condition?.request_ip;
  if (own === undefined) return requested.condition;
  let allowed = asked?.in;
  if (own.in !== undefined) {
    if (allowed === undefined) allowed = own.in;
    else
      for (const range of allowed)
        if (!own.in.some((outer) => cidrWithin(range, outer))) exceeds(`request_ip.in ${range}`);
  }
  const denied = [...new Set([...(asked?.not_in ?? []), ...(own.not_in ?? [])])];
  const requestIp: { in?: string[]; not_in?: string[] } = {};
  if (allowed !== undefined) requestIp.in = allowed;
  if (denied.length > 0) requestIp.not_in = denied;
  return { request_ip: requestIp };
}
