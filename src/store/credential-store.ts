/**
 * Credential state of brokers in the embedded database: each broker's Ed25519 signing keys
 * (private JWKs, newest last) and its revoked token ids. Rows go with their broker
 * (ON DELETE CASCADE). Revocations are bounded per broker by the caller's limit.
 *
 * Expiry: the `exp` of every token minted with one is kept in `issued_tokens` until it passes;
 * a revocation of such a token carries it, and `pruneExpired` drops both kinds of row once the
 * token could no longer connect anyway, so the revocation list holds only what still matters.
 */
import { SqlStore } from './database.ts';

export interface BrokerKeyRecord {
  kid: string;
  brokerId: string;
  /** The private key as a JWK (kty OKP, crv Ed25519, x, d). */
  privateJwk: string;
  createdOn: string;
}

type Row = Record<string, unknown>;

export class CredentialStore extends SqlStore {
  /** A broker's keys, oldest first. */
  keys(brokerId: string): BrokerKeyRecord[] {
    return (
      this.q('SELECT * FROM broker_keys WHERE broker_id = ? ORDER BY created_on, rowid').all(
        brokerId,
      ) as Row[]
    ).map((r) => ({
      kid: r.kid as string,
      brokerId: r.broker_id as string,
      privateJwk: r.private_jwk as string,
      createdOn: r.created_on as string,
    }));
  }

  addKey(k: BrokerKeyRecord): void {
    this.q('INSERT INTO broker_keys (kid, broker_id, private_jwk, created_on) VALUES (?, ?, ?, ?)').run(
      k.kid,
      k.brokerId,
      k.privateJwk,
      k.createdOn,
    );
  }

  deleteKey(kid: string): void {
    this.q('DELETE FROM broker_keys WHERE kid = ?').run(kid);
  }

  revocations(brokerId: string): string[] {
    return (
      this.q('SELECT jti FROM revocations WHERE broker_id = ? ORDER BY revoked_on, jti').all(
        brokerId,
      ) as Row[]
    ).map((r) => r.jti as string);
  }

  countRevocations(brokerId: string): number {
    return Number(
      (this.q('SELECT count(*) AS c FROM revocations WHERE broker_id = ?').get(brokerId) as Row).c,
    );
  }

  /** Adds revocations; already-revoked ids are left as they were. Returns how many were new. */
  revoke(brokerId: string, jtis: string[], when: string): number {
    let added = 0;
    const insert = this.q(
      `INSERT OR IGNORE INTO revocations (broker_id, jti, revoked_on, expires_at)
       VALUES (?, ?, ?, (SELECT expires_at FROM issued_tokens WHERE broker_id = ? AND jti = ?))`,
    );
    for (const jti of jtis) added += Number(insert.run(brokerId, jti, when, brokerId, jti).changes);
    return added;
  }

  unrevoke(brokerId: string, jtis: string[]): number {
    let removed = 0;
    const del = this.q('DELETE FROM revocations WHERE broker_id = ? AND jti = ?');
    for (const jti of jtis) removed += Number(del.run(brokerId, jti).changes);
    return removed;
  }

  /** Records the expiry (unix seconds) of minted tokens that have one. */
  recordIssued(brokerId: string, tokens: { jti: string; exp: number | undefined }[]): void {
    const insert = this.q(
      'INSERT OR IGNORE INTO issued_tokens (broker_id, jti, expires_at) VALUES (?, ?, ?)',
    );
    for (const t of tokens) if (t.exp !== undefined) insert.run(brokerId, t.jti, t.exp);
  }

  /** Drops revocations and issue records of tokens expired at `nowSeconds`; returns the revocations dropped. */
  pruneExpired(nowSeconds: number): { brokerId: string; jti: string }[] {
    this.q('DELETE FROM issued_tokens WHERE expires_at <= ?').run(nowSeconds);
    return (
      this.q('DELETE FROM revocations WHERE expires_at <= ? RETURNING broker_id, jti').all(
        nowSeconds,
      ) as Row[]
    ).map((r) => ({ brokerId: r.broker_id as string, jti: r.jti as string }));
  }
}
