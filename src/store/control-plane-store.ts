/**
 * Control-plane state in the embedded database: accounts, namespaces, brokers and admin API
 * tokens. Plain records in, plain records out; names arrive already validated and lower-cased
 * (src/tenancy/names.ts), uniqueness is enforced here by the schema and reported as a typed
 * conflict, never as a raw SQLite error.
 *
 * Invariants: namespace names are unique across the whole server (as Cloudflare's are global);
 * broker names are unique within a namespace; token secrets are never stored, only their
 * SHA-256 hash; a token's list fields are JSON text in their columns.
 */
import type { BrokerLimits, LimitChanges } from './broker-limits.ts';
import { SqlStore } from './database.ts';

export type AuthType = 'TOKEN' | 'MTLS' | 'MTLS_AND_TOKEN' | 'NONE';

export interface AccountRecord {
  id: string;
  name: string;
  createdOn: string;
}

export interface NamespaceRecord {
  id: string;
  accountId: string;
  name: string;
  description: string;
  createdOn: string;
  modifiedOn: string;
}

export interface BrokerRecord {
  id: string;
  namespaceId: string;
  /** The namespace's name, joined in for hostnames and endpoints. */
  namespaceName: string;
  name: string;
  description: string;
  authType: AuthType;
  /** Default lifetime of credentials issued for this broker, in seconds; null: none. */
  expiration: number | null;
  onPublishUrl: string | null;
  /** What happens to messages when the hook fails: dropped (Cloudflare's) or forwarded unchanged. */
  onPublishPolicy: HookFailurePolicy;
  /** The webhook's timeout in ms; null: the server's `--hook-timeout-ms`. */
  onPublishTimeoutMs: number | null;
  /** Whether the broker publishes its $SYS statistics tree (src/broker/sys-tree.ts). */
  sysTopics: boolean;
  /** Certificate brokers: the CN → client id pattern; null: the server's `--mtls-client-id-pattern`. */
  mtlsClientIdPattern: string | null;
  /** The broker's own limits (docs/limits.md); a field absent takes the server's flag. */
  limits: BrokerLimits;
  createdOn: string;
  modifiedOn: string;
}

export type HookFailurePolicy = 'fail-closed' | 'fail-open';

/** Cloudflare's token condition: the client addresses (CIDR lists) a token may be used from. */
export interface TokenCondition {
  request_ip?: { in?: string[]; not_in?: string[] };
}

/**
 * An admin API token: owned by `accountId` (listed and revoked there), usable on `accounts`
 * (every account when `permissions` holds `operator`), limited to `namespaces` and `brokers`
 * (`<broker>.<namespace>`) when those are not null. Times are ISO 8601.
 */
export interface ApiTokenRecord {
  id: string;
  accountId: string;
  name: string;
  issuedOn: string;
  lastUsedOn: string | null;
  permissions: string[];
  accounts: string[];
  namespaces: string[] | null;
  brokers: string[] | null;
  expiresOn: string | null;
  notBefore: string | null;
  condition: TokenCondition | null;
}

export interface BrokerPatch {
  description?: string;
  expiration?: number | null;
  onPublishUrl?: string | null;
  onPublishPolicy?: HookFailurePolicy;
  onPublishTimeoutMs?: number | null;
  mtlsClientIdPattern?: string | null;
  authType?: AuthType;
  sysTopics?: boolean;
  /** Changes to the limits, merged into the stored ones (RFC 7396: null removes a field). */
  limits?: LimitChanges;
}

/** A uniqueness rule was broken: the name is taken. */
export class ConflictError extends Error {
  override name = 'ConflictError';
}

type Row = Record<string, unknown>;

const namespaceOf = (r: Row): NamespaceRecord => ({
  id: r.id as string,
  accountId: r.account_id as string,
  name: r.name as string,
  description: r.description as string,
  createdOn: r.created_on as string,
  modifiedOn: r.modified_on as string,
});

const brokerOf = (r: Row): BrokerRecord => ({
  id: r.id as string,
  namespaceId: r.namespace_id as string,
  namespaceName: r.namespace_name as string,
  name: r.name as string,
  description: r.description as string,
  authType: r.auth_type as AuthType,
  expiration: r.expiration === null ? null : Number(r.expiration),
  onPublishUrl: (r.on_publish_url as string | null) ?? null,
  onPublishPolicy: r.on_publish_policy as HookFailurePolicy,
  onPublishTimeoutMs: r.on_publish_timeout_ms === null ? null : Number(r.on_publish_timeout_ms),
  sysTopics: Number(r.sys_topics) !== 0,
  mtlsClientIdPattern: (r.mtls_client_id_pattern as string | null) ?? null,
  limits: json<BrokerLimits>(r.limits) ?? {},
  createdOn: r.created_on as string,
  modifiedOn: r.modified_on as string,
});

const json = <T>(text: unknown): T | null => (typeof text === 'string' ? (JSON.parse(text) as T) : null);
/** The limits column: NULL when no field is set. */
const limitsColumn = (limits: BrokerLimits): string | null =>
  Object.keys(limits).length === 0 ? null : JSON.stringify(limits);
const jsonOrNull = (value: unknown): string | null => (value === null ? null : JSON.stringify(value));

/** A token's grant as its columns, in their order: permissions … condition. */
function grantColumns(t: ApiTokenRecord): (string | null)[] {
  return [
    JSON.stringify(t.permissions),
    JSON.stringify(t.accounts),
    jsonOrNull(t.namespaces),
    jsonOrNull(t.brokers),
    t.expiresOn,
    t.notBefore,
    jsonOrNull(t.condition),
  ];
}

const tokenOf = (r: Row): ApiTokenRecord => ({
  id: r.id as string,
  accountId: r.account_id as string,
  name: r.name as string,
  issuedOn: r.issued_on as string,
  lastUsedOn: (r.last_used_on as string | null) ?? null,
  permissions: json<string[]>(r.permissions) ?? [],
  accounts: json<string[]>(r.accounts) ?? [],
  namespaces: json<string[]>(r.namespaces),
  brokers: json<string[]>(r.brokers),
  expiresOn: (r.expires_on as string | null) ?? null,
  notBefore: (r.not_before as string | null) ?? null,
  condition: json<TokenCondition>(r.condition),
});

const accountOf = (r: Row): AccountRecord => ({
  id: r.id as string,
  name: r.name as string,
  createdOn: r.created_on as string,
});

const BROKER_SELECT = `SELECT b.*, n.name AS namespace_name FROM brokers b JOIN namespaces n ON n.id = b.namespace_id`;

function isUniqueViolation(err: unknown): boolean {
  return err instanceof Error && /UNIQUE constraint failed/.test(err.message);
}

export class ControlPlaneStore extends SqlStore {
  // Accounts.

  createAccount(a: AccountRecord): void {
    this.q('INSERT INTO accounts (id, name, created_on) VALUES (?, ?, ?)').run(a.id, a.name, a.createdOn);
  }

  listAccounts(): AccountRecord[] {
    return (this.q('SELECT * FROM accounts ORDER BY created_on, id').all() as Row[]).map(accountOf);
  }

  getAccount(id: string): AccountRecord | undefined {
    const r = this.q('SELECT * FROM accounts WHERE id = ?').get(id) as Row | undefined;
    return r && accountOf(r);
  }

  renameAccount(id: string, name: string): void {
    this.q('UPDATE accounts SET name = ? WHERE id = ?').run(name, id);
  }

  /**
   * Deletes an account row with the API tokens it owns, and takes it out of the account lists
   * of other accounts' tokens. Its namespaces must be gone already (the tenancy deletes them
   * first, closing their brokers).
   */
  deleteAccount(id: string): void {
    this.q('DELETE FROM api_tokens WHERE account_id = ?').run(id);
    this.q(
      `UPDATE api_tokens SET accounts = (SELECT json_group_array(value) FROM json_each(api_tokens.accounts) WHERE value != ?1)
       WHERE EXISTS (SELECT 1 FROM json_each(api_tokens.accounts) WHERE value = ?1)`,
    ).run(id);
    this.q('DELETE FROM accounts WHERE id = ?').run(id);
  }

  // Namespaces.

  createNamespace(n: NamespaceRecord): void {
    try {
      this.q(
        'INSERT INTO namespaces (id, account_id, name, description, created_on, modified_on) VALUES (?, ?, ?, ?, ?, ?)',
      ).run(n.id, n.accountId, n.name, n.description, n.createdOn, n.modifiedOn);
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`namespace ${n.name} exists`);
      throw err;
    }
  }

  countNamespaces(accountId: string): number {
    return Number(
      (this.q('SELECT count(*) AS c FROM namespaces WHERE account_id = ?').get(accountId) as Row).c,
    );
  }

  listNamespaces(accountId: string, limit: number, offset: number): NamespaceRecord[] {
    return (
      this.q('SELECT * FROM namespaces WHERE account_id = ? ORDER BY name LIMIT ? OFFSET ?').all(
        accountId,
        limit,
        offset,
      ) as Row[]
    ).map(namespaceOf);
  }

  getNamespace(accountId: string, name: string): NamespaceRecord | undefined {
    const r = this.q('SELECT * FROM namespaces WHERE account_id = ? AND name = ?').get(accountId, name) as
      | Row
      | undefined;
    return r && namespaceOf(r);
  }

  deleteNamespace(id: string): void {
    this.q('DELETE FROM namespaces WHERE id = ?').run(id);
  }

  // Brokers.

  createBroker(b: Omit<BrokerRecord, 'namespaceName'>): void {
    try {
      this.q(
        `INSERT INTO brokers (id, namespace_id, name, description, auth_type, expiration, on_publish_url,
           on_publish_policy, on_publish_timeout_ms, sys_topics, mtls_client_id_pattern, limits,
           created_on, modified_on)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        b.id,
        b.namespaceId,
        b.name,
        b.description,
        b.authType,
        b.expiration,
        b.onPublishUrl,
        b.onPublishPolicy,
        b.onPublishTimeoutMs,
        b.sysTopics ? 1 : 0,
        b.mtlsClientIdPattern,
        limitsColumn(b.limits),
        b.createdOn,
        b.modifiedOn,
      );
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`broker ${b.name} exists`);
      throw err;
    }
  }

  countBrokers(namespaceId: string): number {
    return Number(
      (this.q('SELECT count(*) AS c FROM brokers WHERE namespace_id = ?').get(namespaceId) as Row).c,
    );
  }

  listBrokers(namespaceId: string, limit: number, offset: number): BrokerRecord[] {
    return (
      this.q(`${BROKER_SELECT} WHERE b.namespace_id = ? ORDER BY b.name LIMIT ? OFFSET ?`).all(
        namespaceId,
        limit,
        offset,
      ) as Row[]
    ).map(brokerOf);
  }

  /** Every broker of the server, for building the live tenants at start. */
  allBrokers(): BrokerRecord[] {
    return (this.q(`${BROKER_SELECT} ORDER BY n.name, b.name`).all() as Row[]).map(brokerOf);
  }

  getBroker(namespaceId: string, name: string): BrokerRecord | undefined {
    const r = this.q(`${BROKER_SELECT} WHERE b.namespace_id = ? AND b.name = ?`).get(namespaceId, name) as
      | Row
      | undefined;
    return r && brokerOf(r);
  }

  updateBroker(id: string, patch: BrokerPatch, modifiedOn: string): void {
    const sets: string[] = ['modified_on = ?'];
    const values: (string | number | null)[] = [modifiedOn];
    if (patch.description !== undefined) {
      sets.push('description = ?');
      values.push(patch.description);
    }
    if (patch.expiration !== undefined) {
      sets.push('expiration = ?');
      values.push(patch.expiration);
    }
    if (patch.onPublishUrl !== undefined) {
      sets.push('on_publish_url = ?');
      values.push(patch.onPublishUrl);
    }
    if (patch.onPublishPolicy !== undefined) {
      sets.push('on_publish_policy = ?');
      values.push(patch.onPublishPolicy);
    }
    if (patch.onPublishTimeoutMs !== undefined) {
      sets.push('on_publish_timeout_ms = ?');
      values.push(patch.onPublishTimeoutMs);
    }
    if (patch.mtlsClientIdPattern !== undefined) {
      sets.push('mtls_client_id_pattern = ?');
      values.push(patch.mtlsClientIdPattern);
    }
    if (patch.authType !== undefined) {
      sets.push('auth_type = ?');
      values.push(patch.authType);
    }
    if (patch.sysTopics !== undefined) {
      sets.push('sys_topics = ?');
      values.push(patch.sysTopics ? 1 : 0);
    }
    if (patch.limits !== undefined) {
      // SQLite's json_patch is RFC 7396's merge; no field left is NULL, as a broker never limited.
      sets.push("limits = nullif(json_patch(coalesce(limits, '{}'), ?), '{}')");
      values.push(JSON.stringify(patch.limits));
    }
    this.db.prepare(`UPDATE brokers SET ${sets.join(', ')} WHERE id = ?`).run(...values, id);
  }

  deleteBroker(id: string): void {
    this.q('DELETE FROM brokers WHERE id = ?').run(id);
  }

  // Admin API tokens.

  createApiToken(t: ApiTokenRecord, hash: string): void {
    this.q(
      `INSERT INTO api_tokens (id, account_id, name, hash, issued_on, permissions, accounts, namespaces,
         brokers, expires_on, not_before, condition)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(t.id, t.accountId, t.name, hash, t.issuedOn, ...grantColumns(t));
  }

  apiTokenByHash(hash: string): ApiTokenRecord | undefined {
    const r = this.q('SELECT * FROM api_tokens WHERE hash = ?').get(hash) as Row | undefined;
    return r && tokenOf(r);
  }

  listApiTokens(accountId: string): ApiTokenRecord[] {
    return (
      this.q('SELECT * FROM api_tokens WHERE account_id = ? ORDER BY issued_on, id').all(accountId) as Row[]
    ).map(tokenOf);
  }

  /** Replaces a token's name and grant; its id, owner, secret and issue time stay. */
  updateApiToken(t: ApiTokenRecord): void {
    this.q(
      `UPDATE api_tokens SET name = ?, permissions = ?, accounts = ?, namespaces = ?, brokers = ?,
         expires_on = ?, not_before = ?, condition = ? WHERE account_id = ? AND id = ?`,
    ).run(t.name, ...grantColumns(t), t.accountId, t.id);
  }

  /** Gives a token a new secret (by its hash): the old one stops working at once. */
  rollApiToken(accountId: string, id: string, hash: string): void {
    this.q('UPDATE api_tokens SET hash = ? WHERE account_id = ? AND id = ?').run(hash, accountId, id);
  }

  touchApiToken(id: string, when: string): void {
    this.q('UPDATE api_tokens SET last_used_on = ? WHERE id = ?').run(when, id);
  }

  deleteApiToken(accountId: string, id: string): boolean {
    return (
      Number(this.q('DELETE FROM api_tokens WHERE account_id = ? AND id = ?').run(accountId, id).changes) > 0
    );
  }
}
