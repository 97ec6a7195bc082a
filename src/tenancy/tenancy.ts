/**
 * The tenants of one server: account → namespace → broker, persisted in the control-plane store
 * and mirrored by one live `Broker` (topic index, retained messages, sessions) per broker row.
 *
 * Invariants:
 * - Every broker row has exactly one live Broker, created with the row and closed (clients get
 *   DISCONNECT 0x98, state dropped) when the row is deleted; nothing is shared between them.
 * - Names are DNS labels, stored lower-cased; namespace names are unique server-wide, broker
 *   names per namespace; quotas bound both counts.
 * - Every refusal is an ApiError from the catalogue (src/errors.ts), never a raw store error.
 * - A connection's broker: its SNI or WebSocket Host `<broker>.<namespace>.<domain>`, else the
 *   broker named by its token's `aud`, else the default broker (`defaultBroker`).
 * - Each live tenant has its key set and revocation list in memory (BrokerCredentials), so
 *   CONNECT verifies a token without touching the database.
 */
import type { Logger } from 'pino';
import {
  allowsEverything,
  audienceOf,
  BrokerCredentials,
  CertificateClientIds,
  type ClientIdentity,
  hashApiToken,
  MAX_TOKENS_PER_REQUEST,
  mintTokens,
  newApiToken,
  parseTopicAcl,
  TokenVerifier,
} from '../auth/index.ts';
import { Broker } from '../broker/index.ts';
import { type Config, servesOnlyThisMachine } from '../config.ts';
import { ApiError, type ErrorCode } from '../errors.ts';
import {
  BrokerHooks,
  type DeployedFunction,
  EgressPolicy,
  EgressRefusedError,
  type FunctionFactory,
  type HookView,
  type HostResolver,
} from '../hooks/index.ts';
import type { ConnectionInfo } from '../session/connection.ts';
import {
  type AccountRecord,
  type ApiTokenRecord,
  type AuthType,
  type BrokerPatch,
  type BrokerRecord,
  ConflictError,
  type ControlPlaneStore,
  type CredentialStore,
  type HookFailurePolicy,
  type HookStore,
  MemoryMessageStore,
  type MessageStore,
  type NamespaceRecord,
  type TenancyStores,
} from '../store/index.ts';
import { brokerAddressOf } from './hostname.ts';
import { newId, timestamp } from './ids.ts';
import { canonicalName, nameProblem } from './names.ts';

export const BOOTSTRAP_NAMESPACE = 'local';
export const BOOTSTRAP_BROKER = 'default';
/** How often revocations of expired tokens are pruned. */
const PRUNE_INTERVAL_MS = 10 * 60_000;
/** How often a token's last-used time is written, at most (it is informational). */
const TOUCH_INTERVAL_MS = 60_000;

export interface Tenant {
  record: BrokerRecord;
  broker: Broker;
  credentials: BrokerCredentials;
  hooks: BrokerHooks;
}

/** The password of a token client: the JWT, at most this many bytes (Cloudflare's limit). */
const MAX_TOKEN_BYTES = 4096;

export interface BootstrapResult {
  account: AccountRecord;
  /** The admin token, in clear, only on the start that created it. */
  adminToken: string | undefined;
}

export type Admission =
  | {
      tenant: Tenant;
      /** The client id to use when the credentials decide it (empty client id + token `sub`). */
      clientId: string | undefined;
      identity: ClientIdentity;
    }
  | { refuse: ErrorCode; detail: string };

/** What CONNECT carries that authentication reads. */
export interface Credentials {
  clientId: string;
  username?: string | undefined;
  password?: Buffer | undefined;
}

export class Tenancy {
  readonly #store: ControlPlaneStore;
  readonly #credentialStore: CredentialStore;
  readonly #hookStore: HookStore;
  readonly #functions: FunctionFactory | undefined;
  readonly #messages: MessageStore;
  readonly #verifier = new TokenVerifier();
  readonly #certificateIds: CertificateClientIds;
  readonly #config: Config;
  readonly #log: Logger;
  /** Live tenants by broker id and by `<broker>.<namespace>`. */
  readonly #byId = new Map<string, Tenant>();
  readonly #byAddress = new Map<string, Tenant>();
  readonly #touched = new Map<string, number>();
  readonly #pruneTimer: NodeJS.Timeout;
  readonly anonymousAllowed: boolean;
  /** Where webhooks may connect: checked when on_publish.url is set and at every connection. */
  readonly egress: EgressPolicy;

  /** `resolveHost`: how webhook host names resolve (the system's getaddrinfo unless given). */
  constructor(
    stores: TenancyStores,
    config: Config,
    logger: Logger,
    messages: MessageStore = new MemoryMessageStore(),
    functions?: FunctionFactory,
    resolveHost?: HostResolver,
  ) {
    const store = stores.controlPlane;
    this.#store = store;
    this.#credentialStore = stores.credentials;
    this.#hookStore = stores.hooks;
    this.#functions = functions;
    this.#messages = messages;
    this.#config = config;
    this.#log = logger;
    this.#certificateIds = new CertificateClientIds(config.mtlsClientIdPattern);
    this.egress = EgressPolicy.fromConfig(config, resolveHost);
    this.anonymousAllowed =
      config.allowAnonymous === 'auto' ? servesOnlyThisMachine(config) : config.allowAnonymous === 'true';
    for (const record of store.allBrokers()) this.#add(record);
    this.pruneExpiredRevocations();
    this.#pruneTimer = setInterval(() => this.pruneExpiredRevocations(), PRUNE_INTERVAL_MS);
    this.#pruneTimer.unref();
  }

  /**
   * First start with an empty store: one account, namespace `local`, broker `default`
   * (anonymous, authType NONE) and an admin token. Later starts change nothing.
   */
  bootstrap(): BootstrapResult {
    const existing = this.#store.listAccounts()[0];
    if (existing !== undefined) return { account: existing, adminToken: undefined };
    const now = timestamp();
    const account: AccountRecord = { id: newId(), name: 'local', createdOn: now };
    const token = newApiToken();
    this.#store.transaction(() => {
      this.#store.createAccount(account);
      const ns: NamespaceRecord = {
        id: newId(),
        accountId: account.id,
        name: BOOTSTRAP_NAMESPACE,
        description: 'created at first start',
        createdOn: now,
        modifiedOn: now,
      };
      this.#store.createNamespace(ns);
      this.#store.createBroker({
        id: newId(),
        namespaceId: ns.id,
        name: BOOTSTRAP_BROKER,
        description: 'default broker of every listener; anonymous clients on loopback',
        authType: 'NONE',
        expiration: null,
        onPublishUrl: null,
        onPublishPolicy: 'fail-closed',
        onPublishTimeoutMs: null,
        createdOn: now,
        modifiedOn: now,
      });
      this.#store.createApiToken(
        {
          id: newId(),
          accountId: account.id,
          name: 'bootstrap admin token',
          issuedOn: now,
          lastUsedOn: null,
        },
        hashApiToken(token),
      );
    });
    for (const record of this.#store.allBrokers()) if (!this.#byId.has(record.id)) this.#add(record);
    return { account, adminToken: token };
  }

  get accounts(): AccountRecord[] {
    return this.#store.listAccounts();
  }

  /** All live tenants. */
  tenants(): IterableIterator<Tenant> {
    return this.#byId.values();
  }

  // Routing.

  /**
   * The tenant serving a new connection, and whether its authentication admits it. Routing: a
   * host name naming a broker, else the `aud` of a token in the password, else the default
   * broker. Refusals name their reason for the log (never the token itself).
   */
  admit(info: ConnectionInfo, credentials: Credentials): Admission {
    const named = brokerAddressOf(info.servername ?? info.host, this.#config.domain);
    const password = credentials.password;
    let tenant: Tenant | undefined;
    if (named !== undefined) {
      tenant = this.#byAddress.get(`${named.broker}.${named.namespace}`);
      if (tenant === undefined)
        return {
          refuse: 'NOT_AUTHORIZED',
          detail: `no broker ${named.broker} in namespace ${named.namespace}`,
        };
    } else {
      const aud =
        password !== undefined && password.length <= MAX_TOKEN_BYTES
          ? audienceOf(password.toString('utf8'))
          : undefined;
      if (aud !== undefined) {
        tenant = this.#byAddress.get(aud.toLowerCase());
        if (tenant === undefined)
          return { refuse: 'BAD_CREDENTIALS', detail: `token for unknown broker ${aud}` };
      } else {
        tenant = this.defaultTenant();
        if (tenant === undefined)
          return {
            refuse: 'SERVER_UNAVAILABLE',
            detail: `default broker ${this.#config.defaultBroker} does not exist`,
          };
      }
    }
    const authType = tenant.record.authType;
    if (authType === 'NONE') {
      if (!this.anonymousAllowed)
        return {
          refuse: 'NOT_AUTHORIZED',
          detail: 'anonymous access is off on this server (see --allow-anonymous)',
        };
      return { tenant, clientId: undefined, identity: { method: 'anonymous' } };
    }
    const certificate = info.clientCertificate;
    if (authType === 'MTLS_AND_TOKEN' && this.#config.mtlsAndToken === 'both')
      return this.#admitCertificateAndToken(tenant, info, credentials);
    if (authType === 'MTLS' || (authType === 'MTLS_AND_TOKEN' && certificate !== undefined))
      return this.#admitCertificate(tenant, info, credentials);
    return this.#admitToken(tenant, credentials);
  }

  /**
   * MTLS rules: a verified client certificate whose CN names a client id (the CN itself, or
   * through `--mtls-client-id-pattern`); the CONNECT's client id is that id or empty.
   */
  #admitCertificate(tenant: Tenant, info: ConnectionInfo, credentials: Credentials): Admission {
    const certificate = info.clientCertificate;
    if (certificate === undefined)
      return {
        refuse: 'NOT_AUTHORIZED',
        detail: 'broker requires a verified client certificate (mutual TLS)',
      };
    const cn = certificate.subjectCN;
    const clientId = this.#certificateIds.clientIdOf(cn);
    if (clientId === undefined)
      return {
        refuse: 'NOT_AUTHORIZED',
        detail: `certificate CN ${cn.slice(0, 64)} does not match --mtls-client-id-pattern`,
      };
    if (credentials.clientId !== '' && credentials.clientId !== clientId)
      return {
        refuse: 'CLIENT_ID_NOT_VALID',
        detail: `client id does not match certificate CN ${cn.slice(0, 64)} (client id ${clientId.slice(0, 64)})`,
      };
    return { tenant, clientId, identity: { method: 'certificate', certificate } };
  }

  /**
   * MTLS_AND_TOKEN with `--mtls-and-token both`: the certificate and the token must each admit
   * the client, and name the same client (the token's `sub` = the certificate's client id).
   * The identity is the token's (ACL, expiry, revocation) plus the certificate.
   */
  #admitCertificateAndToken(tenant: Tenant, info: ConnectionInfo, credentials: Credentials): Admission {
    const byCertificate = this.#admitCertificate(tenant, info, credentials);
    if ('refuse' in byCertificate) return byCertificate;
    const byToken = this.#admitToken(tenant, credentials);
    if ('refuse' in byToken) return byToken;
    if (byToken.clientId !== byCertificate.clientId)
      return {
        refuse: 'NOT_AUTHORIZED',
        detail: "the token's subject is not the client the certificate names",
      };
    return {
      tenant,
      clientId: byToken.clientId,
      identity: { ...byToken.identity, method: 'certificate+token', certificate: info.clientCertificate },
    };
  }

  /** TOKEN rules (reference section 2): password = JWT, client id = `sub` or empty. */
  #admitToken(tenant: Tenant, credentials: Credentials): Admission {
    const where = `${tenant.record.name}.${tenant.record.namespaceName}`;
    const password = credentials.password;
    if (password === undefined || password.length === 0)
      return { refuse: 'BAD_CREDENTIALS', detail: `broker ${where} requires a token as the password` };
    if (password.length > MAX_TOKEN_BYTES)
      return { refuse: 'BAD_CREDENTIALS', detail: `password longer than ${MAX_TOKEN_BYTES} bytes` };
    const result = this.#verifier.verify(password.toString('utf8'), tenant.credentials.keys, where);
    if (!result.ok) return { refuse: 'BAD_CREDENTIALS', detail: `token refused: ${result.reason}` };
    const token = result.token;
    if (tenant.credentials.revoked.has(token.jti))
      return { refuse: 'BAD_CREDENTIALS', detail: `token ${token.jti} is revoked` };
    if (credentials.clientId !== '' && credentials.clientId !== token.sub)
      return { refuse: 'CLIENT_ID_NOT_VALID', detail: `client id is not the token's subject` };
    const username = credentials.username;
    if (
      this.#config.requireUsernameMatch &&
      username !== undefined &&
      username !== '' &&
      username !== token.sub
    )
      return { refuse: 'BAD_CREDENTIALS', detail: 'user name does not match the client id' };
    // A token allowing everything (`#`, Cloudflare's only value) needs no per-message checks.
    const identity: ClientIdentity = { method: 'token', jti: token.jti, kid: token.kid };
    if (!allowsEverything(token.acl)) identity.acl = token.acl;
    if (token.exp !== undefined) identity.expiresAt = token.exp * 1000;
    return { tenant, clientId: token.sub, identity };
  }

  defaultTenant(): Tenant | undefined {
    return this.#byAddress.get(this.#config.defaultBroker.toLowerCase());
  }

  // Admin API tokens.

  /** The token record a presented secret belongs to, or undefined. */
  verifyApiToken(secret: string): ApiTokenRecord | undefined {
    const record = this.#store.apiTokenByHash(hashApiToken(secret));
    if (record === undefined) return undefined;
    const now = Date.now();
    if (now - (this.#touched.get(record.id) ?? 0) > TOUCH_INTERVAL_MS) {
      this.#touched.set(record.id, now);
      this.#store.touchApiToken(record.id, timestamp());
    }
    return record;
  }

  createApiToken(accountId: string, name: string): { record: ApiTokenRecord; value: string } {
    const value = newApiToken();
    const record: ApiTokenRecord = { id: newId(), accountId, name, issuedOn: timestamp(), lastUsedOn: null };
    this.#store.createApiToken(record, hashApiToken(value));
    return { record, value };
  }

  listApiTokens(accountId: string): ApiTokenRecord[] {
    return this.#store.listApiTokens(accountId);
  }

  deleteApiToken(accountId: string, id: string): void {
    if (!this.#store.deleteApiToken(accountId, id))
      throw new ApiError('TOKEN_NOT_FOUND', `no API token ${id}`);
    this.#touched.delete(id);
  }

  // Namespaces.

  createNamespace(accountId: string, input: { name: unknown; description?: string }): NamespaceRecord {
    const name = validName(input.name, 'namespace');
    const count = this.#store.countNamespaces(accountId);
    if (count >= this.#config.maxNamespacesPerAccount)
      throw new ApiError(
        'QUOTA_EXCEEDED',
        `account has ${count} namespaces, the maximum (--max-namespaces-per-account)`,
      );
    const now = timestamp();
    const record: NamespaceRecord = {
      id: newId(),
      accountId,
      name,
      description: input.description ?? '',
      createdOn: now,
      modifiedOn: now,
    };
    try {
      this.#store.createNamespace(record);
    } catch (err) {
      if (err instanceof ConflictError)
        throw new ApiError(
          'NAMESPACE_EXISTS',
          `namespace ${name} already exists (names are unique server-wide)`,
        );
      throw err;
    }
    this.#log.info({ namespace: name }, 'namespace created');
    return record;
  }

  listNamespaces(accountId: string, page: Page): { items: NamespaceRecord[]; total: number } {
    return {
      items: this.#store.listNamespaces(accountId, page.perPage, (page.page - 1) * page.perPage),
      total: this.#store.countNamespaces(accountId),
    };
  }

  getNamespace(accountId: string, name: string): NamespaceRecord {
    const canonical = canonicalName(name);
    const record = canonical === undefined ? undefined : this.#store.getNamespace(accountId, canonical);
    if (record === undefined) throw new ApiError('NAMESPACE_NOT_FOUND', `namespace ${name} not found`);
    return record;
  }

  /** Deletes a namespace; with brokers only when `cascade` (their clients are disconnected). */
  deleteNamespace(accountId: string, name: string, cascade: boolean): void {
    const ns = this.getNamespace(accountId, name);
    const brokers = this.#store.listBrokers(ns.id, Number.MAX_SAFE_INTEGER, 0);
    if (brokers.length > 0 && !cascade)
      throw new ApiError(
        'NAMESPACE_NOT_EMPTY',
        `namespace ${ns.name} has ${brokers.length} broker(s): delete them first, or delete with cascade=true`,
      );
    this.#store.transaction(() => {
      for (const b of brokers) this.#store.deleteBroker(b.id);
      this.#store.deleteNamespace(ns.id);
    });
    for (const b of brokers) this.#remove(b.id);
    this.#log.info({ namespace: ns.name, brokers: brokers.length }, 'namespace deleted');
  }

  // Brokers.

  createBroker(accountId: string, namespace: string, input: BrokerInput): BrokerRecord {
    const ns = this.getNamespace(accountId, namespace);
    const name = validName(input.name, 'broker');
    const count = this.#store.countBrokers(ns.id);
    if (count >= this.#config.maxBrokersPerNamespace)
      throw new ApiError(
        'QUOTA_EXCEEDED',
        `namespace ${ns.name} has ${count} brokers, the maximum (--max-brokers-per-namespace)`,
      );
    const now = timestamp();
    const row = {
      id: newId(),
      namespaceId: ns.id,
      name,
      description: input.description ?? '',
      authType: input.authType ?? 'TOKEN',
      expiration: input.expiration ?? null,
      onPublishUrl: input.onPublishUrl ?? null,
      onPublishPolicy: input.onPublishPolicy ?? 'fail-closed',
      onPublishTimeoutMs: input.onPublishTimeoutMs ?? null,
      createdOn: now,
      modifiedOn: now,
    };
    try {
      this.#store.createBroker(row);
    } catch (err) {
      if (err instanceof ConflictError)
        throw new ApiError('BROKER_EXISTS', `broker ${name} already exists in namespace ${ns.name}`);
      throw err;
    }
    const record = this.#store.getBroker(ns.id, name)!;
    this.#add(record);
    this.#log.info({ namespace: ns.name, broker: name, authType: record.authType }, 'broker created');
    return record;
  }

  listBrokers(accountId: string, namespace: string, page: Page): { items: BrokerRecord[]; total: number } {
    const ns = this.getNamespace(accountId, namespace);
    return {
      items: this.#store.listBrokers(ns.id, page.perPage, (page.page - 1) * page.perPage),
      total: this.#store.countBrokers(ns.id),
    };
  }

  getBroker(accountId: string, namespace: string, name: string): BrokerRecord {
    const ns = this.getNamespace(accountId, namespace);
    const canonical = canonicalName(name);
    const record = canonical === undefined ? undefined : this.#store.getBroker(ns.id, canonical);
    if (record === undefined)
      throw new ApiError('BROKER_NOT_FOUND', `broker ${name} not found in namespace ${ns.name}`);
    return record;
  }

  updateBroker(accountId: string, namespace: string, name: string, patch: BrokerPatch): BrokerRecord {
    const current = this.getBroker(accountId, namespace, name);
    const tenant = this.#byId.get(current.id);
    if (typeof patch.onPublishUrl === 'string' && tenant?.hooks.deployed !== undefined)
      throw new ApiError(
        'HOOK_CONFLICT',
        `broker ${current.name} runs an on-publish function (version ${tenant.hooks.deployed.version}); remove it before setting on_publish.url`,
      );
    this.#store.updateBroker(current.id, patch, timestamp());
    const record = this.#store.getBroker(current.namespaceId, current.name)!;
    if (tenant !== undefined) {
      tenant.record = record;
      tenant.hooks.update(record);
    }
    return record;
  }

  /** Deletes a broker: its clients get DISCONNECT 0x98 and its state is dropped. */
  deleteBroker(accountId: string, namespace: string, name: string): void {
    const record = this.getBroker(accountId, namespace, name);
    this.#store.deleteBroker(record.id);
    this.#remove(record.id);
    this.#log.info({ namespace: record.namespaceName, broker: record.name }, 'broker deleted');
  }

  // Credentials (keys, tokens, revocations).

  tenant(accountId: string, namespace: string, name: string): Tenant {
    const record = this.getBroker(accountId, namespace, name);
    return this.#byId.get(record.id)!;
  }

  /** Mints client tokens (reference section 1, `GET .../credentials`). */
  async issueCredentials(
    accountId: string,
    namespace: string,
    name: string,
    req: { number: number; clientIds: string[]; expiration: number | undefined; topicAcl: string[] },
  ): Promise<Record<string, string>> {
    const tenant = this.tenant(accountId, namespace, name);
    if (
      req.clientIds.length > MAX_TOKENS_PER_REQUEST ||
      req.number > MAX_TOKENS_PER_REQUEST ||
      req.number < 1
    )
      throw new ApiError('INVALID_PARAMETER', `number must be between 1 and ${MAX_TOKENS_PER_REQUEST}`);
    for (const id of req.clientIds)
      if (id === '' || Buffer.byteLength(id) > this.#config.maxClientIdLength)
        throw new ApiError(
          'INVALID_PARAMETER',
          `clientid must be 1 to ${this.#config.maxClientIdLength} bytes`,
        );
    try {
      parseTopicAcl(req.topicAcl);
    } catch (err) {
      throw new ApiError('INVALID_PARAMETER', (err as Error).message);
    }
    const { record } = tenant;
    const { tokens, issued } = await mintTokens(tenant.credentials.signingKey, {
      audience: `${record.name}.${record.namespaceName}`,
      brokerName: record.name,
      brokerExpiration: record.expiration,
      number: req.number,
      clientIds: req.clientIds,
      expiration: req.expiration,
      topicAcl: req.topicAcl,
    });
    tenant.credentials.recordIssued(issued);
    this.#log.info(
      { broker: `${record.name}.${record.namespaceName}`, count: Object.keys(tokens).length },
      'credentials issued',
    );
    return tokens;
  }

  publicKeys(accountId: string, namespace: string, name: string): ReturnType<BrokerCredentials['jwks']> {
    return this.tenant(accountId, namespace, name).credentials.jwks();
  }

  /** Retires the broker's oldest key and adds a new one; returns the new key set. */
  rotateKeys(accountId: string, namespace: string, name: string): ReturnType<BrokerCredentials['jwks']> {
    const tenant = this.tenant(accountId, namespace, name);
    const retired = tenant.credentials.rotate(timestamp());
    const disconnected = this.#disconnectWhere(
      tenant,
      (identity) => identity.kid === retired,
      'token signed by a retired key',
    );
    this.#log.info(
      { broker: `${tenant.record.name}.${tenant.record.namespaceName}`, retired, disconnected },
      'broker keys rotated',
    );
    return tenant.credentials.jwks();
  }

  revocations(accountId: string, namespace: string, name: string): string[] {
    return [...this.tenant(accountId, namespace, name).credentials.revoked];
  }

  /**
   * Revokes token ids: new connections with them are refused, and live connections that
   * authenticated with one are disconnected now (v5 DISCONNECT 0x98).
   */
  revoke(accountId: string, namespace: string, name: string, jtis: string[]): number {
    const tenant = this.tenant(accountId, namespace, name);
    this.pruneExpiredRevocations(); // expired tokens do not count against the limit
    if (!tenant.credentials.revoke(jtis, this.#config.maxRevocationsPerBroker, timestamp()))
      throw new ApiError(
        'QUOTA_EXCEEDED',
        `broker would hold more than ${this.#config.maxRevocationsPerBroker} revocations (--max-revocations-per-broker)`,
      );
    const revoked = new Set(jtis);
    const disconnected = this.#disconnectWhere(
      tenant,
      (identity) => identity.jti !== undefined && revoked.has(identity.jti),
      'token revoked',
    );
    this.#log.info(
      { broker: `${tenant.record.name}.${tenant.record.namespaceName}`, jtis: jtis.length, disconnected },
      'tokens revoked',
    );
    return disconnected;
  }

  /** Disconnects (v5 DISCONNECT 0x98) every live connection of the tenant whose identity matches. */
  #disconnectWhere(tenant: Tenant, matches: (identity: ClientIdentity) => boolean, why: string): number {
    let disconnected = 0;
    for (const session of [...tenant.broker.sessions.values()]) {
      const link = session.link;
      if (link?.identity !== undefined && matches(link.identity)) {
        link.disconnect('ADMINISTRATIVE_ACTION', why);
        disconnected++;
      }
    }
    return disconnected;
  }

  /** Drops revocations of tokens that have expired (they cannot connect anyway). */
  pruneExpiredRevocations(nowMs = Date.now()): number {
    const pruned = this.#credentialStore.pruneExpired(Math.floor(nowMs / 1000));
    for (const { brokerId, jti } of pruned) this.#byId.get(brokerId)?.credentials.forget(jti);
    if (pruned.length > 0)
      this.#log.info({ revocations: pruned.length }, 'revocations of expired tokens pruned');
    return pruned.length;
  }

  /** Stops background work (revocation pruning) and every broker's hook. */
  close(): void {
    clearInterval(this.#pruneTimer);
    for (const tenant of this.#byId.values()) tenant.hooks.close();
  }

  unrevoke(accountId: string, namespace: string, name: string, jtis: string[]): void {
    this.tenant(accountId, namespace, name).credentials.unrevoke(jtis);
  }

  // On-publish hooks.

  /**
   * Refuses (HTTP 400, code 14013) an on_publish.url whose host is, or resolves now to, an
   * address the egress policy refuses, or does not resolve. The tenant is not told which
   * address a name resolved to (that would map the internal network); the log says.
   */
  async checkWebhookUrl(url: string, broker: string): Promise<void> {
    const host = new URL(url).hostname;
    try {
      await this.egress.vet(host);
    } catch (err) {
      const refused = err instanceof EgressRefusedError;
      this.#log.warn({ broker, url, err: (err as Error).message }, 'on_publish.url refused');
      throw new ApiError(
        'HOOK_URL_REFUSED',
        refused
          ? `on_publish.url host ${host} is refused by the server's webhook egress policy: loopback, private, link-local, metadata and other internal addresses are not webhook targets unless the operator allows them`
          : `on_publish.url host ${host} does not resolve`,
      );
    }
  }

  hookView(accountId: string, namespace: string, name: string): HookView {
    return this.tenant(accountId, namespace, name).hooks.view();
  }

  deployFunction(
    accountId: string,
    namespace: string,
    name: string,
    code: string,
  ): Promise<DeployedFunction> {
    return this.tenant(accountId, namespace, name).hooks.deploy(code, timestamp());
  }

  removeFunction(accountId: string, namespace: string, name: string): void {
    const tenant = this.tenant(accountId, namespace, name);
    if (!tenant.hooks.removeFunction())
      throw new ApiError('FUNCTION_NOT_FOUND', `broker ${tenant.record.name} has no on-publish function`);
    this.#log.info(
      { broker: `${tenant.record.name}.${tenant.record.namespaceName}` },
      'on-publish function removed',
    );
  }

  #add(record: BrokerRecord): void {
    const broker = new Broker(record.id, this.#config, this.#messages);
    const credentials = new BrokerCredentials(this.#credentialStore, record.id, timestamp);
    const domain = this.#config.domain;
    const address = `${record.name}.${record.namespaceName}`;
    const hooks = new BrokerHooks(record, {
      publish: (message) => broker.publish(message),
      credentials,
      store: this.#hookStore,
      config: this.#config,
      log: this.#log,
      functions: this.#functions,
      egress: this.egress,
      brokerName: domain === '' ? address : `${address}.${domain}`,
    });
    broker.hooks = hooks;
    const tenant: Tenant = { record, broker, credentials, hooks };
    this.#byId.set(record.id, tenant);
    this.#byAddress.set(`${record.name}.${record.namespaceName}`, tenant);
  }

  #remove(id: string): void {
    const tenant = this.#byId.get(id);
    if (tenant === undefined) return;
    this.#byId.delete(id);
    this.#byAddress.delete(`${tenant.record.name}.${tenant.record.namespaceName}`);
    tenant.hooks.close();
    tenant.broker.close();
  }
}

export interface Page {
  page: number;
  perPage: number;
}

export interface BrokerInput {
  name: unknown;
  description?: string;
  authType?: AuthType;
  expiration?: number | null;
  onPublishUrl?: string | null;
  onPublishPolicy?: HookFailurePolicy;
  onPublishTimeoutMs?: number | null;
}

function validName(name: unknown, what: string): string {
  const canonical = canonicalName(name);
  if (canonical === undefined)
    throw new ApiError('NAME_INVALID', `invalid ${what} name: ${nameProblem(name)}`);
  return canonical;
}
