/**
 * The first start: an empty control plane gets one account, namespace `local`, broker `default`
 * and an admin token with the `operator` permission (every account, the account routes), in one
 * transaction.
 *
 * Invariants:
 * - Runs its writes at most once per database: a store that has an account is left as it is,
 *   and the admin token is returned in clear only by the start that created it (the store keeps
 *   its hash).
 * - Broker `default` is authType NONE: anonymous clients, admitted only while the server's
 *   `--allow-anonymous` allows (see admission.ts).
 */
import { hashApiToken, newApiToken } from '../auth/index.ts';
import type { AccountRecord, ControlPlaneStore, NamespaceRecord } from '../store/index.ts';
import { newId, timestamp } from './ids.ts';
import type { TenantRegistry } from './registry.ts';

export const BOOTSTRAP_NAMESPACE = 'local';
export const BOOTSTRAP_BROKER = 'default';

export interface BootstrapResult {
  account: AccountRecord;
  /** The admin token, in clear, only on the start that created it. */
  adminToken: string | undefined;
}

/** Creates the first account, namespace, broker and admin token when the store has no account. */
export function bootstrap(store: ControlPlaneStore, registry: TenantRegistry): BootstrapResult {
  const existing = store.listAccounts()[0];
  if (existing !== undefined) return { account: existing, adminToken: undefined };
  const now = timestamp();
  const account: AccountRecord = { id: newId(), name: 'local', createdOn: now };
  const token = newApiToken();
  store.transaction(() => {
    store.createAccount(account);
    const ns: NamespaceRecord = {
      id: newId(),
      accountId: account.id,
      name: BOOTSTRAP_NAMESPACE,
      description: 'created at first start',
      createdOn: now,
      modifiedOn: now,
    };
    store.createNamespace(ns);
    store.createBroker({
      id: newId(),
      namespaceId: ns.id,
      name: BOOTSTRAP_BROKER,
      description: 'default broker of every listener; anonymous clients on loopback',
      authType: 'NONE',
      expiration: null,
      onPublishUrl: null,
      onPublishPolicy: 'fail-closed',
      onPublishTimeoutMs: null,
      sysTopics: true,
      mtlsClientIdPattern: null,
      limits: {},
      createdOn: now,
      modifiedOn: now,
    });
    store.createApiToken(
      {
        id: newId(),
        accountId: account.id,
        name: 'bootstrap admin token',
        issuedOn: now,
        lastUsedOn: null,
        permissions: ['operator'],
        accounts: [account.id],
        namespaces: null,
        brokers: null,
        expiresOn: null,
        notBefore: null,
        condition: null,
      },
      hashApiToken(token),
    );
  });
  for (const record of store.allBrokers()) if (registry.byId(record.id) === undefined) registry.open(record);
  return { account, adminToken: token };
}
