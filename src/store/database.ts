/**
 * The embedded database: one SQLite file, `<data-dir>/pubsub.db`, opened with the built-in
 * `node:sqlite` (no native build), or an in-memory database for `--data-dir :memory:`.
 *
 * Invariants:
 * - WAL journal with synchronous=NORMAL: a committed transaction survives a process crash
 *   (SIGKILL), which is the durability contract; readers never block the writer.
 * - The schema is created and upgraded by numbered migrations; PRAGMA user_version records the
 *   last one applied, so a newer database opened by an older server is refused, not damaged.
 * - A new database file is created mode 0600: it holds broker signing keys.
 * - A file that is not a SQLite database (or is corrupt) is reported with its path and what to
 *   do; it is never replaced or deleted.
 */
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';

export class StoreError extends Error {
  override name = 'StoreError';
}

/** A migration: SQL run once, in order, inside a transaction. */
export type Migration = string;

/** The control plane's schema. Later migrations append; never edit a shipped one. */
export const MIGRATIONS: readonly Migration[] = [
  `CREATE TABLE accounts (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     created_on TEXT NOT NULL
   );
   CREATE TABLE namespaces (
     id TEXT PRIMARY KEY,
     account_id TEXT NOT NULL REFERENCES accounts(id),
     name TEXT NOT NULL UNIQUE,
     description TEXT NOT NULL DEFAULT '',
     created_on TEXT NOT NULL,
     modified_on TEXT NOT NULL
   );
   CREATE INDEX namespaces_by_account ON namespaces(account_id, name);
   CREATE TABLE brokers (
     id TEXT PRIMARY KEY,
     namespace_id TEXT NOT NULL REFERENCES namespaces(id),
     name TEXT NOT NULL,
     description TEXT NOT NULL DEFAULT '',
     auth_type TEXT NOT NULL,
     expiration INTEGER,
     on_publish_url TEXT,
     created_on TEXT NOT NULL,
     modified_on TEXT NOT NULL,
     UNIQUE (namespace_id, name)
   );
   CREATE TABLE api_tokens (
     id TEXT PRIMARY KEY,
     account_id TEXT NOT NULL REFERENCES accounts(id),
     name TEXT NOT NULL,
     hash TEXT NOT NULL UNIQUE,
     issued_on TEXT NOT NULL,
     last_used_on TEXT
   );`,
  // Issue 6: per-broker Ed25519 key sets and revoked token ids (both go with their broker).
  `CREATE TABLE broker_keys (
     kid TEXT PRIMARY KEY,
     broker_id TEXT NOT NULL REFERENCES brokers(id) ON DELETE CASCADE,
     private_jwk TEXT NOT NULL,
     created_on TEXT NOT NULL
   );
   CREATE INDEX broker_keys_by_broker ON broker_keys(broker_id, created_on);
   CREATE TABLE revocations (
     broker_id TEXT NOT NULL REFERENCES brokers(id) ON DELETE CASCADE,
     jti TEXT NOT NULL,
     revoked_on TEXT NOT NULL,
     PRIMARY KEY (broker_id, jti)
   ) WITHOUT ROWID;`,
  // Issue 7: message state (src/store/sqlite-message-store.ts). No foreign key to brokers: the
  // check would cost every message write; Broker.close deletes a broker's rows instead.
  `CREATE TABLE retained (
     broker_id TEXT NOT NULL,
     topic TEXT NOT NULL,
     payload BLOB NOT NULL,
     qos INTEGER NOT NULL,
     properties TEXT,
     sender_id TEXT,
     received_at INTEGER NOT NULL,
     expires_at INTEGER,
     UNIQUE (broker_id, topic)
   );
   CREATE TABLE sessions (
     broker_id TEXT NOT NULL,
     client_id TEXT NOT NULL,
     expiry_interval INTEGER NOT NULL,
     expires_at INTEGER,
     will TEXT,
     PRIMARY KEY (broker_id, client_id)
   ) WITHOUT ROWID;
   CREATE TABLE subscriptions (
     broker_id TEXT NOT NULL,
     client_id TEXT NOT NULL,
     topic_filter TEXT NOT NULL,
     qos INTEGER NOT NULL,
     no_local INTEGER NOT NULL,
     retain_as_published INTEGER NOT NULL,
     retain_handling INTEGER NOT NULL,
     subscription_id INTEGER,
     PRIMARY KEY (broker_id, client_id, topic_filter)
   ) WITHOUT ROWID;
   CREATE TABLE outbound (
     seq INTEGER PRIMARY KEY,
     broker_id TEXT NOT NULL,
     client_id TEXT NOT NULL,
     state INTEGER NOT NULL,
     packet_id INTEGER NOT NULL,
     qos INTEGER NOT NULL,
     retain INTEGER NOT NULL,
     subscription_ids TEXT,
     topic TEXT NOT NULL,
     payload BLOB NOT NULL,
     message_qos INTEGER NOT NULL,
     message_retain INTEGER NOT NULL,
     properties TEXT,
     sender_id TEXT,
     received_at INTEGER NOT NULL,
     expires_at INTEGER
   );
   CREATE INDEX outbound_by_session ON outbound(broker_id, client_id, seq);
   CREATE TABLE inbound_qos2 (
     broker_id TEXT NOT NULL,
     client_id TEXT NOT NULL,
     packet_id INTEGER NOT NULL,
     PRIMARY KEY (broker_id, client_id, packet_id)
   ) WITHOUT ROWID;`,
  // Issue 9: on-publish hooks. The webhook's failure policy and timeout sit with its URL; a
  // broker's deployed function and its key-value state go with the broker. The version counter
  // lives on the broker row so it keeps rising across a removal and a new deployment.
  `ALTER TABLE brokers ADD COLUMN on_publish_policy TEXT NOT NULL DEFAULT 'fail-closed';
   ALTER TABLE brokers ADD COLUMN on_publish_timeout_ms INTEGER;
   ALTER TABLE brokers ADD COLUMN hook_function_version INTEGER NOT NULL DEFAULT 0;
   CREATE TABLE hook_functions (
     broker_id TEXT PRIMARY KEY REFERENCES brokers(id) ON DELETE CASCADE,
     version INTEGER NOT NULL,
     code TEXT NOT NULL,
     sha256 TEXT NOT NULL,
     deployed_on TEXT NOT NULL
   );
   CREATE TABLE hook_state (
     broker_id TEXT NOT NULL REFERENCES brokers(id) ON DELETE CASCADE,
     key TEXT NOT NULL,
     value TEXT NOT NULL,
     PRIMARY KEY (broker_id, key)
   ) WITHOUT ROWID;`,
  // Issue 6: revocations of tokens that have expired are pruned. The expiry of each token minted
  // with one is kept (until it passes) so a revocation can carry it.
  `ALTER TABLE revocations ADD COLUMN expires_at INTEGER;
   CREATE TABLE issued_tokens (
     broker_id TEXT NOT NULL REFERENCES brokers(id) ON DELETE CASCADE,
     jti TEXT NOT NULL,
     expires_at INTEGER NOT NULL,
     PRIMARY KEY (broker_id, jti)
   ) WITHOUT ROWID;
   CREATE INDEX issued_tokens_by_expiry ON issued_tokens(expires_at);
   CREATE INDEX revocations_by_expiry ON revocations(expires_at);`,
  // Issue 16: whether the broker publishes its $SYS statistics tree (on unless turned off).
  `ALTER TABLE brokers ADD COLUMN sys_topics INTEGER NOT NULL DEFAULT 1;`,
  // Issue 21: scoped admin API tokens. Permissions, the accounts a token may use and its
  // optional namespace/broker limits are JSON lists; expiry, start and the request_ip condition
  // are optional. Tokens made before this keep working: the bootstrap token (the first token,
  // named so by bootstrap.ts) becomes operator, every other one pubsub:edit + tokens:edit on
  // its own account.
  `ALTER TABLE api_tokens ADD COLUMN permissions TEXT NOT NULL DEFAULT '["pubsub:edit","tokens:edit"]';
   ALTER TABLE api_tokens ADD COLUMN accounts TEXT NOT NULL DEFAULT '[]';
   ALTER TABLE api_tokens ADD COLUMN namespaces TEXT;
   ALTER TABLE api_tokens ADD COLUMN brokers TEXT;
   ALTER TABLE api_tokens ADD COLUMN expires_on TEXT;
   ALTER TABLE api_tokens ADD COLUMN not_before TEXT;
   ALTER TABLE api_tokens ADD COLUMN condition TEXT;
   UPDATE api_tokens SET accounts = json_array(account_id);
   UPDATE api_tokens SET permissions = '["operator"]'
     WHERE name = 'bootstrap admin token'
       AND id = (SELECT id FROM api_tokens ORDER BY issued_on, id LIMIT 1);
   CREATE INDEX api_tokens_by_account ON api_tokens(account_id);`,
  // Issue 21: the admin API's audit log (src/store/audit-store.ts). No foreign keys: an entry
  // outlives the objects it names (a deleted broker's history stays until the retention ends).
  `CREATE TABLE audit_log (
     seq INTEGER PRIMARY KEY,
     id TEXT NOT NULL UNIQUE,
     account_id TEXT NOT NULL,
     at INTEGER NOT NULL,
     actor_id TEXT NOT NULL,
     actor_name TEXT NOT NULL,
     actor_ip TEXT NOT NULL,
     action TEXT NOT NULL,
     method TEXT NOT NULL,
     route TEXT NOT NULL,
     path TEXT NOT NULL,
     resource_type TEXT NOT NULL,
     resource_id TEXT,
     namespace TEXT,
     broker TEXT,
     status INTEGER NOT NULL,
     error_code INTEGER,
     detail TEXT NOT NULL
   );
   CREATE INDEX audit_log_by_account ON audit_log(account_id, at);
   CREATE INDEX audit_log_by_time ON audit_log(at);`,
  // Issue 21: the certificate CN → client id rule per broker; NULL: the server's --mtls-client-id-pattern.
  `ALTER TABLE brokers ADD COLUMN mtls_client_id_pattern TEXT;`,
  // Issue 20: a broker's own limits (store/broker-limits.ts), a JSON object of the fields set; NULL: none.
  `ALTER TABLE brokers ADD COLUMN limits TEXT;`,
];

/**
 * Creates the data directory when missing, owner-only (0700, whatever the umask): it holds the
 * admin token, broker private keys and token hashes. A directory that exists keeps its mode:
 * the operator chose it.
 */
export function ensureDataDir(dataDir: string): void {
  if (existsSync(dataDir)) return;
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  chmodSync(dataDir, 0o700);
}

/** Opens (creating when missing) the database of a data directory and applies migrations. */
export function openDatabase(dataDir: string, migrations: readonly Migration[] = MIGRATIONS): DatabaseSync {
  const path = dataDir === ':memory:' ? ':memory:' : join(dataDir, 'pubsub.db');
  if (path !== ':memory:') ensureDataDir(dataDir);
  const created = path !== ':memory:' && !existsSync(path);
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(path);
    // It holds broker private keys and token hashes: owner-only (SQLite gives its -wal and
    // -shm files the same mode).
    if (created) chmodSync(path, 0o600);
    db.exec('PRAGMA foreign_keys = ON');
    if (path !== ':memory:') {
      db.exec('PRAGMA journal_mode = WAL');
      db.exec('PRAGMA synchronous = NORMAL');
    }
    db.exec('PRAGMA busy_timeout = 5000');
  } catch (err) {
    throw new StoreError(
      `cannot open database ${path}: ${(err as Error).message}. If the file is damaged, move it ` +
        'aside and restore a backup (or start with an empty data directory); it was not modified.',
    );
  }
  migrate(db, path, migrations);
  return db;
}

function migrate(db: DatabaseSync, path: string, migrations: readonly Migration[]): void {
  let version: number;
  try {
    version = Number((db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version);
    // A cheap integrity probe: a corrupt header or schema fails here.
    db.prepare('SELECT count(*) FROM sqlite_schema').get();
  } catch (err) {
    db.close();
    throw new StoreError(
      `database ${path} is unreadable: ${(err as Error).message}. Move it aside and restore a ` +
        'backup (or start with an empty data directory); it was not modified.',
    );
  }
  if (version > migrations.length) {
    db.close();
    throw new StoreError(
      `database ${path} has schema version ${version}, newer than this server knows ` +
        `(${migrations.length}); run a newer pubsub or restore a backup.`,
    );
  }
  for (let v = version; v < migrations.length; v++) {
    db.exec('BEGIN IMMEDIATE');
    try {
      db.exec(migrations[v]!);
      db.exec(`PRAGMA user_version = ${v + 1}`);
      db.exec('COMMIT');
    } catch (err) {
      db.exec('ROLLBACK');
      db.close();
      throw new StoreError(`database ${path}: migration ${v + 1} failed: ${(err as Error).message}`);
    }
  }
}

/** Runs `fn` in one transaction (IMMEDIATE: takes the write lock up front). */
export function transaction<T>(db: DatabaseSync, fn: () => T): T {
  db.exec('BEGIN IMMEDIATE');
  try {
    const result = fn();
    db.exec('COMMIT');
    return result;
  } catch (err) {
    db.exec('ROLLBACK');
    throw err;
  }
}

/**
 * A typed store on the database (control plane, credentials, hooks): statements prepared once
 * per SQL text (`q`), and `transaction` to make several writes one.
 */
export abstract class SqlStore {
  readonly #statements: Statements;

  constructor(db: DatabaseSync) {
    this.#statements = new Statements(db);
  }

  protected get db(): DatabaseSync {
    return this.#statements.db;
  }

  protected q(sql: string): StatementSync {
    return this.#statements.get(sql);
  }

  transaction<T>(fn: () => T): T {
    return transaction(this.db, fn);
  }
}

/** Prepared statements of one database, prepared once per SQL text and reused. */
export class Statements {
  readonly db: DatabaseSync;
  readonly #cache = new Map<string, StatementSync>();

  constructor(db: DatabaseSync) {
    this.db = db;
  }

  get(sql: string): StatementSync {
    let s = this.#cache.get(sql);
    if (s === undefined) {
      s = this.db.prepare(sql);
      this.#cache.set(sql, s);
    }
    return s;
  }
}
