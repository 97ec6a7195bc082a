/**
 * Credential state of brokers in the embedded database: each broker's Ed25519 signing keys
 * (private JWKs, newest last) and its revoked token ids. Rows go with their broker
 * (ON DELETE CASCADE). Revocations are bounded per broker by the caller's limit.
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { Statements } from './database.ts';

export interface BrokerKeyRecord {
  kid: string;
  brokerId: string;
  /** The private key as a JWK (kty OKP, crv Ed25519, x, d). */
  privateJwk: string;
  createdOn: string;
}

type Row = Record<string, unknown>;

export class CredentialStore {
  readonly #statements: Statements;

  constructor(db: DatabaseSync) {
    this.#statements = new Statements(db);
  }

  #q(sql: string): StatementSync {
    return this.#statements.get(sql);
  }

  /** A broker's keys, oldest first. */
  keys(brokerId: string): BrokerKeyRecord[] {
    return (
      this.#q('SELECT * FROM broker_keys WHERE broker_id = ? ORDER BY created_on, rowid').all(
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
    this.#q('INSERT INTO broker_keys (kid, broker_id, private_jwk, created_on) VALUES (?, ?, ?, ?)').run(
      k.kid,
      k.brokerId,
      k.privateJwk,
      k.createdOn,
    );
  }

  deleteKey(kid: string): void {
    this.#q('DELETE FROM broker_keys WHERE kid = ?').run(kid);
  }

  revocations(brokerId: string): string[] {
    return (
      this.#q('SELECT jti FROM revocations WHERE broker_id = ? ORDER BY revoked_on, jti').all(
        brokerId,
      ) as Row[]
    ).map((r) => r.jti as string);
  }

  countRevocations(brokerId: string): number {
    return Number(
      (this.#q('SELECT count(*) AS c FROM revocations WHERE broker_id = ?').get(brokerId) as Row).c,
    );
  }

  /** Adds revocations; already-revoked ids are left as they were. Returns how many were new. */
  revoke(brokerId: string, jtis: string[], when: string): number {
    let added = 0;
    const insert = this.#q('INSERT OR IGNORE INTO revocations (broker_id, jti, revoked_on) VALUES (?, ?, ?)');
    for (const jti of jtis) added += Number(insert.run(brokerId, jti, when).changes);
    return added;
  }

  unrevoke(brokerId: string, jtis: string[]): number {
    let removed = 0;
    const del = this.#q('DELETE FROM revocations WHERE broker_id = ? AND jti = ?');
    for (const jti of jtis) removed += Number(del.run(brokerId, jti).changes);
    return removed;
  }
}
