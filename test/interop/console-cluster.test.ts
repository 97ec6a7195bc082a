/**
 * The web console of a cluster (docs/console.md, docs/cluster.md) in headless Chromium: two
 * `pubsub serve --cluster` nodes joined through a real nats-server. Signed in on either node,
 * the console has a Nodes page listing both (uptime, connections, link) and an Overview with each
 * node's connections; a server started without --cluster has no Nodes link and its Nodes page
 * says it is not clustered. Every test fails on an error in the page's console.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import type { Browser, Page } from 'playwright-core';
import { until } from '../helpers/child-process.ts';
import { type Nats, type Node, startNats, startNode } from '../helpers/cluster.ts';
import {
  chromium,
  describeWithTool,
  launchChromium,
  natsServer,
  pageErrors,
} from '../helpers/interop-tools.ts';
import { startServe } from '../helpers/pubsub-process.ts';

const SCREENSHOTS = fileURLToPath(new URL('../../test-output/console/', import.meta.url));

const cleanups: (() => unknown)[] = [];
/** The suite's own context: what it starts is stopped when the suite ends. */
const suite = { after: (fn: () => unknown) => cleanups.push(fn) } as unknown as TestContext;

let nats: Nats;
let a: Node;
let b: Node;
let browser: Browser;

/** A signed-in page on `apiUrl` at `path`, collecting console errors; closed after the test. */
async function signedIn(
  t: TestContext,
  apiUrl: string,
  token: string,
  path: string,
): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  t.after(() => context.close());
  const page = await context.newPage();
  const errors = pageErrors(page);
  await page.goto(`${apiUrl}${path}`);
  await page.getByLabel('Admin token').fill(token);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('navigation', { name: 'Console' }).waitFor();
  return { page, errors };
}

/** The rows of the table named `name`, each as its cells' text. */
async function rows(page: Page, name: string): Promise<string[][]> {
  const table = page.getByRole('table', { name, exact: true });
  return table
    .locator('tbody tr')
    .evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
}

describeWithTool('the web console in Chromium, clustered', chromium, () => {
  describeWithTool('with nats-server', natsServer, () => {
    before(async () => {
      nats = await startNats(suite);
      [a, b] = await Promise.all([startNode(suite, nats, 'node-a'), startNode(suite, nats, 'node-b')]);
      browser = await launchChromium();
      await mkdir(SCREENSHOTS, { recursive: true });
    });
    after(async () => {
      await browser?.close();
      for (const fn of cleanups.reverse()) await fn();
    });

    it("through node-b, the Nodes page lists both nodes, linked up, with node-a's MQTT connection counted", async (t) => {
      const client = await mqtt.connectAsync(a.urls.mqtt!, {
        reconnectPeriod: 0,
        clientId: 'cluster-console',
      });
      t.after(() => client.endAsync(true));
      const { page, errors } = await signedIn(t, b.apiUrl, b.token, '/console/overview');
      await page.getByRole('link', { name: 'Nodes', exact: true }).click();
      await page.waitForURL((url) => url.pathname === '/console/nodes');
      await until(async () => {
        const table = await rows(page, 'Nodes').catch(() => []);
        const nodeA = table.find((cells) => cells[0] === 'node-a');
        return table.length === 2 && nodeA?.[2] === '1';
      }, "the Nodes table with node-a's connection");
      const table = await rows(page, 'Nodes');
      assert.deepEqual(
        table.map((cells) => [cells[0], cells[3], cells[5]]),
        [
          ['node-b (this node)', 'up', b.apiUrl],
          ['node-a', 'up', a.apiUrl],
        ],
      );
      for (const cells of table) assert.match(cells[1]!, /^\d+[dhms]/, `uptime of ${cells[0]}`);
      for (const colorScheme of ['light', 'dark'] as const) {
        await page.emulateMedia({ colorScheme });
        await page.screenshot({ path: join(SCREENSHOTS, `nodes-${colorScheme}.png`), fullPage: true });
      }
      assert.equal(
        await page.getByRole('link', { name: 'Console on node-a' }).getAttribute('href'),
        `${a.apiUrl}/console/nodes`,
      );
      assert.deepEqual(errors, []);
    });

    it("the Overview of node-a gives each node's connections and link", async (t) => {
      const client = await mqtt.connectAsync(b.urls.mqtt!, { reconnectPeriod: 0, clientId: 'on-node-b' });
      t.after(() => client.endAsync(true));
      const { page, errors } = await signedIn(t, a.apiUrl, a.token, '/console/overview');
      await until(async () => {
        const table = await rows(page, 'Nodes now').catch(() => []);
        return table.some((cells) => cells[0] === 'node-b' && cells[1] === '1' && cells[2] === 'up');
      }, "node-b's connection in the Overview's Nodes now");
      const names = (await rows(page, 'Nodes now')).map((cells) => cells[0]);
      assert.deepEqual(names, ['node-a (this node)', 'node-b']);
      assert.deepEqual(errors, []);
    });

    it('a server without --cluster has no Nodes link, and its Nodes page says it is not clustered', async (t) => {
      const single = await startServe(t);
      const token = readFileSync(join(single.dataDir, 'admin-token'), 'utf8').trim();
      const { page, errors } = await signedIn(t, single.apiUrl, token, '/console/nodes');
      await page.getByText(/is not clustered: it was started without --cluster/).waitFor();
      await page.getByRole('link', { name: 'Overview', exact: true }).waitFor();
      assert.equal(await page.getByRole('link', { name: 'Nodes', exact: true }).count(), 0);
      assert.equal(await page.getByRole('table', { name: 'Nodes now' }).count(), 0);
      assert.deepEqual(errors, []);
    });
  });
});
