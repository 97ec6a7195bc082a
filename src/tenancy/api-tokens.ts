/**
 * The admin API's bearer tokens: opaque secrets, one set per account.
 *
 * Invariants:
 * - Only a token's hash is stored; its value is returned once, when it is created.
 * - A token's last-used time is informational, so it is written at most once a minute per
 *   token, not on every request.
 * - A refusal is a catalogue ApiError (TOKEN_NOT_FOUND), never a raw store error.
 */
import { hashApiToken, newApiToken } from '../auth/index.ts';
import { ApiError } from '../errors.ts';
import type { ApiTokenRecord, ControlPlaneStore } from '../store/index.ts';
import { newId, timestamp } from './ids.ts';

/** How often a token's last-used time is written, at most. */
const TOUCH_INTERVAL_MS = 60_000;

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

  create(accountId: string, name: string): { record: ApiTokenRecord; value: string } {
    const value = newApiToken();
    const record: ApiTokenRecord = { id: newId(), accountId, name, issuedOn: timestamp(), lastUsedOn: null };
    this.#store.createApiToken(record, hashApiToken(value));
    return { record, value };
  }

  list(accountId: string): ApiTokenRecord[] {
    return this.#store.listApiTokens(accountId);
  }

  delete(accountId: string, id: string): void {
    if (!this.#store.deleteApiToken(accountId, id))
      throw new ApiError('TOKEN_NOT_FOUND', `no API token ${id}`);
    this.#touched.delete(id);
  }
}
