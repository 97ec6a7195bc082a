/**
 * Accounts: create, rename, delete (the operator's routes). An account owns its namespaces (and
 * so its brokers, their keys, credentials and state) and its API tokens.
 *
 * Invariants:
 * - Deleting an account deletes its namespaces through the broker directory's own cascade (each
 *   broker closed: its clients get DISCONNECT 0x98, its state dropped), then its tokens and its
 *   row, and takes it out of the account lists of other accounts' tokens.
 * - An account name is free text (1..100 characters, trimmed); ids are what the API routes by.
 * - An unknown id is ACCOUNT_NOT_FOUND (404, 7003), the same answer as an account the caller may
 *   not see.
 */
import type { Logger } from 'pino';
import { ApiError } from '../errors.ts';
import type { AccountRecord, ControlPlaneStore } from '../store/index.ts';
import type { BrokerDirectory } from './broker-directory.ts';
import { newId, timestamp } from './ids.ts';

const NAME_MAX = 100;

export class AccountDirectory {
  readonly #store: ControlPlaneStore;
  readonly #directory: BrokerDirectory;
  readonly #log: Logger;

  constructor(store: ControlPlaneStore, directory: BrokerDirectory, log: Logger) {
    this.#store = store;
    this.#directory = directory;
    this.#log = log;
  }

  get(id: string): AccountRecord {
    const account = this.#store.getAccount(id);
    if (account === undefined) throw new ApiError('ACCOUNT_NOT_FOUND', `could not route to account ${id}`);
    return account;
  }

  create(name: unknown): AccountRecord {
    const account: AccountRecord = { id: newId(), name: validName(name), createdOn: timestamp() };
    this.#store.createAccount(account);
    this.#log.info({ account: account.id }, 'account created');
    return account;
  }

  rename(id: string, name: unknown): AccountRecord {
    this.get(id);
    this.#store.renameAccount(id, validName(name));
    return this.get(id);
  }

  /** Deletes an account and everything under it; its brokers' clients are disconnected. */
  delete(id: string): void {
    this.get(id);
    const namespaces = this.#store.listNamespaces(id, Number.MAX_SAFE_INTEGER, 0);
    for (const ns of namespaces) this.#directory.deleteNamespace(id, ns.name, true);
    this.#store.transaction(() => this.#store.deleteAccount(id));
    this.#log.info({ account: id, namespaces: namespaces.length }, 'account deleted');
  }
}

function validName(name: unknown): string {
  const trimmed = typeof name === 'string' ? name.trim() : '';
  if (trimmed === '' || trimmed.length > NAME_MAX)
    throw new ApiError('INVALID_PARAMETER', `account name must be 1 to ${NAME_MAX} characters`);
  return trimmed;
}
