/**
 * The admin API's bearer tokens: opaque secrets, owned by an account, each with a grant
 * (token-scope.ts: permissions, accounts, namespace/broker limits, validity window, address
 * condition).
 *
 * Invariants:
 * - Only a token's hash is stored; its value is returned once, when it is created.
 * - A new or changed token's grant is validated here (known permissions, DNS-label names, ISO times with
 *   not_before < expires_on and expires_on in the future, CIDR lists) and narrowed to its
 *   creator's (token-scope.ts `narrowGrant`), so no token makes a stronger one; likewise a
 *   token changes, rolls or revokes only tokens within its own grant (an edit token cannot
 *   revoke the operator's), and changes them only to grants within its own.
 * - A token's last-used time is informational, so it is written at most once a minute per
 *   token, not on every request.
 * - A refusal is a catalogue ApiError (TOKEN_NOT_FOUND, INVALID_PARAMETER, PERMISSION_DENIED),
 *   never a raw store error.
 */
import { hashApiToken, newApiToken } from '../auth/index.ts';
import { parseCidr } from '../cidr-list.ts';
import { ApiError } from '../errors.ts';
import type { ApiTokenRecord, ControlPlaneStore, TokenCondition } from '../store/index.ts';
import { newId, timestamp } from './ids.ts';
import { canonicalName } from './names.ts';
import { isPermission, narrowGrant, type Permission, type TokenGrant } from './token-scope.ts';

/** How often a token's last-used time is written, at most. */
const TOUCH_INTERVAL_MS = 60_000;

/** A create request, in the API's (Cloudflare's) field names. */
export interface TokenRequest {
  name: string;
  /** Default: pubsub:edit and tokens:edit (what every token could do before scopes). */
  permissions?: string[];
  expires_on?: string | null;
  not_before?: string | null;
  condition?: TokenCondition | null;
  /** Default: accounts [the owner], no namespace or broker limit. */
  resources?: { accounts?: string[]; namespaces?: string[]; brokers?: string[] };
}

const DEFAULT_PERMISSIONS: Permission[] = ['pubsub:edit', 'tokens:edit'];

export class ApiTokens {
  readonly #store: ControlPlaneStore;
  /** When each token's last-used time was last written, by token id. */
  readonly #touched = new Map<string, number>();

  constructor(store: ControlPlaneStore) {
    this.#store = store;
  }

  /** The token record a presented secret belongs to, or undefined. */
  verify(secret: string): ApiTokenRecord | undefined {
    const record = this.#store.apiTokenByHash(hashApiToken(secret));
    if (record === undefined) return undefined;
    const now = Date.now();
    if (now - (this.#touched.get(record.id) ?? 0) > TOUCH_INTERVAL_MS) {
      this.#touched.set(record.id, now);
      this.#store.touchApiToken(record.id, timestamp());
    }
    return record;
  }

  /** Creates a token owned by `accountId`, made by `creator` (whose grant bounds it). */
  create(
    creator: ApiTokenRecord,
    accountId: string,
    request: TokenRequest,
  ): { record: ApiTokenRecord; value: string } {
    const grant = narrowGrant(creator, grantOf(accountId, request, Date.now()));
    this.#checkAccounts(grant);
    const value = newApiToken();
    const record: ApiTokenRecord = {
      id: newId(),
      accountId,
      name: request.name,
      issuedOn: timestamp(),
      lastUsedOn: null,
      ...grant,
    };
    this.#store.createApiToken(record, hashApiToken(value));
    return { record, value };
  }

  list(accountId: string): ApiTokenRecord[] {
    return this.#store.listApiTokens(accountId);
  }

  /** One token of `accountId` (TOKEN_NOT_FOUND otherwise). */
  get(accountId: string, id: string): ApiTokenRecord {
    const token = this.#store.listApiTokens(accountId).find((t) => t.id === id);
    if (token === undefined) throw new ApiError('TOKEN_NOT_FOUND', `no API token ${id}`);
    return token;
  }

  /**
   * Replaces a token's name and grant with `request`'s (the create body: what it leaves out
   * takes the create defaults); its id and secret stay. `caller` may change only a token within
   * its own grant, and only to one within it.
   */
  update(caller: ApiTokenRecord, accountId: string, id: string, request: TokenRequest): ApiTokenRecord {
    const target = this.#mayChange(caller, accountId, id);
    const grant = narrowGrant(caller, grantOf(accountId, request, Date.now()));
    this.#checkAccounts(grant);
    const record: ApiTokenRecord = { ...target, name: request.name, ...grant };
    this.#store.updateApiToken(record);
    return record;
  }

  /** A new secret for a token within `caller`'s grant; the old secret stops working at once. */
  roll(caller: ApiTokenRecord, accountId: string, id: string): string {
    this.#mayChange(caller, accountId, id);
    const value = newApiToken();
    this.#store.rollApiToken(accountId, id, hashApiToken(value));
    return value;
  }

  /** Revokes a token of `accountId`; `caller` may revoke only tokens within its own grant. */
  delete(caller: ApiTokenRecord, accountId: string, id: string): void {
    this.#mayChange(caller, accountId, id);
    this.#store.deleteApiToken(accountId, id);
    this.#touched.delete(id);
  }

  /** The token `id`, when `caller`'s grant covers it (PERMISSION_DENIED otherwise). */
  #mayChange(caller: ApiTokenRecord, accountId: string, id: string): ApiTokenRecord {
    const target = this.get(accountId, id);
    narrowGrant(caller, target as TokenGrant);
    return target;
  }

  #checkAccounts(grant: TokenGrant): void {
    for (const account of grant.accounts)
      if (this.#store.getAccount(account) === undefined)
        throw new ApiError('INVALID_PARAMETER', `resources.accounts: no account ${account}`);
  }
}

const invalid = (message: string): never => {
  throw new ApiError('INVALID_PARAMETER', message);
};

/** The grant a create request asks for, validated (not yet narrowed to its creator's). */
function grantOf(owner: string, request: TokenRequest, nowMs: number): TokenGrant {
  const permissions = [...new Set(request.permissions ?? DEFAULT_PERMISSIONS)];
  if (permissions.length === 0) invalid('permissions: give at least one');
  for (const p of permissions) if (!isPermission(p)) invalid(`permissions: unknown permission ${p}`);
  const accounts = [...new Set(request.resources?.accounts ?? [owner])];
  if (!accounts.includes(owner))
    invalid(`resources.accounts must include ${owner}, the account that owns the token`);
  const namespaces = namesOf(request.resources?.namespaces, 'resources.namespaces', (n) => canonicalName(n));
  const brokers = namesOf(request.resources?.brokers, 'resources.brokers', brokerAddress);
  const expiresOn = timeOf(request.expires_on, 'expires_on');
  const notBefore = timeOf(request.not_before, 'not_before');
  if (expiresOn !== null && Date.parse(expiresOn) <= nowMs) invalid('expires_on is in the past');
  if (expiresOn !== null && notBefore !== null && Date.parse(notBefore) >= Date.parse(expiresOn))
    invalid('not_before must be before expires_on');
  return {
    permissions: permissions as Permission[],
    accounts,
    namespaces,
    brokers,
    expiresOn,
    notBefore,
    condition: conditionOf(request.condition),
  };
}

function namesOf(
  list: string[] | undefined,
  field: string,
  canonical: (name: string) => string | undefined,
): string[] | null {
  if (list === undefined) return null;
  return [
    ...new Set(
      list.map((name) => canonical(name) ?? invalid(`${field}: ${JSON.stringify(name)} is not a valid name`)),
    ),
  ];
}

/** `<broker>.<namespace>`, both DNS labels, lower-cased. */
function brokerAddress(text: string): string | undefined {
  const [broker, namespace, ...rest] = text.split('.');
  const b = canonicalName(broker);
  const n = canonicalName(namespace);
  return rest.length === 0 && b !== undefined && n !== undefined ? `${b}.${n}` : undefined;
}

/** An ISO 8601 time with a zone, as UTC `...Z`; null when absent. */
function timeOf(value: string | null | undefined, field: string): string | null {
  if (value === undefined || value === null) return null;
  const ms = /T.*(Z|[+-]\d\d:\d\d)$/i.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms)) invalid(`${field}: ${JSON.stringify(value)} is not an ISO 8601 time with a zone`);
  return new Date(ms).toISOString().replace(/\.000Z$/, 'Z');
}

function conditionOf(condition: TokenCondition | null | undefined): TokenCondition | null {
  const ip = condition?.request_ip;
  if (ip === undefined) return null;
  const ranges = (list: string[] | undefined, field: string): string[] | undefined =>
    list?.map((range) => {
      try {
        parseCidr(range);
        return range.trim();
      } catch (err) {
        return invalid(`condition.request_ip.${field}: ${(err as Error).message}`);
      }
    });
  const out: { in?: string[]; not_in?: string[] } = {};
  const allowed = ranges(ip.in, 'in');
  const denied = ranges(ip.not_in, 'not_in');
  if (allowed !== undefined) out.in = allowed;
  if (denied !== undefined) out.not_in = denied;
  return allowed === undefined && denied === undefined ? null : { request_ip: out };
}
