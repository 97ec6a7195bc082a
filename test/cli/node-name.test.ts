/**
 * `pubsub serve --node-name` with real processes: the name is the `node` label of every series
 * GET /metrics serves (and `promtool check metrics` still passes) and a field of every log line;
 * without the option it is the name `<data-dir>/node-name` keeps (the host name at the first
 * start), so a restart keeps it; with `:memory:` it is the host name; a bad name stops the start.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { describeWithTool, promtool } from '../helpers/interop-tools.ts';
import { type ServeOptions, spawnServe, startServe, tempDir } from '../helpers/pubsub-process.ts';

/** Starts `pubsub serve`, scrapes GET /metrics once, stops it; the scrape and the log lines. */
async function scrapeOnce(t: TestContext, options: ServeOptions): Promise<{ text: string; lines: string[] }> {
  const serve = await startServe(t, options);
  const res = await fetch(`${serve.apiUrl}/metrics`);
  assert.equal(res.status, 200);
  const text = await res.text();
  await serve.stop();
  return { text, lines: serve.child.lines };
}

/** The distinct `node` label values of the scrape's series; asserts every series has one. */
function nodesOf(text: string): string[] {
  const series = text.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
  assert.ok(series.some((line) => line.startsWith('pubsub_')));
  const nodes = new Set<string>();
  for (const line of series) {
    const match = /[{,]node="([^"]*)"[,}]/.exec(line);
    assert.ok(match !== null, `no node label: ${line}`);
    nodes.add(match[1]!);
  }
  return [...nodes];
}

describe('the node name (--node-name)', () => {
  it('without --node-name: the host name, kept in <data-dir>/node-name; a restart keeps what the file says', async (t) => {
    const dataDir = join(tempDir(t, 'pubsub-node-'), 'data');
    assert.deepEqual(nodesOf((await scrapeOnce(t, { dataDir })).text), [hostname()]);
    const file = join(dataDir, 'node-name');
    assert.equal(readFileSync(file, 'utf8'), `${hostname()}\n`);
    // As if the host had been renamed since (a container's new host name): the node keeps its name.
    writeFileSync(file, 'kept-name\n');
    assert.deepEqual(nodesOf((await scrapeOnce(t, { dataDir })).text), ['kept-name']);
  });

  it('--node-name names the node in every series and log line and is remembered for later starts', async (t) => {
    const dataDir = join(tempDir(t, 'pubsub-node-'), 'data');
    const first = await scrapeOnce(t, {
      dataDir,
      args: ['--node-name', 'edge-1.eu'],
      env: { PUBSUB_LOG_LEVEL: 'info' },
    });
    assert.deepEqual(nodesOf(first.text), ['edge-1.eu']);
    const logs = first.lines.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line));
    assert.ok(logs.length > 0, first.lines.join('\n'));
    for (const log of logs) assert.equal(log.node, 'edge-1.eu', JSON.stringify(log));
    assert.deepEqual(nodesOf((await scrapeOnce(t, { dataDir })).text), ['edge-1.eu']);
  });

  it('--data-dir :memory: keeps nothing: the host name', async (t) => {
    assert.deepEqual(nodesOf((await scrapeOnce(t, { dataDir: ':memory:' })).text), [hostname()]);
  });

  it('a --node-name that is not a name stops the start (exit 2) before the data dir is touched', async (t) => {
    const dataDir = join(tempDir(t, 'pubsub-node-'), 'data');
    const { child } = spawnServe(t, { dataDir, args: ['--node-name', 'a b'] });
    assert.equal((await child.waitForExit()).code, 2, child.report());
    assert.match(child.stderr, /nodeName "a b"/);
    assert.equal(existsSync(dataDir), false);
  });
});

describeWithTool('promtool check metrics with the node label', promtool, () => {
  it('passes', async (t) => {
    const { text } = await scrapeOnce(t, { dataDir: ':memory:', args: ['--node-name', 'promtool-node'] });
    assert.deepEqual(nodesOf(text), ['promtool-node']);
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(check.status, 0, `${check.stdout}${check.stderr}`);
  });
});
