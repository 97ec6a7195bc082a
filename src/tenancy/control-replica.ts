/**
 * Cluster mode's view of this node's control plane as records under keys (src/cluster/
 * control-sync.ts keeps them in a JetStream KV bucket, the cluster's source of truth): the
 * whole of it as key → JSON (`snapshot`), one record as the snapshot holds it (`record`), and
 * one record of the bucket made this node's (`apply`), in the store and in the live tenants alike.
 *
 * Keys, parents before children (the order `snapshot` lists them in, and the order a node's
 * changes are written to the bucket, so that every node applies a parent before its children):
 *   a.<account id>                    accounts row
 *   n.<namespace>                     namespaces row (names are unique cluster-wide, so a clash
 *                                     of two creates is a clash of keys)
 *   b.<namespace>.<broker>            { broker: brokers row, keys: its broker_keys rows }
 *   t.<token id>                      api_tokens row (without last_used_on: per node)
 *   i.<broker id>.<jti>               issued_tokens row (a minted token's expiry)
 *   r.<broker id>.<jti>               revocations row
 *   h.<broker id>                     hook_functions row (its key-value state stays per node)
 * A jti that is not plain `[A-Za-z0-9_-]` (ULIDs are) is `=` + its base64url.
 *
 * Invariants:
 * - `apply` makes the live state follow the row, as the API's own write paths do: a broker
 *   record opens, refreshes or closes its tenant (closing disconnects its clients, 0x98); a key
 *   set that lost a key disconnects the holders of tokens it signed; a revocation disconnects
 *   the holders of that token (0x98) and refuses it from then on; a function is loaded or
 *   removed. Applying a record the node already has changes nothing.
 * - A record whose name is held locally by another id (two nodes created the same name) gives
 *   way: the local one is deleted with its children first.
 */
import type { Logger } from 'pino';
import type { ColumnValue, ControlPlaneStore, ControlRows, Row } from '../store/index.ts';
import { disconnectWhere } from './client-credentials.ts';
import type { TenantRegistry } from './registry.ts';
import { refreshTenant } from './tenant.ts';

/** Key kinds in the order parents come before children. */
export const KEY_KINDS = ['a', 'n', 'b', 't', 'i', 'r', 'h'] as const;

/** The kind's position in `KEY_KINDS` (unknown kinds last). */
export function kindRank(key: string): number {
  const rank = (KEY_KINDS as readonly string[]).indexOf(key.slice(0, key.indexOf('.')));
  return rank < 0 ? KEY_KINDS.length : rank;
}

const PLAIN = /^[A-Za-z0-9_-]+$/;
const jtiKey = (jti: string): string =>
  PLAIN.test(jti) ? jti : `=${Buffer.from(jti).toString('base64url')}`;
const jtiOf = (token: string): string =>
  token.startsWith('=') ? Buffer.from(token.slice(1), 'base64url').toString() : token;

interface BrokerValue {
  broker: Row;
  keys: Row[];
}

export class ControlReplica {
  readonly #rows: ControlRows;
  readonly #store: ControlPlaneStore;
  readonly #registry: TenantRegistry;
  readonly #log: Logger;

  constructor(rows: ControlRows, store: ControlPlaneStore, registry: TenantRegistry, log: Logger) {
    this.#rows = rows;
    this.#store = store;
    this.#registry = registry;
    this.#log = log;
  }

  /** The whole control plane of this node, key → JSON, parents first. */
  snapshot(): Map<string, string> {
    const rows = this.#rows;
    const out = new Map<string, string>();
    const put = (key: string, value: unknown) => out.set(key, JSON.stringify(value));
    for (const r of rows.all('accounts')) put(`a.${r.id}`, r);
    const namespaceName = new Map<ColumnValue, ColumnValue>();
    for (const r of rows.all('namespaces')) {
      namespaceName.set(r.id!, r.name!);
      put(`n.${r.name}`, r);
    }
    const keys = new Map<ColumnValue, Row[]>();
    for (const k of rows.all('broker_keys')) {
      const list = keys.get(k.broker_id!) ?? [];
      list.push(k);
      keys.set(k.broker_id!, list);
    }
    for (const b of rows.all('brokers'))
      put(`b.${namespaceName.get(b.namespace_id!)}.${b.name}`, { broker: b, keys: keys.get(b.id!) ?? [] });
    for (const r of rows.all('api_tokens')) put(`t.${r.id}`, r);
    for (const r of rows.all('issued_tokens')) put(`i.${r.broker_id}.${jtiKey(String(r.jti))}`, r);
    for (const r of rows.all('revocations')) put(`r.${r.broker_id}.${jtiKey(String(r.jti))}`, r);
    for (const r of rows.all('hook_functions')) put(`h.${r.broker_id}`, r);
    return out;
  }

  /** This node's record under `key` as `snapshot` holds it (undefined: none), read alone. */
  record(key: string): string | undefined {
    const [kind, first = '', second = ''] = key.split('.');
    const rows = this.#rows;
    let value: unknown;
    switch (kind) {
      case 'a':
        value = rows.one('accounts', { id: first });
        break;
      case 'n':
        value = this.#namespaceByName(first);
        break;
      case 'b': {
        const broker = this.#brokerByAddress(first, second);
        value = broker && { broker, keys: rows.where('broker_keys', 'broker_id', broker.id!) };
        break;
      }
      case 't':
        value = rows.one('api_tokens', { id: first });
        break;
      case 'i':
        value = rows.one('issued_tokens', { broker_id: first, jti: jtiOf(second) });
        break;
      case 'r':
        value = rows.one('revocations', { broker_id: first, jti: jtiOf(second) });
        break;
      case 'h':
        value = rows.one('hook_functions', { broker_id: first });
        break;
    }
    return value === undefined ? undefined : JSON.stringify(value);
  }

  /** Makes the bucket's record under `key` this node's; `json` undefined: the record is deleted. */
  apply(key: string, json: string | undefined): void {
    const [kind, first = '', second = ''] = key.split('.');
    const value = json === undefined ? undefined : (JSON.parse(json) as Row);
    const rows = this.#rows;
    switch (kind) {
      case 'a':
        if (value !== undefined) rows.upsert('accounts', value);
        else this.#dropAccount(first);
        return;
      case 'n':
        if (value !== undefined) this.#putNamespace(value);
        else this.#dropNamespace(this.#namespaceByName(first));
        return;
      case 'b':
        if (value !== undefined) this.#putBroker(value as unknown as BrokerValue);
        else this.#dropBroker(this.#brokerByAddress(first, second));
        return;
      case 't':
        if (value !== undefined) rows.upsert('api_tokens', value);
        else rows.delete('api_tokens', { id: first });
        return;
      case 'i':
        if (value !== undefined) rows.upsert('issued_tokens', value);
        else rows.delete('issued_tokens', { broker_id: first, jti: jtiOf(second) });
        return;
      case 'r':
        this.#revocation(first, value ?? { broker_id: first, jti: jtiOf(second) }, value !== undefined);
        return;
      case 'h':
        if (value !== undefined) rows.upsert('hook_functions', value);
        else {
          rows.delete('hook_functions', { broker_id: first });
          rows.deleteHookState(first);
        }
        this.#registry.byId(first)?.hooks.loadStored();
        return;
      default:
        this.#log.warn({ key }, 'control-plane record of an unknown kind ignored');
    }
  }

  #namespaceByName(name: string): Row | undefined {
    return this.#rows.where('namespaces', 'name', name)[0];
  }

  #brokerByAddress(namespace: string, name: string): Row | undefined {
    const ns = this.#namespaceByName(namespace);
    return ns && this.#rows.where('brokers', 'namespace_id', ns.id!).find((b) => b.name === name);
  }

  #putNamespace(value: Row): void {
    const held = this.#namespaceByName(String(value.name));
    if (held !== undefined && held.id !== value.id)
      this.#giveWay('namespace', held, () => this.#dropNamespace(held));
    this.#rows.upsert('namespaces', value);
  }

  #putBroker({ broker, keys }: BrokerValue): void {
    const rows = this.#rows;
    const ns = rows.where('namespaces', 'id', broker.namespace_id!)[0];
    if (ns === undefined) throw new Error(`broker ${broker.name}: namespace ${broker.namespace_id} not here`);
    const held = rows.where('brokers', 'namespace_id', ns.id!).find((b) => b.name === broker.name);
    if (held !== undefined && held.id !== broker.id)
      this.#giveWay('broker', held, () => this.#dropBroker(held));
    const id = String(broker.id);
    rows.transaction(() => {
      rows.upsert('brokers', broker);
      for (const k of rows.where('broker_keys', 'broker_id', id))
        if (!keys.some((n) => n.kid === k.kid)) rows.delete('broker_keys', k);
      for (const k of keys) rows.upsert('broker_keys', k);
    });
    const record = this.#store.getBroker(String(ns.id), String(broker.name))!;
    const tenant = this.#registry.byId(id);
    if (tenant === undefined) {
      this.#registry.open(record);
      return;
    }
    refreshTenant(tenant, record);
    const retired = new Set(tenant.credentials.reloadKeys());
    if (retired.size > 0)
      disconnectWhere(
        tenant,
        (identity) => identity.kid !== undefined && retired.has(identity.kid),
        'token signed by a retired key',
      );
  }

  #revocation(brokerId: string, row: Row, revoked: boolean): void {
    const jti = String(row.jti);
    const tenant = this.#registry.byId(brokerId);
    if (!revoked) {
      this.#rows.delete('revocations', row);
      tenant?.credentials.forget(jti);
      return;
    }
    if (tenant === undefined && this.#rows.where('brokers', 'id', brokerId).length === 0) return;
    this.#rows.upsert('revocations', row);
    if (tenant === undefined || tenant.credentials.revoked.has(jti)) return;
    tenant.credentials.revoked.add(jti);
    disconnectWhere(tenant, (identity) => identity.jti === jti, 'token revoked');
  }

  #giveWay(what: string, held: Row, drop: () => void): void {
    this.#log.warn(
      { event: 'control_plane_replaced', [what]: held.name, id: held.id },
      `${what} ${held.name} of this node gives way to the cluster's record of that name`,
    );
    drop();
  }

  #dropBroker(row: Row | undefined): void {
    if (row === undefined) return;
    this.#rows.delete('brokers', row); // keys, revocations, issued tokens and function cascade
    this.#registry.close(String(row.id));
  }

  #dropNamespace(row: Row | undefined): void {
    if (row === undefined) return;
    for (const b of this.#rows.where('brokers', 'namespace_id', row.id!)) this.#dropBroker(b);
    this.#rows.delete('namespaces', row);
  }

  #dropAccount(id: string): void {
    for (const ns of this.#rows.where('namespaces', 'account_id', id)) this.#dropNamespace(ns);
    this.#store.transaction(() => this.#store.deleteAccount(id));
  }
}
