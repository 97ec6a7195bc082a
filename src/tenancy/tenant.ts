/**
 * One tenant: a broker row of the control plane with its live parts: the Broker (topic index,
 * retained messages, sessions), its credentials (key set, revocations) and its on-publish hooks.
 *
 * Invariants:
 * - `openTenant` is the one place a Broker and its BrokerHooks are made and wired together, and
 *   `closeTenant` the one place both are stopped: hooks first (nothing more is decided for a
 *   closing broker), then the broker (its clients get DISCONNECT 0x98, its state is dropped).
 * - `record` is the row as last written: `refreshTenant` follows every update of the row.
 * - Nothing of one tenant is reachable from another; each has its own Broker, keys and hooks.
 */
import type { Logger } from 'pino';
import { BrokerCredentials } from '../auth/index.ts';
import { Broker, type BrokerBus } from '../broker/index.ts';
import type { Config } from '../config.ts';
import { BrokerHooks, type EgressPolicy, type FunctionFactory } from '../hooks/index.ts';
import type { BrokerRecord, CredentialStore, HookStore, MessageStore } from '../store/index.ts';
import { timestamp } from './ids.ts';

export interface Tenant {
  record: BrokerRecord;
  broker: Broker;
  credentials: BrokerCredentials;
  hooks: BrokerHooks;
}

/** What every tenant is made with: the server's shared stores, settings and policies. */
export interface TenantDeps {
  config: Config;
  log: Logger;
  messages: MessageStore;
  credentialStore: CredentialStore;
  hookStore: HookStore;
  functions: FunctionFactory | undefined;
  egress: EgressPolicy;
  /** Cluster mode: makes each broker's bus (src/cluster); set once the cluster starts. */
  busFor?: ((broker: Broker) => BrokerBus) | undefined;
}

/** `<broker>.<namespace>`: how a broker is named in tokens (`aud`), logs and user names. */
export const addressOf = (record: Pick<BrokerRecord, 'name' | 'namespaceName'>): string =>
  `${record.name}.${record.namespaceName}`;

/** Makes the live parts of a broker row. */
export function openTenant(record: BrokerRecord, deps: TenantDeps): Tenant {
  const broker = new Broker(record.id, deps.config, deps.messages);
  const credentials = new BrokerCredentials(deps.credentialStore, record.id, timestamp);
  const domain = deps.config.domain;
  const address = addressOf(record);
  broker.address = address;
  broker.log = deps.log;
  broker.sysTopics = record.sysTopics;
  broker.setLimits(record.limits);
  const hooks = new BrokerHooks(record, {
    publish: (message) => broker.publish(message),
    credentials,
    store: deps.hookStore,
    config: deps.config,
    log: deps.log,
    functions: deps.functions,
    egress: deps.egress,
    brokerName: domain === '' ? address : `${address}.${domain}`,
  });
  broker.hooks = hooks;
  if (deps.busFor !== undefined) broker.bus = deps.busFor(broker);
  return { record, broker, credentials, hooks };
}

/** Follows an update of the row (description, auth type, on-publish settings, $SYS tree, limits). */
export function refreshTenant(tenant: Tenant, record: BrokerRecord): void {
  tenant.record = record;
  tenant.broker.sysTopics = record.sysTopics;
  tenant.broker.setLimits(record.limits);
  tenant.hooks.update(record);
}

/** Stops a tenant whose row was deleted: its clients are disconnected (0x98), its state dropped. */
export function closeTenant(tenant: Tenant): void {
  tenant.hooks.close();
  tenant.broker.close();
}
