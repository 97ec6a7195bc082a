/**
 * The live credential state of one broker: its signing keys (oldest first; the newest signs) and
 * its revoked token ids, mirrored from the credential store so that CONNECT checks touch memory
 * only. Every change goes to the store first, then to memory.
 */
import type { JWK } from 'jose';
import type { CredentialStore } from '../store/index.ts';
import { generateSigningKey, KEYS_PER_BROKER, loadSigningKey, type SigningKey } from './key-set.ts';

export class BrokerCredentials {
  readonly brokerId: string;
  /** kid → key, oldest first. */
  readonly keys = new Map<string, SigningKey>();
  readonly revoked = new Set<string>();
  readonly #store: CredentialStore;

  constructor(store: CredentialStore, brokerId: string, now: () => string) {
    this.#store = store;
    this.brokerId = brokerId;
    for (const k of store.keys(brokerId)) this.keys.set(k.kid, loadSigningKey(k.kid, k.privateJwk));
    while (this.keys.size < KEYS_PER_BROKER) this.#addKey(now());
    for (const jti of store.revocations(brokerId)) this.revoked.add(jti);
  }

  /** The key new tokens are signed with: the newest. */
  get signingKey(): SigningKey {
    return [...this.keys.values()].at(-1)!;
  }

  /** The public key set, as `/publickeys` returns it. */
  jwks(): { keys: JWK[] } {
    return { keys: [...this.keys.values()].map((k) => k.publicJwk) };
  }

  /** Retires the oldest key (tokens it signed stop working) and adds a new one; returns the retired kid. */
  rotate(now: string): string {
    const oldest = this.keys.keys().next().value!;
    this.#store.deleteKey(oldest);
    this.keys.delete(oldest);
    this.#addKey(now);
    return oldest;
  }

  #addKey(now: string): void {
    const { kid, privateJwk } = generateSigningKey();
    this.#store.addKey({ kid, brokerId: this.brokerId, privateJwk, createdOn: now });
    this.keys.set(kid, loadSigningKey(kid, privateJwk));
  }

  /**
   * Takes the key set as the store holds it now (cluster mode: a rotation made on another node
   * reached this one's store); returns the kids that are gone (their tokens stop working).
   */
  reloadKeys(): string[] {
    const stored = this.#store.keys(this.brokerId);
    const retired = [...this.keys.keys()].filter((kid) => !stored.some((k) => k.kid === kid));
    const kept = new Map(this.keys);
    this.keys.clear();
    for (const k of stored) this.keys.set(k.kid, kept.get(k.kid) ?? loadSigningKey(k.kid, k.privateJwk));
    return retired;
  }

  /** Revokes token ids; false when the list would pass `limit` (nothing is changed then). */
  revoke(jtis: string[], limit: number, now: string): boolean {
    const fresh = jtis.filter((j) => !this.revoked.has(j));
    if (this.revoked.size + new Set(fresh).size > limit) return false;
    this.#store.revoke(this.brokerId, fresh, now);
    for (const j of fresh) this.revoked.add(j);
    return true;
  }

  /** Records the expiry of tokens just minted, so their revocations can be pruned later. */
  recordIssued(tokens: { jti: string; exp: number | undefined }[]): void {
    this.#store.recordIssued(this.brokerId, tokens);
  }

  /** Forgets revocations the store pruned (their tokens expired). */
  forget(jti: string): void {
    this.revoked.delete(jti);
  }

  unrevoke(jtis: string[]): void {
    this.#store.unrevoke(this.brokerId, jtis);
    for (const j of jtis) this.revoked.delete(j);
  }
}
