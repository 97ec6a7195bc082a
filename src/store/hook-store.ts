/**
 * On-publish hook state of brokers in the embedded database: the deployed function (one per
 * broker, replaced whole) and the function's key-value state. Rows go with their broker
 * (ON DELETE CASCADE). Versions come from a counter on the broker row, so a version number is
 * never reused for a broker, even after the function was removed.
 */
import { SqlStore } from './database.ts';

export interface HookFunctionRecord {
  brokerId: string;
  version: number;
  code: string;
  /** Hex SHA-256 of the code, to tell deployments apart. */
  sha256: string;
  deployedOn: string;
}

type Row = Record<string, unknown>;

export class HookStore extends SqlStore {
  functionOf(brokerId: string): HookFunctionRecord | undefined {
    const r = this.q('SELECT * FROM hook_functions WHERE broker_id = ?').get(brokerId) as Row | undefined;
    if (r === undefined) return undefined;
    return {
      brokerId,
      version: Number(r.version),
      code: r.code as string,
      sha256: r.sha256 as string,
      deployedOn: r.deployed_on as string,
    };
  }

  /** Stores a new deployment, replacing the previous one; returns its version. */
  deployFunction(brokerId: string, code: string, sha256: string, deployedOn: string): number {
    return this.transaction(() => {
      this.q('UPDATE brokers SET hook_function_version = hook_function_version + 1 WHERE id = ?').run(
        brokerId,
      );
      const version = Number(
        (this.q('SELECT hook_function_version AS v FROM brokers WHERE id = ?').get(brokerId) as Row).v,
      );
      this.q(
        `INSERT INTO hook_functions (broker_id, version, code, sha256, deployed_on) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (broker_id) DO UPDATE SET version = excluded.version, code = excluded.code,
           sha256 = excluded.sha256, deployed_on = excluded.deployed_on`,
      ).run(brokerId, version, code, sha256, deployedOn);
      return version;
    });
  }

  /** Removes the deployed function and its state; false when there was none. */
  removeFunction(brokerId: string): boolean {
    return this.transaction(() => {
      this.q('DELETE FROM hook_state WHERE broker_id = ?').run(brokerId);
      return Number(this.q('DELETE FROM hook_functions WHERE broker_id = ?').run(brokerId).changes) > 0;
    });
  }

  /** The function's key-value state (JSON texts by key). */
  state(brokerId: string): Map<string, string> {
    const rows = this.q('SELECT key, value FROM hook_state WHERE broker_id = ?').all(brokerId) as Row[];
    return new Map(rows.map((r) => [r.key as string, r.value as string]));
  }

  /** Applies one call's state changes (undefined value: delete), in one transaction. */
  writeState(brokerId: string, changes: ReadonlyMap<string, string | undefined>): void {
    if (changes.size === 0) return;
    this.transaction(() => {
      const put = this.q(
        'INSERT INTO hook_state (broker_id, key, value) VALUES (?, ?, ?) ON CONFLICT (broker_id, key) DO UPDATE SET value = excluded.value',
      );
      const del = this.q('DELETE FROM hook_state WHERE broker_id = ? AND key = ?');
      for (const [key, value] of changes) {
        if (value === undefined) del.run(brokerId, key);
        else put.run(brokerId, key, value);
      }
    });
  }
}
