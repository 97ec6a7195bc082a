/**
 * Client credentials of brokers: minting tokens, the key set (publish, rotate) and the
 * revocation list (revoke, unrevoke, prune). Every operation takes the live Tenant it acts on.
 *
 * Invariants:
 * - A revocation or a key rotation takes effect at once: new CONNECTs with the token (or a
 *   retired key) are refused, and live connections that authenticated with it are disconnected
 *   (v5 DISCONNECT 0x98, ADMINISTRATIVE_ACTION).
 * - Revocations of tokens that have expired are pruned (at start and every 10 minutes, and before
 *   a revoke is counted against `--max-revocations-per-broker`): they cannot connect anyway.
 * - Every refusal is a catalogue ApiError (src/errors.ts).
 */
import type { Logger } from 'pino';
import {
  type BrokerCredentials,
  type ClientIdentity,
  MAX_TOKENS_PER_REQUEST,
  mintTokens,
  parseTopicAcl,
} from '../auth/index.ts';
import type { Config } from '../config.ts';
import { ApiError } from '../errors.ts';
import type { CredentialStore } from '../store/index.ts';
import { timestamp } from './ids.ts';
import type { TenantRegistry } from './registry.ts';
import { addressOf, type Tenant } from './tenant.ts';

/** How often revocations of expired tokens are pruned. */
const PRUNE_INTERVAL_MS = 10 * 60_000;

export interface IssueRequest {
  number: number;
  clientIds: string[];
  expiration: number | undefined;
  topicAcl: string[];
}

export type KeySet = ReturnType<BrokerCredentials['jwks']>;

export class ClientCredentials {
  readonly #store: CredentialStore;
  readonly #registry: TenantRegistry;
  readonly #config: Config;
  readonly #log: Logger;
  readonly #pruneTimer: NodeJS.Timeout;

  constructor(store: CredentialStore, registry: TenantRegistry, config: Config, log: Logger) {
    this.#store = store;
    this.#registry = registry;
    this.#config = config;
    this.#log = log;
    this.pruneExpiredRevocations();
    this.#pruneTimer = setInterval(() => this.pruneExpiredRevocations(), PRUNE_INTERVAL_MS);
    this.#pruneTimer.unref();
  }

  /** Mints client tokens (reference section 1, `GET .../credentials`). */
  async issue(tenant: Tenant, req: IssueRequest): Promise<Record<string, string>> {
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
      audience: addressOf(record),
      brokerName: record.name,
      brokerExpiration: record.expiration,
      number: req.number,
      clientIds: req.clientIds,
      expiration: req.expiration,
      topicAcl: req.topicAcl,
    });
    tenant.credentials.recordIssued(issued);
    this.#log.info({ broker: addressOf(record), count: Object.keys(tokens).length }, 'credentials issued');
    return tokens;
  }

  /** Retires the broker's oldest key and adds a new one; returns the new key set. */
  rotateKeys(tenant: Tenant): KeySet {
    const retired = tenant.credentials.rotate(timestamp());
    const disconnected = disconnectWhere(
      tenant,
      (identity) => identity.kid === retired,
      'token signed by a retired key',
    );
    this.#log.info({ broker: addressOf(tenant.record), retired, disconnected }, 'broker keys rotated');
    return tenant.credentials.jwks();
  }

  /**
   * Revokes token ids: new connections with them are refused, and live connections that
   * authenticated with one are disconnected now (v5 DISCONNECT 0x98). Returns how many.
   */
  revoke(tenant: Tenant, jtis: string[]): number {
    this.pruneExpiredRevocations(); // expired tokens do not count against the limit
    if (!tenant.credentials.revoke(jtis, this.#config.maxRevocationsPerBroker, timestamp()))
      throw new ApiError(
        'QUOTA_EXCEEDED',
        `broker would hold more than ${this.#config.maxRevocationsPerBroker} revocations (--max-revocations-per-broker)`,
      );
    const revoked = new Set(jtis);
    const disconnected = disconnectWhere(
      tenant,
      (identity) => identity.jti !== undefined && revoked.has(identity.jti),
      'token revoked',
    );
    this.#log.info({ broker: addressOf(tenant.record), jtis: jtis.length, disconnected }, 'tokens revoked');
    return disconnected;
  }

  /** Drops revocations of tokens that have expired (they cannot connect anyway). */
  pruneExpiredRevocations(nowMs = Date.now()): number {
    const pruned = this.#store.pruneExpired(Math.floor(nowMs / 1000));
    for (const { brokerId, jti } of pruned) this.#registry.byId(brokerId)?.credentials.forget(jti);
    if (pruned.length > 0)
      this.#log.info({ revocations: pruned.length }, 'revocations of expired tokens pruned');
    return pruned.length;
  }

  /** Stops the pruning timer. */
  close(): void {
    clearInterval(this.#pruneTimer);
  }
}

/** Disconnects (v5 DISCONNECT 0x98) every live connection of the tenant whose identity matches. */
export function disconnectWhere(
  tenant: Tenant,
  matches: (identity: ClientIdentity) => boolean,
  why: string,
): number {
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
