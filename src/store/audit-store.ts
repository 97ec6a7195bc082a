/**
 * The admin API's audit log in the embedded database: one row per change made (or refused)
 * through the API, written by src/admin/audit.ts and read by `GET .../audit_logs`.
 *
 * Invariants:
 * - Append-only: a row is never updated; rows leave only by `prune` (retention).
 * - Rows hold only what the API layer gave them, already redacted: this store never sees a
 *   secret, so it applies no redaction of its own.
 * - Each row belongs to one account; `list` reads one account's rows and nothing else.
 * - Order is the time of the change, then insertion order (`seq`) among equal times, so paging
 *   is stable while new rows arrive (newest first by default, as Cloudflare's).
 * - The filterable facts (time, actor, action, method, resource, namespace, broker) are columns;
 *   the rest (params, query, old and new values, error message) is one JSON text, `detail`.
 */
import { SqlStore } from './database.ts';

/** What the API layer records besides the filterable columns (JSON in `detail`). */
export interface AuditDetail {
  params: Record<string, string>;
  query: Record<string, unknown> | null;
  oldValue: unknown;
  newValue: unknown;
  errorMessage: string | null;
}

export interface AuditRecord {
  id: string;
  accountId: string;
  /** Milliseconds since the epoch. */
  at: number;
  actorId: string;
  actorName: string;
  actorIp: string;
  /** create, update, delete, issue, revoke, deploy, ...: src/admin/audit-objects.ts. */
  action: string;
  method: string;
  /** The route pattern the router matched. */
  route: string;
  /** The concrete path requested (no query). */
  path: string;
  resourceType: string;
  resourceId: string | null;
  namespace: string | null;
  broker: string | null;
  status: number;
  /** The API error code of a refusal; null on success. */
  errorCode: number | null;
  detail: AuditDetail;
}

export interface AuditQuery {
  /** Only entries at or after this time (ms). */
  since?: number;
  /** Only entries strictly before this time (ms). */
  before?: number;
  action?: string;
  method?: string;
  actorId?: string;
  actorIp?: string;
  resourceType?: string;
  namespace?: string;
  broker?: string;
  /** Newest first (default) or oldest first. */
  direction?: 'desc' | 'asc';
}

type Row = Record<string, unknown>;

/** Each filter: its SQL condition and the query field giving its value. */
const CONDITIONS: readonly (readonly [condition: string, field: keyof AuditQuery])[] = [
  ['at >= ?', 'since'],
  ['at < ?', 'before'],
  ['action = ?', 'action'],
  ['method = ?', 'method'],
  ['actor_id = ?', 'actorId'],
  ['actor_ip = ?', 'actorIp'],
  ['resource_type = ?', 'resourceType'],
  ['namespace = ?', 'namespace'],
  ['broker = ?', 'broker'],
];

const recordOf = (r: Row): AuditRecord => ({
  id: r.id as string,
  accountId: r.account_id as string,
  at: Number(r.at),
  actorId: r.actor_id as string,
  actorName: r.actor_name as string,
  actorIp: r.actor_ip as string,
  action: r.action as string,
  method: r.method as string,
  route: r.route as string,
  path: r.path as string,
  resourceType: r.resource_type as string,
  resourceId: (r.resource_id as string | null) ?? null,
  namespace: (r.namespace as string | null) ?? null,
  broker: (r.broker as string | null) ?? null,
  status: Number(r.status),
  errorCode: r.error_code === null ? null : Number(r.error_code),
  detail: JSON.parse(r.detail as string) as AuditDetail,
});

export class AuditStore extends SqlStore {
  append(e: AuditRecord): void {
    this.q(
      `INSERT INTO audit_log (id, account_id, at, actor_id, actor_name, actor_ip, action, method, route,
         path, resource_type, resource_id, namespace, broker, status, error_code, detail)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      e.id,
      e.accountId,
      e.at,
      e.actorId,
      e.actorName,
      e.actorIp,
      e.action,
      e.method,
      e.route,
      e.path,
      e.resourceType,
      e.resourceId,
      e.namespace,
      e.broker,
      e.status,
      e.errorCode,
      JSON.stringify(e.detail),
    );
  }

  /** One page of an account's entries matching `query`, with the number matching in all. */
  list(
    accountId: string,
    query: AuditQuery,
    page: { page: number; perPage: number },
  ): { items: AuditRecord[]; total: number } {
    const where = ['account_id = ?'];
    const args: (string | number)[] = [accountId];
    for (const [condition, field] of CONDITIONS) {
      const value = query[field];
      if (value === undefined) continue;
      where.push(condition);
      args.push(value);
    }
    const clause = where.join(' AND ');
    const total = Number(
      (this.q(`SELECT count(*) AS n FROM audit_log WHERE ${clause}`).get(...args) as Row).n,
    );
    const order = query.direction === 'asc' ? 'ASC' : 'DESC';
    const rows = this.q(
      `SELECT * FROM audit_log WHERE ${clause} ORDER BY at ${order}, seq ${order} LIMIT ? OFFSET ?`,
    ).all(...args, page.perPage, (page.page - 1) * page.perPage) as Row[];
    return { items: rows.map(recordOf), total };
  }

  /** Deletes every entry older than `cutoff` (ms); returns how many went. */
  prune(cutoff: number): number {
    return Number(this.q('DELETE FROM audit_log WHERE at < ?').run(cutoff).changes);
  }
}
