/**
 * The control plane as records (cluster mode's replica, src/tenancy/control-replica.ts), without
 * NATS: one node's records applied in order to another node give it the same control plane and
 * the same live tenants; a record whose name another id holds here takes its place; deletes
 * close tenants; the key order puts parents first.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configWith } from '../../src/config.ts';
import { silentLogger } from '../../src/observability/index.ts';
import { openDatabase, tenancyStores } from '../../src/store/index.ts';
import { KEY_KINDS, kindRank, Tenancy } from '../../src/tenancy/index.ts';

const config = configWith({ dataDir: ':memory:' });
const node = (): Tenancy => new Tenancy(tenancyStores(openDatabase(':memory:')), config, silentLogger());

/** Applies every record of `from` to `to`, parents first (as the bucket delivers them). */
function copy(from: Tenancy, to: Tenancy): void {
  const replica = to.controlReplica();
  for (const [key, value] of from.controlReplica().snapshot()) replica.apply(key, value);
}

const addresses = (t: Tenancy): string[] =>
  [...t.tenants()].map((x) => `${x.record.name}.${x.record.namespaceName}#${x.record.id}`).sort();

describe('control-plane replica', () => {
  it('records applied in order give another node the same control plane and live tenants', async () => {
    const a = node();
    const { account } = a.bootstrap();
    a.createNamespace(account.id, { name: 'plant' });
    a.createBroker(account.id, 'plant', { name: 'line', authType: 'TOKEN', limits: { max_connections: 3 } });
    const tokens = await a.issueCredentials(account.id, 'plant', 'line', {
      number: 2,
      clientIds: [],
      expiration: 3600,
      topicAcl: ['#'],
    });
    const jti = (jwt: string) =>
      JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()).jti as string;
    const [first] = Object.values(tokens).map(jti);
    a.revoke(account.id, 'plant', 'line', [first!, 'not a ulid: spaces/and.dots']);

    const b = node();
    copy(a, b);
    assert.deepEqual([...b.controlReplica().snapshot()], [...a.controlReplica().snapshot()]);
    assert.deepEqual(addresses(b), addresses(a));
    assert.deepEqual(b.publicKeys(account.id, 'plant', 'line'), a.publicKeys(account.id, 'plant', 'line'));
    assert.deepEqual(b.revocations(account.id, 'plant', 'line'), a.revocations(account.id, 'plant', 'line'));
    assert.equal(b.getBroker(account.id, 'plant', 'line').limits.max_connections, 3);

    // Applying the same records again changes nothing.
    copy(a, b);
    assert.deepEqual([...b.controlReplica().snapshot()], [...a.controlReplica().snapshot()]);
  });

  it('a record read alone is the JSON the snapshot holds for its key (the lost-update check compares them)', async () => {
    const a = node();
    const { account } = a.bootstrap();
    a.createNamespace(account.id, { name: 'plant' });
    a.createBroker(account.id, 'plant', { name: 'line', authType: 'TOKEN' });
    a.rotateKeys(account.id, 'plant', 'line'); // two keys: their order matters to the JSON
    const tokens = await a.issueCredentials(account.id, 'plant', 'line', {
      number: 1,
      clientIds: [],
      expiration: 3600,
      topicAcl: ['#'],
    });
    const [jwt] = Object.values(tokens);
    const jti = JSON.parse(Buffer.from(jwt!.split('.')[1]!, 'base64url').toString()).jti as string;
    a.revoke(account.id, 'plant', 'line', [jti, 'not a ulid: spaces/and.dots']);
    const replica = a.controlReplica();
    const snapshot = replica.snapshot();
    assert.deepEqual(
      [...new Set([...snapshot.keys()].map((k) => k[0]))].sort(),
      ['a', 'b', 'i', 'n', 'r', 't'],
      'every kind but functions is in the snapshot',
    );
    for (const [key, value] of snapshot) assert.equal(replica.record(key), value, key);
    assert.equal(replica.record('b.plant.none'), undefined);
    assert.equal(replica.record('r.nobody.x'), undefined);
  });

  it("a node's own record of a name another id holds in the cluster gives way, with its children", () => {
    const a = node();
    a.bootstrap();
    const b = node();
    const { account: mine } = b.bootstrap();
    const before = addresses(b);
    copy(a, b);
    const defaults = addresses(b).filter((x) => x.startsWith('default.local#'));
    assert.deepEqual(defaults, addresses(a), 'default.local is the cluster one');
    assert.notDeepEqual(defaults, before);
    // B's own account and token are still there (they clash with nothing), now without namespaces.
    assert.equal(b.account(mine.id).id, mine.id);
    assert.equal(b.listNamespaces(mine.id, { page: 1, perPage: 10 }).total, 0);
  });

  it('deletes: a broker record deleted closes its tenant; a revocation deleted lets the token in again', () => {
    const a = node();
    const { account } = a.bootstrap();
    a.createNamespace(account.id, { name: 'ns' });
    a.createBroker(account.id, 'ns', { name: 'gone' });
    a.revoke(account.id, 'ns', 'gone', ['01HZZZZZZZZZZZZZZZZZZZZZZZ']);
    const b = node();
    copy(a, b);
    const replica = b.controlReplica();
    const revocation = [...replica.snapshot().keys()].find((k) => k.startsWith('r.'))!;
    replica.apply(revocation, undefined);
    assert.deepEqual(b.revocations(account.id, 'ns', 'gone'), []);
    replica.apply('b.ns.gone', undefined);
    assert.ok(!addresses(b).some((x) => x.startsWith('gone.ns#')));
    replica.apply('n.ns', undefined);
    assert.throws(() => b.getNamespace(account.id, 'ns'), /not found/);
    // An account deleted takes its namespaces and brokers with it.
    replica.apply(`a.${account.id}`, undefined);
    assert.deepEqual(addresses(b), []);
  });

  it('keys sort parents first: account, namespace, broker, token, issue, revocation, function', () => {
    const keys = ['h.x', 'r.x.j', 'i.x.j', 't.x', 'b.n.x', 'n.n', 'a.x'];
    assert.deepEqual(
      keys.sort((x, y) => kindRank(x) - kindRank(y)).map((k) => k[0]),
      [...KEY_KINDS],
    );
  });
});
