/**
 * The conformance suites (test/conformance) against two-node clusters, their clients split
 * across the nodes (issue 18: "pass as on one node"). The cases are the suites' own: this file
 * runs them in a child `node --test` with PUBSUB_TEST_CLUSTER=1, which makes v5-harness.ts start
 * every server as a pair of nodes on their own nats-server (server-pair.ts) and put the clients
 * a test opens alternately on node A and node B (the suite's first client, usually the
 * subscriber, on A; its second, usually the publisher, on B): the harness's packet clients
 * (`h.open`, `h.connected`) and MQTT.js clients connecting to `h.url()`. Run one suite so by hand:
 * `PUBSUB_TEST_CLUSTER=1 npx node --test test/conformance/properties.test.ts`.
 *
 * What does not run, with why, is listed below (whole files, then single cases by name); each
 * case name must still be in a suite, so that the list cannot go stale silently.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { spawnChild } from '../helpers/child-process.ts';
import { describeWithTool, natsServer } from '../helpers/interop-tools.ts';

/** Suites left out whole, with why. */
const EXCLUDED_FILES: Record<string, string> = {
  'bad-input.test.ts': "one connection's malformed input against its own single server: nothing crosses",
  'before-connect.test.ts': 'connections before CONNECT on their own single server: nothing crosses',
  'client-limits.test.ts': "one client's limits on its own single server: nothing crosses",
  'random-packets.test.ts': 'fuzzing one single server over TCP: nothing crosses',
  'topic-levels.test.ts': 'the topic-level limit on its own single servers (startServer, not the harness)',
};

/** Single cases left out (a test name, matched literally), with why. */
const EXCLUDED_CASES: Record<string, string> = {
  'with Topic Alias Maximum 2 the client gets topic+alias once':
    'order across topics: across nodes it is kept per publisher and topic only (MQTT-4.6.0-5), docs/cluster.md',
  'never more aliases than the client allows':
    'order across topics: across nodes it is kept per publisher and topic only (MQTT-4.6.0-5), docs/cluster.md',
};

const SUITES = [
  'ack-types',
  'aliases',
  'auth',
  'expiry',
  'features',
  'flow-control',
  'mqtt31',
  'no-matching-subscribers',
  'packet-size',
  'properties',
  'reason-codes',
  'reserved-topics',
  'shared',
  'subscription-options',
  'unsubscribe-filters',
  'will-delay',
].map((name) => `test/conformance/${name}.test.ts`);

const literal = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

describeWithTool('conformance suites on a two-node cluster, clients split across nodes', natsServer, () => {
  it('pass as on one node (exclusions listed in this file)', { timeout: 300_000 }, async (t) => {
    for (const file of SUITES) assert.ok(!(file.split('/').pop()! in EXCLUDED_FILES), `${file} listed twice`);
    const child = spawnChild(
      t,
      process.execPath,
      [
        '--test',
        '--test-concurrency=2',
        '--test-reporter=tap',
        ...Object.keys(EXCLUDED_CASES).map((name) => `--test-skip-pattern=${literal(name)}`),
        ...SUITES,
      ],
      // Without the runner's NODE_TEST_CONTEXT, so that the child reports as a runner of its own.
      { env: { ...process.env, NODE_TEST_CONTEXT: undefined, PUBSUB_TEST_CLUSTER: '1' } },
    );
    const exit = await child.exited;
    const lines = child.lines;
    const failed = lines
      .map((line, i) => ({ line, i }))
      .filter(({ line }) => /^\s*not ok \d+ - /.test(line) && !/ # (SKIP|TODO)/.test(line));
    // Each failure with its YAML block (error, location, stack), up to the next test line.
    const report = failed
      .map(({ line, i }) => {
        const end = lines.findIndex((l, j) => j > i && /^\s*(not )?ok \d+ - /.test(l));
        return [line, ...lines.slice(i + 1, end < 0 ? i + 30 : Math.min(end, i + 30))].join('\n');
      })
      .join('\n');
    assert.equal(
      exit.code,
      0,
      `failing in cluster mode:\n${report || lines.slice(-40).join('\n')}\n${child.stderr}`,
    );
    // A case skipped by pattern is not reported at all: each pattern must name a test in the sources.
    const sources = SUITES.map((file) => readFileSync(file, 'utf8')).join('\n');
    for (const name of Object.keys(EXCLUDED_CASES))
      assert.ok(sources.includes(name), `the exclusion "${name}" names no test any more`);
    const passed = Number(/^# pass (\d+)/m.exec(lines.join('\n'))?.[1] ?? 0);
    assert.ok(passed > 50, `${passed} cases passed`);
  });
});
