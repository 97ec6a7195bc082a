/**
 * The control plane's lost update (src/cluster/control-sync.ts, issue 18): a node's change is in
 * its cache (the API wrote it) but not yet in the bucket when another node's change of the same
 * record arrives; the arriving record is applied (the bucket wins), so the local change is gone
 * and `commit` finds nothing to write. It must still report the conflict, so the API answers 409
 * instead of 200 for a change that never reached the cluster. Two nodes' ControlSync on a real
 * nats-server, without the rest of the service, so the order of events is the test's.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { ControlSync } from '../../src/cluster/control-sync.ts';
import { configWith } from '../../src/config.ts';
import { silentLogger } from '../../src/observability/index.ts';
import { openDatabase, tenancyStores } from '../../src/store/index.ts';
import { Tenancy } from '../../src/tenancy/index.ts';
import { until } from '../helpers/child-process.ts';
import { startNats } from '../helpers/cluster.ts';
import { describeWithTool, natsServer } from '../helpers/interop-tools.ts';

const config = configWith({ dataDir: ':memory:' });

describeWithTool('cluster control plane: a change replaced before it was written', natsServer, () => {
  it("is reported by the next commit as a conflict, and the other node's change stands on both", async (t) => {
    const nats = await startNats(t);
    const connections: NatsConnection[] = [];
    t.after(() => Promise.all(connections.map((nc) => nc.close())));
    const node = async (): Promise<{ tenancy: Tenancy; sync: ControlSync }> => {
      const tenancy = new Tenancy(tenancyStores(openDatabase(':memory:')), config, silentLogger());
      const sync = new ControlSync({
        replica: tenancy.controlReplica(),
        replicas: () => 1,
        logger: silentLogger(),
      });
      const nc = await connect({ servers: nats.url });
      connections.push(nc);
      t.after(() => sync.linkDown());
      return { tenancy, sync };
    };
    const a = await node();
    const b = await node();
    const { account } = a.tenancy.bootstrap();
    a.sync.linkUp(connections[0]!);
    await until(() => a.sync.synced, 'A synced');
    b.sync.linkUp(connections[1]!);
    await until(() => b.sync.synced, 'B synced');
    a.tenancy.createNamespace(account.id, { name: 'plant' });
    a.tenancy.createBroker(account.id, 'plant', { name: 'line', authType: 'TOKEN' });
    assert.equal(await a.sync.commit(), 0);
    const key = 'b.plant.line';
    const description = (n: { tenancy: Tenancy }): string | undefined =>
      n.tenancy.getBroker(account.id, 'plant', 'line').description;
    await until(() => b.tenancy.controlReplica().record(key) !== undefined, 'the broker on B');

    // A's API writes its change to the cache; before A commits, B's change of the same broker is
    // written to the bucket and reaches A.
    a.tenancy.updateBroker(account.id, 'plant', 'line', { description: 'from A' });
    b.tenancy.updateBroker(account.id, 'plant', 'line', { description: 'from B' });
    assert.equal(await b.sync.commit(), 0);
    await until(() => description(a) === 'from B', "B's change applied on A");

    assert.equal(await a.sync.commit(), 1, "A's change was lost: a conflict");
    assert.equal(a.sync.conflicts, 1);
    assert.equal(await a.sync.commit(), 0, 'reported once');
    assert.equal(description(b), 'from B');

    // Without a change of A's own, B's later changes are no conflict on A.
    b.tenancy.updateBroker(account.id, 'plant', 'line', { description: 'again from B' });
    assert.equal(await b.sync.commit(), 0);
    await until(() => description(a) === 'again from B', "B's second change on A");
    assert.equal(await a.sync.commit(), 0);
    assert.equal(a.sync.conflicts, 1);
  });
});
