/**
 * What docs/ says about the metrics against what GET /metrics serves, so that neither drifts
 * from the code: docs/observability.md lists every metric a started server serves and none it
 * does not; the Grafana dashboard (docs/grafana/pubsub-dashboard.json) is an importable Grafana
 * 10+ dashboard whose queries name only served metrics and are valid PromQL (`promtool check
 * rules`); the page's Prometheus scrape configurations pass `promtool check config`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { describeWithTool, promtool } from '../helpers/interop-tools.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const DOCS = join(import.meta.dirname, '../../docs');
const page = readFileSync(join(DOCS, 'observability.md'), 'utf8');
const dashboard = JSON.parse(readFileSync(join(DOCS, 'grafana/pubsub-dashboard.json'), 'utf8')) as Dashboard;

interface Target {
  expr: string;
  refId: string;
  datasource: { type: string; uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type: string; uid: string };
  targets?: Target[];
}
interface Dashboard {
  __inputs: { name: string; type: string; pluginId: string }[];
  __requires: { type: string; id: string; version: string }[];
  schemaVersion: number;
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: { query: string } }[] };
}

/** The families a started server serves (from `# TYPE`), by name, with their type. */
let served: Map<string, string>;
let ts: TestServer;
before(async () => {
  ts = await startServer({ httpPort: 0 });
  const text = await (await fetch(`${ts.apiUrl}/metrics`)).text();
  served = new Map();
  for (const match of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) served.set(match[1]!, match[2]!);
});
after(() => ts.close());

/** The section of the page under `## title`, up to the next `## `. */
function section(title: string): string {
  const start = page.indexOf(`\n## ${title}\n`);
  assert.notEqual(start, -1, `no section ${title}`);
  const end = page.indexOf('\n## ', start + 1);
  return page.slice(start, end === -1 ? undefined : end);
}

/** A served metric's sample names: a histogram's `_bucket`, `_sum` and `_count` series. */
function sampleNames(): Set<string> {
  const names = new Set<string>();
  for (const [name, type] of served) {
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
    else names.add(name);
  }
  return names;
}

const METRIC = /\b(?:pubsub|process|nodejs)_[a-z0-9_]+\b/g;

/** Every query of the dashboard, with the panel it belongs to. */
const queries = (): { panel: string; expr: string }[] =>
  dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));

describe('docs/observability.md', () => {
  it('lists every metric GET /metrics serves, each in a table row with its type, and no other', () => {
    const rows = new Map<string, string>();
    for (const match of section('Metrics').matchAll(/^\| `([a-z0-9_]+)` \| (\w+) \|/gm))
      rows.set(match[1]!, match[2]!);
    assert.ok(served.size > 40, `only ${served.size} families served`);
    assert.deepEqual(
      [...served].filter(([name, type]) => rows.get(name) !== type).map(([name, type]) => `${name} ${type}`),
      [],
      'served but not listed with this type',
    );
    assert.deepEqual(
      [...rows.keys()].filter((name) => !served.has(name)),
      [],
      'listed but not served',
    );
  });
});

describe('docs/observability.md, cluster metrics', () => {
  it('lists every pubsub_cluster_ metric a --cluster node serves, with its type, and no other', async (t) => {
    // The series exist from the start, link up or not: NATS need not answer (nothing listens on port 1).
    const node = await startServer({ httpPort: 0, cluster: 'nats://127.0.0.1:1' });
    t.after(() => node.close());
    const text = await (await fetch(`${node.apiUrl}/metrics`)).text();
    const cluster = new Map<string, string>();
    for (const match of text.matchAll(/^# TYPE (pubsub_cluster_\S+) (\S+)$/gm))
      cluster.set(match[1]!, match[2]!);
    const rows = new Map<string, string>();
    for (const match of section('Cluster metrics').matchAll(/^\| `([a-z0-9_]+)` \| (\w+) \|/gm))
      rows.set(match[1]!, match[2]!);
    assert.ok(cluster.size > 5, `only ${cluster.size} cluster families served`);
    assert.deepEqual([...rows].sort(), [...cluster].sort());
    assert.equal(served.has('pubsub_cluster_link_up'), false, 'a single node serves none');
  });
});

describe('the Grafana dashboard (docs/grafana/pubsub-dashboard.json)', () => {
  it('is a Grafana 10+ dashboard asking for its Prometheus data source as the DS_PROMETHEUS input', () => {
    assert.deepEqual(
      dashboard.__inputs.map((i) => [i.name, i.type, i.pluginId]),
      [['DS_PROMETHEUS', 'datasource', 'prometheus']],
    );
    const grafana = dashboard.__requires.find((r) => r.id === 'grafana');
    assert.ok(grafana !== undefined && Number(grafana.version.split('.')[0]) >= 10);
    assert.ok(dashboard.schemaVersion >= 38, 'schema of Grafana 10 or later');
    assert.ok(dashboard.uid !== '' && dashboard.title !== '');
    const ids = dashboard.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
    for (const p of dashboard.panels) {
      const { x, w, h } = p.gridPos;
      assert.ok(x >= 0 && w > 0 && h > 0 && x + w <= 24, `${p.title}: on the 24-column grid`);
      if (p.type === 'row') continue;
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's placeholder for the input, literally
      assert.deepEqual(p.datasource, { type: 'prometheus', uid: '${DS_PROMETHEUS}' }, p.title);
      assert.ok((p.targets ?? []).length > 0, `${p.title}: no query`);
      const refIds = p.targets!.map((t) => t.refId);
      assert.equal(new Set(refIds).size, refIds.length, `${p.title}: refIds unique`);
      for (const t of p.targets!) assert.deepEqual(t.datasource, p.datasource, p.title);
    }
    // No two panels overlap.
    const cells = new Set<string>();
    for (const { gridPos: g, title } of dashboard.panels)
      for (let y = g.y; y < g.y + g.h; y++)
        for (let x = g.x; x < g.x + g.w; x++) {
          assert.ok(!cells.has(`${x},${y}`), `${title} overlaps another panel at ${x},${y}`);
          cells.add(`${x},${y}`);
        }
  });

  it('has namespace, broker and node variables, and every pubsub_ query filters by them', () => {
    assert.deepEqual(dashboard.templating.list.map((v) => v.name).sort(), ['broker', 'namespace', 'node']);
    for (const v of dashboard.templating.list) {
      assert.equal(v.type, 'query');
      for (const name of v.query.query.match(METRIC) ?? []) assert.ok(served.has(name), name);
    }
    for (const { panel, expr } of queries()) {
      for (const selector of expr.matchAll(/\b((?:pubsub|process|nodejs)_[a-z0-9_]+)\{([^}]*)\}/g)) {
        const [, name, labels] = selector as unknown as [string, string, string];
        assert.match(labels, /node=~"\$node"/, `${panel}: ${name} not filtered by node`);
        if (!name.startsWith('pubsub_store_') && name.startsWith('pubsub_'))
          assert.match(labels, /namespace=~"\$namespace",broker=~"\$broker"/, `${panel}: ${name}`);
      }
    }
  });

  it('names only metrics GET /metrics serves', () => {
    const names = sampleNames();
    const used = queries().flatMap(({ panel, expr }) =>
      (expr.match(METRIC) ?? []).map((name) => ({ panel, name })),
    );
    assert.ok(used.length > 20);
    assert.deepEqual(
      used.filter(({ name }) => !names.has(name)),
      [],
    );
    // The figures the dashboard is for.
    const all = new Set(used.map((u) => u.name));
    for (const name of [
      'pubsub_connections',
      'pubsub_messages_received_total',
      'pubsub_messages_sent_total',
      'pubsub_messages_dropped_total',
      'pubsub_queued_messages',
      'pubsub_inflight_messages',
      'pubsub_store_commit_seconds_bucket',
      'pubsub_hook_calls_total',
      'pubsub_hook_duration_seconds_bucket',
      'pubsub_auth_failures_total',
      'nodejs_eventloop_lag_p99_seconds',
      'process_resident_memory_bytes',
    ])
      assert.ok(all.has(name), `no panel shows ${name}`);
  });
});

/** Runs promtool on a file written to a fresh directory (with `extra` files beside it). */
function promtoolCheck(kind: string, file: string, text: string, extra: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'pubsub-promtool-'));
  try {
    for (const [name, content] of Object.entries({ ...extra, [file]: text }))
      writeFileSync(join(dir, name), content);
    return spawnSync('promtool', ['check', kind, join(dir, file)], { encoding: 'utf8' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describeWithTool('docs checked by promtool', promtool, () => {
  it("every dashboard query is valid PromQL (promtool check rules, Grafana's variables filled in)", () => {
    const rules = queries().map(({ expr }, i) => {
      const promql = expr.replaceAll('$__rate_interval', '1m').replace(/\$(namespace|broker|node)\b/g, '.*');
      return `      - record: dashboard:query_${i}\n        expr: ${JSON.stringify(promql)}\n`;
    });
    const check = promtoolCheck(
      'rules',
      'rules.yml',
      `groups:\n  - name: dashboard\n    rules:\n${rules.join('')}`,
    );
    assert.equal(check.status, 0, `${check.stdout}${check.stderr}`);
  });

  it('both scrape configurations of docs/observability.md pass promtool check config', () => {
    const configs = [...section('Prometheus scrape configuration').matchAll(/```yaml\n([\s\S]*?)```/g)].map(
      (m) => m[1]!,
    );
    assert.equal(configs.length, 2, 'one without and one with --metrics-token');
    assert.doesNotMatch(configs[0]!, /authorization/);
    assert.match(configs[1]!, /credentials_file: pubsub-metrics-token/);
    for (const config of configs) {
      const check = promtoolCheck('config', 'prometheus.yml', config, {
        'pubsub-metrics-token': 'scrape-secret\n',
      });
      assert.equal(check.status, 0, `${config}\n${check.stdout}${check.stderr}`);
      assert.match(check.stdout, /SUCCESS/);
    }
  });
});
