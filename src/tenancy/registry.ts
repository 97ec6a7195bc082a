/**
 * The live tenants of the server, by broker id and by address `<broker>.<namespace>`.
 *
 * Invariants:
 * - Exactly one live Tenant per broker row: `open` is called when a row is created (or found at
 *   start), `close` when it is deleted; opening a row twice is a bug and throws.
 * - Addresses are lower-case (names are stored lower-cased), so lookups lower-case their input.
 * - `hasNamespace` answers from memory: a namespace counts while it holds at least one broker.
 *   CONNECT routing reads only this registry, never the database.
 */
import type { Broker, BrokerBus } from '../broker/index.ts';
import type { BrokerRecord } from '../store/index.ts';
import { addressOf, closeTenant, openTenant, type Tenant, type TenantDeps } from './tenant.ts';

export class TenantRegistry {
  readonly #deps: TenantDeps;
  readonly #byId = new Map<string, Tenant>();
  readonly #byAddress = new Map<string, Tenant>();
  /** Live brokers per namespace name. */
  readonly #perNamespace = new Map<string, number>();

  constructor(deps: TenantDeps) {
    this.#deps = deps;
  }

  open(record: BrokerRecord): Tenant {
    if (this.#byId.has(record.id)) throw new Error(`broker ${addressOf(record)} is already open`);
    const tenant = openTenant(record, this.#deps);
    this.#byId.set(record.id, tenant);
    this.#byAddress.set(addressOf(record), tenant);
    this.#perNamespace.set(record.namespaceName, (this.#perNamespace.get(record.namespaceName) ?? 0) + 1);
    return tenant;
  }

  /**
   * A broker deleted through this node's API: its cluster-wide state goes (the bus, in cluster
   * mode), then its tenant closes. A node following a deletion made elsewhere only closes.
   */
  delete(id: string): void {
    this.#byId.get(id)?.broker.bus?.deleted();
    this.close(id);
  }

  /** Closes the tenant of a deleted row (no-op when it is not open). */
  close(id: string): void {
    const tenant = this.#byId.get(id);
    if (tenant === undefined) return;
    const { namespaceName } = tenant.record;
    this.#byId.delete(id);
    this.#byAddress.delete(addressOf(tenant.record));
    const left = (this.#perNamespace.get(namespaceName) ?? 1) - 1;
    if (left === 0) this.#perNamespace.delete(namespaceName);
    else this.#perNamespace.set(namespaceName, left);
    closeTenant(tenant);
  }

  /** Cluster mode: every broker, open now or opened later, gets the bus `busFor` makes for it. */
  attachBus(busFor: (broker: Broker) => BrokerBus): void {
    this.#deps.busFor = busFor;
    for (const tenant of this.#byId.values()) tenant.broker.bus = busFor(tenant.broker);
  }

  byId(id: string): Tenant | undefined {
    return this.#byId.get(id);
  }

  /** The tenant at `<broker>.<namespace>` (any case). */
  byAddress(address: string): Tenant | undefined {
    return this.#byAddress.get(address.toLowerCase());
  }

  /** Whether a namespace of this name holds a live broker. */
  hasNamespace(name: string): boolean {
    return this.#perNamespace.has(name.toLowerCase());
  }

  all(): IterableIterator<Tenant> {
    return this.#byId.values();
  }
}
