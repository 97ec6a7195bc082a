/**
 * The control plane's rows as plain column objects, for cluster mode's replica of them
 * (src/tenancy/control-replica.ts): read every replicated table whole, and upsert or delete one
 * row by its primary key. Nothing here knows what a row means; the replica does.
 *
 * Invariants:
 * - Only the tables and columns below are written, whatever a row holds: a row's column names
 *   are checked against the table's (they come from the cluster's bucket, not from SQL text).
 * - An upsert updates in place (ON CONFLICT DO UPDATE), never REPLACE: replacing a broker row
 *   would cascade to its keys, revocations and function.
 * - Per-node columns are not replicated: an API token's `last_used_on` (written by whichever
 *   node served the request, at most once a minute) and a function's key-value state
 *   (`hook_state`, not listed).
 */
import { SqlStore } from './database.ts';

export type ColumnValue = string | number | null;
export type Row = Record<string, ColumnValue>;

/** The replicated tables, parents before children, with their primary key columns. */
export const CONTROL_TABLES = {
  accounts: ['id'],
  namespaces: ['id'],
  brokers: ['id'],
  broker_keys: ['kid'],
  api_tokens: ['id'],
  issued_tokens: ['broker_id', 'jti'],
  revocations: ['broker_id', 'jti'],
  hook_functions: ['broker_id'],
} as const satisfies Record<string, readonly string[]>;

export type ControlTable = keyof typeof CONTROL_TABLES;

/** Columns kept per node (see the header). */
const LOCAL_COLUMNS: Partial<Record<ControlTable, readonly string[]>> = { api_tokens: ['last_used_on'] };
/** Tables read in another order than their key's: a broker's keys oldest first, as the credential store reads them. */
const ORDER: Partial<Record<ControlTable, string>> = { broker_keys: 'created_on, rowid' };

/** The order `all` and `where` read a table in. */
const orderOf = (table: ControlTable): string => ORDER[table] ?? CONTROL_TABLES[table].join(', ');
/** `pk1 = ? AND pk2 = ?`: the row of one primary key. */
const keyClause = (table: ControlTable): string =>
  CONTROL_TABLES[table].map((c: string) => `${c} = ?`).join(' AND ');
/** The values `keyClause` binds, from the key columns of `key`. */
const keyValues = (table: ControlTable, key: Row): ColumnValue[] =>
  CONTROL_TABLES[table].map((c: string) => key[c] ?? null);

export class ControlRows extends SqlStore {
  readonly #columns = new Map<ControlTable, string[]>();

  /** The replicated columns of a table, in the table's order. */
  columns(table: ControlTable): string[] {
    let cols = this.#columns.get(table);
    if (cols === undefined) {
      const local = LOCAL_COLUMNS[table] ?? [];
      cols = (this.db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[])
        .map((c) => c.name)
        .filter((name) => !local.includes(name));
      this.#columns.set(table, cols);
    }
    return cols;
  }

  /** Every row of a table (replicated columns only), in primary key order (keys: oldest first). */
  all(table: ControlTable): Row[] {
    return this.q(
      `SELECT ${this.columns(table).join(', ')} FROM ${table} ORDER BY ${orderOf(table)}`,
    ).all() as Row[];
  }

  /** Inserts the row, or updates the row of its primary key in place. */
  upsert(table: ControlTable, row: Row): void {
    const known = this.columns(table);
    const cols = Object.keys(row).filter((c) => known.includes(c));
    const pk: readonly string[] = CONTROL_TABLES[table];
    for (const c of pk) if (!cols.includes(c)) throw new Error(`${table} row without ${c}`);
    const sets = cols.filter((c) => !pk.includes(c)).map((c) => `${c} = excluded.${c}`);
    this.q(
      `INSERT INTO ${table} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})
       ON CONFLICT (${pk.join(', ')}) DO ${sets.length === 0 ? 'NOTHING' : `UPDATE SET ${sets.join(', ')}`}`,
    ).run(...cols.map((c) => row[c] ?? null));
  }

  /** Deletes the row with the primary key of `key` (the key columns of a row); true when there was one. */
  delete(table: ControlTable, key: Row): boolean {
    return (
      Number(this.q(`DELETE FROM ${table} WHERE ${keyClause(table)}`).run(...keyValues(table, key)).changes) >
      0
    );
  }

  /** Rows of a table whose `column` is `value` (children of a parent row), in `all`'s order. */
  where(table: ControlTable, column: string, value: ColumnValue): Row[] {
    if (!this.columns(table).includes(column)) throw new Error(`${table} has no column ${column}`);
    return this.q(
      `SELECT ${this.columns(table).join(', ')} FROM ${table} WHERE ${column} = ? ORDER BY ${orderOf(table)}`,
    ).all(value) as Row[];
  }

  /** The row with the primary key of `key` (the key columns of a row), if any. */
  one(table: ControlTable, key: Row): Row | undefined {
    return this.q(`SELECT ${this.columns(table).join(', ')} FROM ${table} WHERE ${keyClause(table)}`).get(
      ...keyValues(table, key),
    ) as Row | undefined;
  }

  /** Deletes a function's key-value state (it goes with the function it belongs to). */
  deleteHookState(brokerId: string): void {
    this.q('DELETE FROM hook_state WHERE broker_id = ?').run(brokerId);
  }
}
