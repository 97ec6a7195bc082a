/**
 * Namespaces and brokers of an account: create, list, describe, update, delete, with quotas.
 *
 * Invariants:
 * - Names are DNS labels, stored lower-cased (names.ts); namespace names are unique on the
 *   server, broker names within their namespace; the store's schema enforces both and a clash
 *   is reported as NAMESPACE_EXISTS / BROKER_EXISTS.
 * - The registry follows every row change: a created broker is opened, an updated one
 *   refreshed, a deleted one closed (its clients get DISCONNECT 0x98, its state is dropped).
 * - A namespace with brokers is deleted only with `cascade`, in one transaction with them.
 * - Every refusal is a catalogue ApiError (src/errors.ts), never a raw store error.
 */
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { ApiError, type ApiErrorCode } from '../errors.ts';
import {
  type AuthType,
  type BrokerPatch,
  type BrokerRecord,
  ConflictError,
  type ControlPlaneStore,
  type HookFailurePolicy,
  type LimitChanges,
  mergeLimits,
  type NamespaceRecord,
} from '../store/index.ts';
import { newId, timestamp } from './ids.ts';
import { canonicalName, nameProblem } from './names.ts';
import type { TenantRegistry } from './registry.ts';
import { refreshTenant } from './tenant.ts';

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
  sysTopics?: boolean;
  mtlsClientIdPattern?: string | null;
  limits?: LimitChanges;
}

export class BrokerDirectory {
  readonly #store: ControlPlaneStore;
  readonly #registry: TenantRegistry;
  readonly #config: Config;
  readonly #log: Logger;

  constructor(store: ControlPlaneStore, registry: TenantRegistry, config: Config, log: Logger) {
    this.#store = store;
    this.#registry = registry;
    this.#config = config;
    this.#log = log;
  }

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
    insertUnique(
      () => this.#store.createNamespace(record),
      'NAMESPACE_EXISTS',
      `namespace ${name} already exists (names are unique server-wide)`,
    );
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
    for (const b of brokers) this.#registry.delete(b.id);
    this.#log.info({ namespace: ns.name, brokers: brokers.length }, 'namespace deleted');
  }

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
      sysTopics: input.sysTopics ?? true,
      mtlsClientIdPattern: input.mtlsClientIdPattern ?? null,
      limits: mergeLimits({}, input.limits ?? {}),
      createdOn: now,
      modifiedOn: now,
    };
    insertUnique(
      () => this.#store.createBroker(row),
      'BROKER_EXISTS',
      `broker ${name} already exists in namespace ${ns.name}`,
    );
    const record = this.#store.getBroker(ns.id, name)!;
    this.#registry.open(record);
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
    const tenant = this.#registry.byId(current.id);
    if (typeof patch.onPublishUrl === 'string' && tenant?.hooks.deployed !== undefined)
      throw new ApiError(
        'HOOK_CONFLICT',
        `broker ${current.name} runs an on-publish function (version ${tenant.hooks.deployed.version}); remove it before setting on_publish.url`,
      );
    this.#store.updateBroker(current.id, patch, timestamp());
    const record = this.#store.getBroker(current.namespaceId, current.name)!;
    if (tenant !== undefined) refreshTenant(tenant, record);
    return record;
  }

  /** Deletes a broker: its clients get DISCONNECT 0x98 and its state is dropped. */
  deleteBroker(accountId: string, namespace: string, name: string): void {
    const record = this.getBroker(accountId, namespace, name);
    this.#store.deleteBroker(record.id);
    this.#registry.delete(record.id);
    this.#log.info({ namespace: record.namespaceName, broker: record.name }, 'broker deleted');
  }
}

/** Runs a store insert, reporting a clash with an existing name as the catalogue error `code`. */
function insertUnique(insert: () => void, code: ApiErrorCode, message: string): void {
  try {
    insert();
  } catch (err) {
    if (err instanceof ConflictError) throw new ApiError(code, message);
    throw err;
  }
}

function validName(name: unknown, what: string): string {
  const canonical = canonicalName(name);
  if (canonical === undefined)
    throw new ApiError('NAME_INVALID', `invalid ${what} name: ${nameProblem(name)}`);
  return canonical;
}
