/**
 * The audit log's store (src/store/audit-store.ts): entries of one account only, filters,
 * stable paging, pruning by age; and the API prunes at start what is past --audit-retention.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { buildApi } from '../../src/admin/index.ts';
import { configWith } from '../../src/config.ts';
import { silentLogger } from '../../src/observability/index.ts';
import { type AuditRecord, AuditStore, openDatabase, tenancyStores } from '../../src/store/index.ts';
import { Tenancy } from '../../src/tenancy/index.ts';

const HOUR = 3_600_000;
let counter = 0;

function entry(fields: Partial<AuditRecord>): AuditRecord {
  counter++;
  return {
    id: `e${counter}`,
    accountId: 'a',
    at: 1_000_000,
    actorId: 't1',
    actorName: 'ci',
    actorIp: '127.0.0.1',
    action: 'create',
    method: 'POST',
    route: '/r',
    path: '/r',
    resourceType: 'broker',
    resourceId: 'b1',
    namespace: 'ns',
    broker: 'b1',
    status: 200,
    errorCode: null,
    detail: { params: {}, query: null, oldValue: null, newValue: { name: 'b1' }, errorMessage: null },
    ...fields,
  };
}

describe('audit store', () => {
  const db = openDatabase(':memory:');
  const store = new AuditStore(db);
  after(() => db.close());
  const ids = (r: { items: AuditRecord[] }) => r.items.map((e) => e.id);
  const all = { page: 1, perPage: 100 };

  store.append(entry({ id: 'old', at: 1000 }));
  store.append(entry({ id: 'mid', at: 2000, actorId: 't2', action: 'delete', method: 'DELETE' }));
  store.append(entry({ id: 'new', at: 3000, namespace: 'other', broker: null, resourceType: 'namespace' }));
  store.append(entry({ id: 'same-time', at: 3000 }));
  store.append(entry({ id: 'foreign', at: 2500, accountId: 'b' }));

  it('lists one account only, newest first, ties in insertion order, with the total', () => {
    const r = store.list('a', {}, all);
    assert.deepEqual(ids(r), ['same-time', 'new', 'mid', 'old']);
    assert.equal(r.total, 4);
    assert.deepEqual(ids(store.list('a', { direction: 'asc' }, all)), ['old', 'mid', 'new', 'same-time']);
    assert.deepEqual(ids(store.list('b', {}, all)), ['foreign']);
  });

  it('keeps what it was given: values, detail and nulls come back as stored', () => {
    const [e] = store.list('a', { direction: 'asc' }, { page: 1, perPage: 1 }).items;
    assert.deepEqual(e, entry({ id: 'old', at: 1000 }));
  });

  it('filters by time (since inclusive, before exclusive), action, method, actor, resource and place', () => {
    assert.deepEqual(ids(store.list('a', { since: 2000, before: 3000 }, all)), ['mid']);
    assert.deepEqual(ids(store.list('a', { action: 'delete' }, all)), ['mid']);
    assert.deepEqual(ids(store.list('a', { method: 'DELETE' }, all)), ['mid']);
    assert.deepEqual(ids(store.list('a', { actorId: 't2' }, all)), ['mid']);
    assert.deepEqual(ids(store.list('a', { resourceType: 'namespace' }, all)), ['new']);
    assert.deepEqual(ids(store.list('a', { namespace: 'other' }, all)), ['new']);
    assert.deepEqual(ids(store.list('a', { namespace: 'ns', broker: 'b1' }, all)), [
      'same-time',
      'mid',
      'old',
    ]);
  });

  it('pages with page and per_page, counting every match', () => {
    const second = store.list('a', {}, { page: 2, perPage: 3 });
    assert.deepEqual(ids(second), ['old']);
    assert.equal(second.total, 4);
  });

  it('prunes entries older than the cutoff, of every account', () => {
    assert.equal(store.prune(2600), 3);
    assert.deepEqual(ids(store.list('a', {}, all)), ['same-time', 'new']);
    assert.deepEqual(ids(store.list('b', {}, all)), []);
  });
});

it('the admin API prunes entries past --audit-retention when it starts, and keeps younger ones', async () => {
  const config = configWith({ dataDir: ':memory:', auditRetention: '1d' });
  const db = openDatabase(':memory:');
  const audit = new AuditStore(db);
  const now = Date.now();
  audit.append(entry({ id: 'too-old', at: now - 25 * HOUR }));
  audit.append(entry({ id: 'young', at: now - 23 * HOUR }));
  const tenancy = new Tenancy(tenancyStores(db), config, silentLogger());
  const app = await buildApi({
    tenancy,
    config,
    nodeName: 'test-node',
    logger: silentLogger(),
    audit,
    ports: () => ({}),
    readiness: () => ({ listeners: true, store: true }),
    eventLoopStallMs: () => 0,
  });
  try {
    assert.deepEqual(
      audit.list('a', {}, { page: 1, perPage: 10 }).items.map((e) => e.id),
      ['young'],
    );
  } finally {
    await app.close();
    tenancy.close();
    db.close();
  }
});

it('--audit-retention takes a duration of 1s or more and refuses anything else', () => {
  assert.doesNotThrow(() => configWith({ auditRetention: '1s' }));
  assert.doesNotThrow(() => configWith({ auditRetention: '12h30m' }));
  assert.throws(() => configWith({ auditRetention: '0' }), /auditRetention: 0 is shorter than 1s/);
  assert.throws(
    () => configWith({ auditRetention: 'forever' }),
    /auditRetention: forever is not a time duration/,
  );
});
