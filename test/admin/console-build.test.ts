/**
 * The web console's build (src/admin/console-build.ts) on a copy of console/ in a temporary
 * folder: hashed names that follow the content up the import chain, a stale build rebuilt when
 * a source changes, and imports from outside the console refused.
 */
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildConsole, ConsoleBuilder } from '../../src/admin/console-build.ts';

const CONSOLE = new URL('../../console/', import.meta.url);
const RESOLVE_FROM = new URL('../../src/admin/console-build.ts', import.meta.url).href;

function assetNamed(names: Iterable<string>, base: string): string {
  const found = [...names].find((name) => name.startsWith(`${base}.`));
  assert.ok(found, `no asset ${base} in ${[...names].join(', ')}`);
  return found;
}

/** Rewrites a source and moves its mtime on (two writes within a clock tick look alike). */
async function edit(path: string, change: (text: string) => string, tick: number): Promise<void> {
  await writeFile(path, change(await readFile(path, 'utf8')));
  const when = new Date(Date.now() + tick * 1000);
  await utimes(path, when, when);
}

describe('console build', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pubsub-console-build-'));
    await cp(CONSOLE, dir, { recursive: true });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('every asset is named by its content hash; types are stripped and imports point at hashed names', async () => {
    const build = await buildConsole(dir, RESOLVE_FROM);
    const names = [...build.assets.keys()];
    for (const name of names) assert.match(name, /^[\w.-]+\.[\w]{12}\.(js|css|svg)$/, name);
    const app = build.assets.get(assetNamed(names, 'app'))!;
    assert.equal(app.contentType, 'text/javascript; charset=utf-8');
    const code = app.body.toString();
    assert.ok(code.includes(`from './${assetNamed(names, 'api')}'`), code.slice(0, 600));
    assert.ok(code.includes(`import('./${assetNamed(names, 'page-overview')}')`));
    assert.doesNotMatch(code, /\.ts'/);
    assert.doesNotMatch(code, /document\.getElementById\('main'\)!/, 'the non-null assertion is stripped');
    assert.ok(
      assetNamed(names, 'mqtt.esm') && assetNamed(names, 'uPlot.esm') && assetNamed(names, 'uPlot.min'),
    );
    const index = build.index.toString();
    assert.ok(index.includes(`<script type="module" src="/console/assets/${assetNamed(names, 'app')}">`));
    assert.ok(index.includes(`href="/console/assets/${assetNamed(names, 'console')}"`));
  });

  it("a changed source renames itself and every module importing it; the shell's request rebuilds a stale build", async () => {
    const builder = new ConsoleBuilder(dir, RESOLVE_FROM);
    const first = await builder.current();
    assert.equal(await builder.current(), first, 'an unchanged console is not rebuilt');
    await edit(join(dir, 'payload.ts'), (text) => `${text}\nexport const edited = 1;\n`, 10);
    assert.equal(await builder.latest(), first, 'an asset request takes the build as it is');
    const second = await builder.current();
    assert.notEqual(second, first);
    assert.equal(await builder.latest(), second);
    const renamed = (base: string) => [
      assetNamed(first.assets.keys(), base),
      assetNamed(second.assets.keys(), base),
    ];
    for (const base of ['payload', 'ws-connection', 'page-ws-client', 'app']) {
      const [before, now] = renamed(base);
      assert.notEqual(before, now, `${base} keeps its name though its import changed`);
      assert.equal(second.assets.has(before!), false, `${before} is still served`);
    }
    for (const base of ['dom', 'api', 'page-brokers', 'console']) {
      const [before, now] = renamed(base);
      assert.equal(before, now, `${base} was renamed though nothing it imports changed`);
    }
    assert.notEqual(second.indexEtag, first.indexEtag);
  });

  it('an import of anything but a console source or a known library fails the build', async () => {
    await edit(join(dir, 'payload.ts'), (text) => `import '../src/config.ts';\n${text}`, 20);
    await assert.rejects(
      buildConsole(dir, RESOLVE_FROM),
      /import of "\.\.\/src\/config\.ts" is not a console source/,
    );
  });
});
