/**
 * The tenants of one server, as one object for the server, the admin routes and tests: a facade
 * over the parts of this folder, each owning one concern. It holds no logic of its own beyond
 * finding the live tenant an admin call names.
 *
 * - registry.ts, tenant.ts, bootstrap.ts: the live Broker of every broker row; the first start.
 * - admission.ts, routing.ts: which broker a CONNECT names and whether it is admitted.
 * - accounts.ts, broker-directory.ts: accounts, namespaces and brokers.
 * - api-tokens.ts, token-scope.ts: admin API tokens and what each may do.
 * - client-credentials.ts: client tokens, key rotation, revocation and its pruning.
 * - hook-deployment.ts: webhook URL vetting, function deployment.
 *
 * Invariant: every part shares one TenantRegistry, so a broker row and its live tenant are
 * created and deleted together whichever entry point changes them.
 */
import type { Logger } from 'pino';
import { FailureLimiter } from '../auth/index.ts';
import type { Broker, BrokerBus } from '../broker/index.ts';
import type { Config } from '../config.ts';
import {
  type DeployedFunction,
  EgressPolicy,
  type FunctionFactory,
  type HookView,
  type HostResolver,
} from '../hooks/index.ts';
import {
  type AccountRecord,
  type ApiTokenRecord,
  type BrokerPatch,
  type BrokerRecord,
  type ControlPlaneStore,
  MemoryMessageStore,
  type MessageStore,
  type NamespaceRecord,
  type TenancyStores,
} from '../store/index.ts';
import { AccountDirectory } from './accounts.ts';
import {
  type Admission,
  type AdmissionInfo,
  ConnectAdmission,
  type ConnectCredentials,
} from './admission.ts';
import { ApiTokens, type TokenRequest } from './api-tokens.ts';
import { type BootstrapResult, bootstrap } from './bootstrap.ts';
import { BrokerDirectory, type BrokerInput, type Page } from './broker-directory.ts';
import { ClientCredentials, type IssueRequest, type KeySet } from './client-credentials.ts';
import { ControlReplica } from './control-replica.ts';
import { HookDeployment } from './hook-deployment.ts';
import { TenantRegistry } from './registry.ts';
import type { Tenant } from './tenant.ts';

export class Tenancy {
  readonly #store: ControlPlaneStore;
  readonly #config: Config;
  readonly #registry: TenantRegistry;
  readonly #admission: ConnectAdmission;
  readonly #apiTokens: ApiTokens;
  readonly #directory: BrokerDirectory;
  readonly #accounts: AccountDirectory;
  readonly #credentials: ClientCredentials;
  readonly #hooks: HookDeployment;
  readonly #stores: TenancyStores;
  readonly #log: Logger;
  /** Whether brokers of authType NONE admit anyone (`--allow-anonymous`). */
  readonly anonymousAllowed: boolean;
  /** Where webhooks may connect: checked when on_publish.url is set and at every connection. */
  readonly egress: EgressPolicy;
  /** The message store every broker writes to (its commit figures are metrics). */
  readonly messages: MessageStore;
  /** Failed authentications per source address, MQTT and admin API alike (src/auth/failure-limiter.ts). */
  readonly authFailures: FailureLimiter;

  /** `resolveHost`: how webhook host names resolve (the system's getaddrinfo unless given). */
  constructor(
    stores: TenancyStores,
    config: Config,
    logger: Logger,
    messages: MessageStore = new MemoryMessageStore(),
    functions?: FunctionFactory,
    resolveHost?: HostResolver,
  ) {
    this.#store = stores.controlPlane;
    this.#stores = stores;
    this.#log = logger;
    this.#config = config;
    this.messages = messages;
    this.egress = EgressPolicy.fromConfig(config, resolveHost);
    this.#registry = new TenantRegistry({
      config,
      log: logger,
      messages,
      credentialStore: stores.credentials,
      hookStore: stores.hooks,
      functions,
      egress: this.egress,
    });
    for (const record of this.#store.allBrokers()) this.#registry.open(record);
    this.authFailures = new FailureLimiter({
      limit: config.authFailureLimit,
      windowMs: config.authFailureWindow,
      banMs: config.authBanTime,
      delayMs: config.authFailureDelay,
    });
    this.#admission = new ConnectAdmission(this.#registry, config, this.authFailures);
    this.anonymousAllowed = this.#admission.anonymousAllowed;
    this.#apiTokens = new ApiTokens(this.#store);
    this.#directory = new BrokerDirectory(this.#store, this.#registry, config, logger);
    this.#accounts = new AccountDirectory(this.#store, this.#directory, logger);
    this.#credentials = new ClientCredentials(stores.credentials, this.#registry, config, logger);
    this.#hooks = new HookDeployment(this.egress, logger);
  }

  /** Cluster mode (src/cluster): every broker, open now or later, forwards through its bus. */
  attachBus(busFor: (broker: Broker) => BrokerBus): void {
    this.#registry.attachBus(busFor);
  }

  /** Cluster mode (src/cluster/control-sync.ts): the control plane as records, and their application here. */
  controlReplica(): ControlReplica {
    return new ControlReplica(this.#stores.rows, this.#store, this.#registry, this.#log);
  }

  /** First start with an empty store: account, namespace `local`, broker `default`, admin token. */
  bootstrap(): BootstrapResult {
    return bootstrap(this.#store, this.#registry);
  }

  get accounts(): AccountRecord[] {
    return this.#store.listAccounts();
  }

  // Accounts (accounts.ts).

  /** The account of an id (ACCOUNT_NOT_FOUND when there is none). */
  account(id: string): AccountRecord {
    return this.#accounts.get(id);
  }
  createAccount(name: unknown): AccountRecord {
    return this.#accounts.create(name);
  }
  renameAccount(id: string, name: unknown): AccountRecord {
    return this.#accounts.rename(id, name);
  }
  /** Deletes an account, its namespaces and brokers (clients disconnected) and its tokens. */
  deleteAccount(id: string): void {
    this.#accounts.delete(id);
  }

  /** All live tenants. */
  tenants(): IterableIterator<Tenant> {
    return this.#registry.all();
  }

  defaultTenant(): Tenant | undefined {
    return this.#registry.byAddress(this.#config.defaultBroker);
  }

  /** The live tenant of a broker the admin API names (BROKER_NOT_FOUND when there is none). */
  tenant(accountId: string, namespace: string, name: string): Tenant {
    const record = this.#directory.getBroker(accountId, namespace, name);
    return this.#registry.byId(record.id)!;
  }

  /** Stops background work (revocation pruning) and every broker's hook. */
  close(): void {
    this.#credentials.close();
    for (const tenant of this.#registry.all()) tenant.hooks.close();
  }

  // CONNECT (admission.ts).

  admit(info: AdmissionInfo, credentials: ConnectCredentials): Admission {
    return this.#admission.admit(info, credentials);
  }

  // Admin API tokens (api-tokens.ts).

  verifyApiToken(secret: string): ApiTokenRecord | undefined {
    return this.#apiTokens.verify(secret);
  }
  /** A token owned by `accountId`, its grant bounded by its `creator`'s (token-scope.ts). */
  createApiToken(
    creator: ApiTokenRecord,
    accountId: string,
    request: TokenRequest,
  ): { record: ApiTokenRecord; value: string } {
    return this.#apiTokens.create(creator, accountId, request);
  }
  listApiTokens(accountId: string): ApiTokenRecord[] {
    return this.#apiTokens.list(accountId);
  }
  getApiToken(accountId: string, id: string): ApiTokenRecord {
    return this.#apiTokens.get(accountId, id);
  }
  /** Replaces a token's name and grant; both it and the new grant must lie within `caller`'s. */
  updateApiToken(
    caller: ApiTokenRecord,
    accountId: string,
    id: string,
    request: TokenRequest,
  ): ApiTokenRecord {
    return this.#apiTokens.update(caller, accountId, id, request);
  }
  /** A new secret for the token (returned once); the old one stops working at once. */
  rollApiToken(caller: ApiTokenRecord, accountId: string, id: string): string {
    return this.#apiTokens.roll(caller, accountId, id);
  }
  /** Revokes a token; `caller` may revoke only tokens within its own grant. */
  deleteApiToken(caller: ApiTokenRecord, accountId: string, id: string): void {
    this.#apiTokens.delete(caller, accountId, id);
  }

  // Namespaces and brokers (broker-directory.ts).

  createNamespace(accountId: string, input: { name: unknown; description?: string }): NamespaceRecord {
    return this.#directory.createNamespace(accountId, input);
  }
  listNamespaces(accountId: string, page: Page): { items: NamespaceRecord[]; total: number } {
    return this.#directory.listNamespaces(accountId, page);
  }
  getNamespace(accountId: string, name: string): NamespaceRecord {
    return this.#directory.getNamespace(accountId, name);
  }
  deleteNamespace(accountId: string, name: string, cascade: boolean): void {
    this.#directory.deleteNamespace(accountId, name, cascade);
  }
  createBroker(accountId: string, namespace: string, input: BrokerInput): BrokerRecord {
    return this.#directory.createBroker(accountId, namespace, input);
  }
  listBrokers(accountId: string, namespace: string, page: Page): { items: BrokerRecord[]; total: number } {
    return this.#directory.listBrokers(accountId, namespace, page);
  }
  getBroker(accountId: string, namespace: string, name: string): BrokerRecord {
    return this.#directory.getBroker(accountId, namespace, name);
  }
  updateBroker(accountId: string, namespace: string, name: string, patch: BrokerPatch): BrokerRecord {
    return this.#directory.updateBroker(accountId, namespace, name, patch);
  }
  deleteBroker(accountId: string, namespace: string, name: string): void {
    this.#directory.deleteBroker(accountId, namespace, name);
  }

  // Client credentials (client-credentials.ts).

  issueCredentials(
    accountId: string,
    namespace: string,
    name: string,
    req: IssueRequest,
  ): Promise<Record<string, string>> {
    return this.#credentials.issue(this.tenant(accountId, namespace, name), req);
  }
  publicKeys(accountId: string, namespace: string, name: string): KeySet {
    return this.tenant(accountId, namespace, name).credentials.jwks();
  }
  rotateKeys(accountId: string, namespace: string, name: string): KeySet {
    return this.#credentials.rotateKeys(this.tenant(accountId, namespace, name));
  }
  revocations(accountId: string, namespace: string, name: string): string[] {
    return [...this.tenant(accountId, namespace, name).credentials.revoked];
  }
  revoke(accountId: string, namespace: string, name: string, jtis: string[]): number {
    return this.#credentials.revoke(this.tenant(accountId, namespace, name), jtis);
  }
  unrevoke(accountId: string, namespace: string, name: string, jtis: string[]): void {
    this.tenant(accountId, namespace, name).credentials.unrevoke(jtis);
  }
  pruneExpiredRevocations(nowMs = Date.now()): number {
    return this.#credentials.pruneExpiredRevocations(nowMs);
  }

  // On-publish hooks (hook-deployment.ts).

  checkWebhookUrl(url: string, broker: string): Promise<void> {
    return this.#hooks.checkWebhookUrl(url, broker);
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
    return this.#hooks.deployFunction(this.tenant(accountId, namespace, name), code);
  }
  removeFunction(accountId: string, namespace: string, name: string): void {
    this.#hooks.removeFunction(this.tenant(accountId, namespace, name));
  }
}

export { BOOTSTRAP_BROKER, BOOTSTRAP_NAMESPACE } from './bootstrap.ts';
export type { Admission, BootstrapResult, BrokerInput, Page, Tenant, TokenRequest };
