/**
 * The web console (docs/console.md) in a real browser: headless Chromium (Debian's `chromium`,
 * driven by playwright-core) against a real `pubsub serve` on port 0, operated only through its
 * labelled controls, with every effect checked from outside: through the admin API, an MQTT.js
 * client in Node and mosquitto_pub. Every test fails on an error in the page's console (a
 * Content-Security-Policy refusal included) other than the ones it expects.
 *
 * Screenshots of each page, light and dark, go to test-output/console/ (gitignored).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { until } from '../helpers/child-process.ts';
import {
  chromium,
  describeWithTool,
  launchChromium,
  mosquittoClients,
  mosquittoPub,
  pageErrors,
  uniqueName,
} from '../helpers/interop-tools.ts';
import { type RunningServe, startServe } from '../helpers/pubsub-process.ts';

const SCREENSHOTS = fileURLToPath(new URL('../../test-output/console/', import.meta.url));

let serve: RunningServe;
let browser: Browser;
let token: string;
const cleanups: (() => unknown)[] = [];
/** The suite's server outlives each test: its cleanups run in the suite's after hook. */
const suiteContext = { after: (fn: () => unknown) => cleanups.push(fn) } as unknown as TestContext;

// biome-ignore lint/suspicious/noExplicitAny: API results are JSON read field by field by the assertions
type Json = any;

/** The admin API, as a script outside the browser sees it (the console's account). */
async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${serve.apiUrl}/client/v4/accounts/${serve.accountId}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

/** A page in its own browser context, collecting console errors; closed after the test. */
async function openPage(t: TestContext, path = '/'): Promise<{ page: Page; errors: string[] }> {
  const context: BrowserContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  t.after(() => context.close());
  const page = await context.newPage();
  const errors = pageErrors(page);
  await page.goto(`${serve.apiUrl}${path}`);
  return { page, errors };
}

async function signIn(page: Page): Promise<void> {
  await page.getByLabel('Admin token').fill(token);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('navigation', { name: 'Console' }).waitFor();
  await page.getByRole('heading', { level: 1 }).waitFor();
}

/** The page in light and in dark, as `<name>-light.png` and `<name>-dark.png`. */
async function screenshots(page: Page, name: string): Promise<void> {
  for (const colorScheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme });
    await page.screenshot({ path: join(SCREENSHOTS, `${name}-${colorScheme}.png`), fullPage: true });
  }
  await page.emulateMedia({ colorScheme: null });
}

/** A namespace and a TOKEN broker made through the API, for tests about other pages. */
async function tokenBroker(): Promise<{ namespace: string; broker: string }> {
  const namespace = uniqueName('cns');
  assert.equal((await api('POST', '/pubsub/namespaces', { name: namespace })).status, 200);
  const made = await api('POST', `/pubsub/namespaces/${namespace}/brokers`, {
    name: 'b1',
    authType: 'TOKEN',
  });
  assert.equal(made.status, 200, JSON.stringify(made.body));
  return { namespace, broker: 'b1' };
}

/**
 * Publishes `[topic, payload]` pairs in order from outside the browser with a client token of the
 * broker: mosquitto_pub (MQTT 3.1.1) when installed, else MQTT.js.
 */
async function publishFromOutside(
  t: TestContext,
  namespace: string,
  broker: string,
  messages: [string, string][],
): Promise<void> {
  const [clientId, password] = Object.entries(
    (await api('GET', `/pubsub/namespaces/${namespace}/brokers/${broker}/credentials?number=1`)).body.result,
  )[0] as [string, string];
  const credentials = { clientId, username: `${broker}.${namespace}`, password };
  for (const [topic, payload] of messages) {
    if (mosquittoClients.available) {
      const pub = await mosquittoPub(t, [
        ...['-h', '127.0.0.1', '-p', String(serve.port('mqtt')), '-V', 'mqttv311'],
        ...['-i', credentials.clientId, '-u', credentials.username, '-P', credentials.password],
        ...['-t', topic, '-m', payload],
      ]);
      assert.equal(pub.exit?.code, 0, pub.report());
    } else {
      const client = await mqtt.connectAsync(serve.urls.mqtt!, { ...credentials, reconnectPeriod: 0 });
      await client.publishAsync(topic, payload);
      await client.endAsync();
    }
  }
}

describeWithTool('the web console in Chromium', chromium, () => {
  before(async () => {
    serve = await startServe(suiteContext);
    token = readFileSync(join(serve.dataDir, 'admin-token'), 'utf8').trim();
    browser = await launchChromium();
    await mkdir(SCREENSHOTS, { recursive: true });
  });

  after(async () => {
    await browser?.close();
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('the banner names the console; the shell revalidates by ETag, its assets are hashed and immutable, all with a CSP forbidding inline script', async () => {
    assert.ok(serve.child.lines.includes(`pubsub: web console on ${serve.apiUrl}/`), serve.child.report());
    const shell = await fetch(`${serve.apiUrl}/`);
    assert.equal(shell.status, 200);
    assert.match(shell.headers.get('content-type')!, /^text\/html/);
    const csp = shell.headers.get('content-security-policy')!;
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(shell.headers.get('cache-control'), 'no-cache');
    const etag = shell.headers.get('etag')!;
    assert.equal((await fetch(`${serve.apiUrl}/`, { headers: { 'if-none-match': etag } })).status, 304);
    const html = await shell.text();
    assert.doesNotMatch(html, /<script>|<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');
    const entry = html.match(/<script type="module" src="(\/console\/assets\/app\.[\w-]+\.js)">/)?.[1];
    assert.ok(entry, html);
    const app = await fetch(`${serve.apiUrl}${entry}`);
    assert.equal(app.status, 200);
    assert.equal(app.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.match(app.headers.get('content-security-policy')!, /script-src 'self'(;|$)/);
    const code = await app.text();
    assert.doesNotMatch(code, /from '\.\/[\w-]+\.ts'/, 'imports point at built assets');
    const library = code.match(/import\('\.\/(page-ws-client\.[\w-]+\.js)'\)/)?.[1];
    const wsPage = await (await fetch(`${serve.apiUrl}/console/assets/${library}`)).text();
    const mqttAsset = wsPage.match(/import\('\.\/(mqtt\.esm\.[\w-]+\.js)'\)/)?.[1];
    const mqttLibrary = await fetch(`${serve.apiUrl}/console/assets/${mqttAsset}`);
    assert.equal(mqttLibrary.status, 200, String(mqttAsset));
    assert.match(mqttLibrary.headers.get('content-type')!, /^text\/javascript/);
    assert.equal(mqttLibrary.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.equal(
      (await mqttLibrary.arrayBuffer()).byteLength,
      Number(mqttLibrary.headers.get('content-length')),
    );
    // An asset name the build did not make is unknown, whatever its shape.
    assert.equal(
      (await fetch(`${serve.apiUrl}${entry.replace(/\.[\w-]+\.js$/, '.000000000000.js')}`)).status,
      404,
    );
    assert.equal((await fetch(`${serve.apiUrl}/console/assets/app.ts`)).status, 404);
    assert.equal((await fetch(`${serve.apiUrl}/console/app.js`)).status, 403);
    // Only the console's own paths are public: anything else under /console is an unknown path.
    assert.equal((await fetch(`${serve.apiUrl}/console/../data/admin-token`)).status, 403);
    assert.equal((await fetch(`${serve.apiUrl}/console/index.html`)).status, 403);
  });

  it("sign-in: a wrong admin token is refused in the API's words; the right one opens the console; sign-out forgets it", async (t) => {
    const { page, errors } = await openPage(t);
    await page.getByLabel('Admin token').fill('not-the-token');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page
      .getByRole('alert')
      .filter({ hasText: 'Sign-in refused: invalid API token (code 10000)' })
      .waitFor();
    await screenshots(page, 'sign-in-refused');
    await signIn(page);
    // Playwright learns of history.replaceState a little later than the page shows it.
    await page.waitForURL((url) => url.pathname === '/console/overview');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('pubsub.adminToken')), token);
    assert.ok(!page.url().includes(token));
    await page.reload();
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Admin token').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('pubsub.adminToken')), null);
    // The one expected error: the browser logs the refused request (403).
    assert.deepEqual(
      errors.filter((e) => !/status of 403/.test(e)),
      [],
    );
    assert.equal(errors.length, 1, errors.join('\n'));
  });

  it('Brokers: a namespace and a TOKEN broker created on the page are in the API, with endpoints to copy; delete names what goes', async (t) => {
    const { page, errors } = await openPage(t, '/console/brokers');
    await signIn(page);
    const namespace = uniqueName('cns');
    const createNamespace = page.getByRole('form', { name: 'Create namespace' });
    await createNamespace.getByLabel('Namespace name').fill(namespace);
    await createNamespace.getByRole('button', { name: 'Create namespace' }).click();
    await page
      .getByRole('status')
      .filter({ hasText: `Namespace ${namespace} created.` })
      .waitFor();
    const createBroker = page.getByRole('form', { name: 'Create broker' });
    await createBroker.getByLabel('Namespace', { exact: true }).selectOption(namespace);
    await createBroker.getByLabel('Broker name').fill('b1');
    await createBroker.getByLabel('Authentication type').selectOption('TOKEN');
    await createBroker.getByRole('button', { name: 'Create broker' }).click();
    await page
      .getByRole('status')
      .filter({ hasText: `Broker b1.${namespace} created.` })
      .waitFor();

    const made = await api('GET', `/pubsub/namespaces/${namespace}/brokers/b1`);
    assert.equal(made.status, 200);
    assert.equal(made.body.result.authType, 'TOKEN');
    const card = page.getByRole('article', { name: `Broker b1.${namespace}` });
    assert.equal(
      await card.getByRole('textbox', { name: `ws endpoint of b1.${namespace}`, exact: true }).inputValue(),
      made.body.result.endpoints.ws,
    );
    assert.equal(
      await card.getByRole('textbox', { name: `mqtt endpoint of b1.${namespace}`, exact: true }).inputValue(),
      made.body.result.endpoints.mqtt,
    );
    await screenshots(page, 'brokers');

    await card.getByRole('button', { name: `Edit broker b1.${namespace}` }).click();
    await card.getByLabel('Description').fill('edited on the console');
    await card.getByRole('button', { name: 'Save' }).click();
    await page
      .getByRole('status')
      .filter({ hasText: `Broker b1.${namespace} saved.` })
      .waitFor();
    assert.equal(
      (await api('GET', `/pubsub/namespaces/${namespace}/brokers/b1`)).body.result.description,
      'edited on the console',
    );

    await page.getByRole('button', { name: `Delete broker b1.${namespace}` }).click();
    const dialog = page.getByRole('dialog', { name: `Delete broker b1.${namespace}?` });
    await dialog.getByText('Its connected clients are disconnected').waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    assert.equal((await api('GET', `/pubsub/namespaces/${namespace}/brokers/b1`)).status, 200);
    await page.getByRole('button', { name: `Delete broker b1.${namespace}` }).click();
    await screenshots(page, 'brokers-delete');
    await dialog.getByRole('button', { name: 'Delete broker' }).click();
    await page
      .getByRole('status')
      .filter({ hasText: `Broker b1.${namespace} deleted.` })
      .waitFor();
    assert.equal((await api('GET', `/pubsub/namespaces/${namespace}/brokers/b1`)).status, 404);
    assert.deepEqual(errors, []);
  });

  it('Credentials: a token issued on the page connects MQTT.js; revoking its jti on the page disconnects it (0x98), unrevoke lists it no more', async (t) => {
    const { namespace, broker } = await tokenBroker();
    const { page, errors } = await openPage(t, `/console/credentials?broker=${broker}.${namespace}`);
    await signIn(page);
    const issue = page.getByRole('form', { name: 'Issue client tokens' });
    await issue.getByLabel('Client id').fill('cred-client');
    await issue.getByRole('button', { name: 'Issue', exact: true }).click();
    const jwt = await issue.getByRole('textbox', { name: 'token of cred-client', exact: true }).inputValue();
    await screenshots(page, 'credentials');

    const client = await mqtt.connectAsync(serve.urls.mqtt!, {
      protocolVersion: 5,
      clientId: 'cred-client',
      username: `${broker}.${namespace}`,
      password: jwt,
      reconnectPeriod: 0,
    });
    t.after(() => client.endAsync(true));
    const disconnected = new Promise<number | undefined>((resolve) =>
      client.once('disconnect', (packet) => resolve(packet.reasonCode)),
    );
    const jti = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()).jti as string;
    await issue.getByRole('button', { name: `Revoke ${jti}` }).click();
    assert.equal(await disconnected, 0x98);
    assert.deepEqual(
      (await api('GET', `/pubsub/namespaces/${namespace}/brokers/${broker}/revocations`)).body.result,
      [jti],
    );
    await page.getByRole('button', { name: `Unrevoke ${jti}` }).click();
    await page
      .getByRole('status')
      .filter({ hasText: `Token ${jti} is valid again` })
      .waitFor();
    assert.deepEqual(
      (await api('GET', `/pubsub/namespaces/${namespace}/brokers/${broker}/revocations`)).body.result,
      [],
    );

    const before = (await api('GET', `/pubsub/namespaces/${namespace}/brokers/${broker}/publickeys`)).body
      .result.keys;
    await page.getByRole('button', { name: 'Rotate keys' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Rotate keys' }).click();
    await page.getByRole('status').filter({ hasText: 'Keys rotated.' }).waitFor();
    const rotated = (await api('GET', `/pubsub/namespaces/${namespace}/brokers/${broker}/publickeys`)).body
      .result.keys;
    assert.notDeepEqual(rotated, before);
    for (const key of rotated) await page.getByRole('cell', { name: key.kid, exact: true }).waitFor();
    assert.deepEqual(errors, []);
  });

  for (const version of ['MQTT 5.0', 'MQTT 3.1.1'] as const) {
    it(`WebSocket client (${version}): connects with a minted token, subscribes demo/#, sees its own and mosquitto_pub's messages, payloads as text`, async (t) => {
      const { namespace, broker } = await tokenBroker();
      const { page, errors } = await openPage(t, '/console/ws-client');
      await signIn(page);
      await page.getByRole('link', { name: 'WebSocket client' }).click();
      await page.getByLabel('Broker', { exact: true }).selectOption(`${broker}.${namespace}`);
      await page.getByLabel('Protocol').selectOption({ label: version });
      await page.getByRole('button', { name: 'Mint token' }).click();
      await page.getByRole('status').filter({ hasText: 'Minted a token' }).waitFor();
      await page.getByRole('button', { name: 'Connect', exact: true }).click();
      await page.getByRole('status').filter({ hasText: 'Connected' }).waitFor();
      await page.getByLabel('Filter', { exact: true }).fill('demo/#');
      await page.getByRole('button', { name: 'Subscribe', exact: true }).click();
      await page.getByRole('status').filter({ hasText: 'Subscribed to demo/#' }).waitFor();
      await page.getByLabel('Topic', { exact: true }).fill('demo/1');
      await page.getByLabel('Payload', { exact: true }).fill('hello');
      await page.getByRole('button', { name: 'Publish', exact: true }).click();
      const messages = page.getByRole('region', { name: 'Messages' });
      await messages
        .getByRole('listitem')
        .filter({ hasText: 'demo/1' })
        .filter({ hasText: 'hello' })
        .waitFor();

      const xss = '<img src=x onerror=alert(1)>';
      await publishFromOutside(t, namespace, broker, [['demo/2', xss]]);
      const shown = messages.getByRole('listitem').filter({ hasText: 'demo/2' });
      await shown.filter({ hasText: xss }).waitFor();
      assert.equal(await messages.locator('img').count(), 0, 'the payload was rendered as HTML');

      await page.getByLabel('Payload view').selectOption('hex');
      await messages
        .getByRole('listitem')
        .filter({ hasText: 'demo/1' })
        .filter({ hasText: '68 65 6c 6c 6f' })
        .waitFor();
      await page.getByLabel('Search messages').fill('demo/2');
      await until(
        async () => (await messages.getByRole('listitem').count()) === 1,
        'the search to keep one message',
      );
      await screenshots(page, `ws-client-${version === 'MQTT 5.0' ? 'v5' : 'v311'}`);
      await messages.getByRole('button', { name: 'Clear', exact: true }).click();
      await until(async () => (await messages.getByRole('listitem').count()) === 0, 'Clear to empty the log');
      await page.getByRole('button', { name: 'Disconnect', exact: true }).click();
      await page.getByRole('status').filter({ hasText: 'Disconnected.' }).waitFor();
      assert.deepEqual(errors, []);
    });
  }

  it('WebSocket client: two connections side by side; a will on connect (MQTT 5) is published when its token is revoked (0x98); a live topic tree and a chart of numbers and of a JSON field', async (t) => {
    const { namespace, broker } = await tokenBroker();
    const { page, errors } = await openPage(t, `/console/ws-client?broker=${broker}.${namespace}`);
    await signIn(page);
    await page.getByRole('button', { name: 'New connection' }).click();
    const first = page.getByRole('region', { name: 'Connection 1' });
    const second = page.getByRole('region', { name: 'Connection 2' });
    async function connect(panel: typeof first, version: string): Promise<string> {
      await panel.getByLabel('Protocol').selectOption({ label: version });
      await panel.getByRole('button', { name: 'Mint token' }).click();
      await panel.getByRole('status').filter({ hasText: 'Minted a token' }).waitFor();
      const jwt = await panel.getByLabel('Password or token').inputValue();
      await panel.getByRole('button', { name: 'Connect', exact: true }).click();
      await panel.getByRole('status').filter({ hasText: 'Connected' }).waitFor();
      return jwt;
    }
    await first.getByText('Will', { exact: true }).click();
    await first.getByLabel('Will topic').fill('demo/will');
    await first.getByLabel('Will payload').fill('gone');
    await first.getByLabel('Will QoS').selectOption('1');
    const jwt = await connect(first, 'MQTT 5.0');
    await connect(second, 'MQTT 3.1.1');
    await second.getByLabel('Filter', { exact: true }).fill('demo/#');
    await second.getByRole('button', { name: 'Subscribe', exact: true }).click();
    await second.getByRole('status').filter({ hasText: 'Subscribed to demo/#' }).waitFor();

    await publishFromOutside(t, namespace, broker, [
      ['demo/n', '1'],
      ['demo/j', '{"sensor":{"c":7}}'],
    ]);
    const tree = second.getByRole('region', { name: 'Topic tree' });
    await tree.getByRole('listitem', { name: 'demo: 2', exact: true }).waitFor();
    await tree.getByRole('listitem', { name: 'demo/n: 1', exact: true }).waitFor();
    await tree.getByRole('button', { name: 'n', exact: true }).click();
    const chart = second.getByRole('region', { name: 'Chart' });
    assert.equal(await chart.getByLabel('Chart topic').inputValue(), 'demo/n');
    await publishFromOutside(t, namespace, broker, [
      ['demo/n', '2.5'],
      ['demo/n', 'not a number'],
      ['demo/n', '4'],
    ]);
    await chart
      .getByText('2 points from demo/n, last 4; 1 payloads without a number skipped.', { exact: true })
      .waitFor();
    assert.equal(await chart.locator('canvas').count(), 1);
    await tree.getByRole('listitem', { name: 'demo/n: 4', exact: true }).waitFor();

    await chart.getByLabel('Chart topic').fill('demo/j');
    await chart.getByLabel('Numeric field').fill('sensor.c');
    await chart.getByLabel('Numeric field').press('Tab');
    await publishFromOutside(t, namespace, broker, [
      ['demo/j', '{"sensor":{"c":8}}'],
      ['demo/j', '{"sensor":{"c":"9.5"}}'],
    ]);
    await chart.getByText('2 points from demo/j, last 9.5.', { exact: true }).waitFor();
    await screenshots(page, 'ws-client-two');

    const jti = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()).jti as string;
    const revoked = await api(
      'POST',
      `/pubsub/namespaces/${namespace}/brokers/${broker}/revocations?jti=${jti}`,
    );
    assert.equal(revoked.status, 200);
    await first
      .getByRole('status')
      .filter({ hasText: 'Disconnected: the server disconnected it: reason 0x98' })
      .waitFor();
    await second
      .getByRole('region', { name: 'Messages' })
      .getByRole('listitem')
      .filter({ hasText: 'demo/will' })
      .filter({ hasText: 'gone' })
      .waitFor();
    assert.equal(await second.getByRole('button', { name: 'Disconnect', exact: true }).isEnabled(), true);
    await page.getByRole('button', { name: 'Close Connection 2' }).click();
    assert.equal(await page.getByRole('region', { name: /^Connection / }).count(), 1);
    assert.deepEqual(errors, []);
  });

  it('Overview: live connections and message rates of the default broker, from MQTT.js traffic, in the table and the charts', async (t) => {
    const publisher = await mqtt.connectAsync(serve.urls.mqtt!, { protocolVersion: 5, reconnectPeriod: 0 });
    t.after(() => publisher.endAsync(true));
    const timer = setInterval(() => publisher.publish('overview/load', 'x'), 50);
    t.after(() => clearInterval(timer));
    const { page, errors } = await openPage(t, '/console/overview');
    await signIn(page);
    const table = page.getByRole('table', { name: 'Brokers now' });
    const row = table
      .getByRole('row')
      .filter({ has: page.getByRole('cell', { name: 'default.local', exact: true }) });
    await until(async () => {
      const cells = await row.getByRole('cell').allInnerTexts();
      return cells.length === 5 && Number(cells[1]) >= 1 && Number(cells[2]) > 0;
    }, 'the default broker with a connection and messages in');
    assert.equal(await page.locator('.chart canvas').count(), 2);
    await page.getByLabel('Chart').selectOption('default.local');
    await page.waitForTimeout(2500); // a few more samples for the screenshot: this wait asserts nothing
    await screenshots(page, 'overview');
    assert.deepEqual(errors, []);
  });

  it('Clients: connected clients (MQTT 5 and 3.1.1) and an offline session are listed with their figures; Disconnect kicks (0x98), End session discards', async (t) => {
    const prefix = uniqueName('cl');
    const v5 = await mqtt.connectAsync(serve.urls.mqtt!, {
      protocolVersion: 5,
      clientId: `${prefix}-v5`,
      clean: false,
      properties: { sessionExpiryInterval: 600 },
      reconnectPeriod: 0,
    });
    t.after(() => v5.endAsync(true));
    await v5.subscribeAsync('clients/+/temp', { qos: 1 });
    const v311 = await mqtt.connectAsync(serve.urls.mqtt!, {
      protocolVersion: 4,
      clientId: `${prefix}-v311`,
      reconnectPeriod: 0,
    });
    t.after(() => v311.endAsync(true));
    const away = await mqtt.connectAsync(serve.urls.mqtt!, {
      protocolVersion: 5,
      clientId: `${prefix}-away`,
      clean: false,
      properties: { sessionExpiryInterval: 3600 },
      reconnectPeriod: 0,
    });
    await away.subscribeAsync('away/#', { qos: 1 });
    await away.endAsync();
    // A client id no API path segment can carry: its subscriptions are read through ?client_id=.
    const slashed = await mqtt.connectAsync(serve.urls.mqtt!, {
      protocolVersion: 5,
      clientId: `${prefix}/device`,
      reconnectPeriod: 0,
    });
    t.after(() => slashed.endAsync(true));
    await slashed.subscribeAsync('slashed/+', { qos: 0 });

    const { page, errors } = await openPage(t, '/console/clients?broker=default.local');
    await signIn(page);
    await page.getByLabel('Client id prefix').fill(prefix);
    const table = page.getByRole('table', { name: 'Clients' });
    const row = (id: string) =>
      table.getByRole('row').filter({ has: page.getByRole('cell', { name: id, exact: true }) });
    await row(`${prefix}-away`).waitFor();
    const cells = async (id: string) => row(id).getByRole('cell').allInnerTexts();
    const v5Cells = await cells(`${prefix}-v5`);
    assert.deepEqual(
      [v5Cells[1], v5Cells[2], v5Cells[3], v5Cells[5], v5Cells[7], v5Cells[8], v5Cells[9]],
      ['default.local', 'connected', 'tcp', 'MQTT 5.0', '1', '0', '0'],
    );
    assert.match(v5Cells[4]!, /^127\.0\.0\.1:\d+$/);
    assert.equal((await cells(`${prefix}-v311`))[5], 'MQTT 3.1.1');
    const awayCells = await cells(`${prefix}-away`);
    assert.deepEqual([awayCells[2], awayCells[3], awayCells[7]], ['offline', '', '1']);
    await page.getByRole('button', { name: `Subscriptions of ${prefix}-v5` }).click();
    await page
      .getByRole('table', { name: `Subscription list of ${prefix}-v5` })
      .getByRole('cell', { name: 'clients/+/temp', exact: true })
      .waitFor();
    await page.getByRole('button', { name: `Subscriptions of ${prefix}/device` }).click();
    await page
      .getByRole('table', { name: `Subscription list of ${prefix}/device` })
      .getByRole('cell', { name: 'slashed/+', exact: true })
      .waitFor();
    await screenshots(page, 'clients');

    const kicked = new Promise<number | undefined>((resolve) =>
      v5.once('disconnect', (packet) => resolve(packet.reasonCode)),
    );
    await page.getByRole('button', { name: `Disconnect ${prefix}-v5` }).click();
    assert.equal(await kicked, 0x98);
    await page
      .getByRole('status')
      .filter({ hasText: `${prefix}-v5 disconnected.` })
      .waitFor();
    await until(
      async () => (await cells(`${prefix}-v5`))[2] === 'offline',
      'the kicked session to show offline',
    );

    await page.getByRole('button', { name: `End session of ${prefix}-away` }).click();
    await page
      .getByRole('dialog', { name: `End the session of ${prefix}-away?` })
      .getByRole('button', { name: 'End session' })
      .click();
    await page
      .getByRole('status')
      .filter({ hasText: `The session of ${prefix}-away ended.` })
      .waitFor();
    const left = await api(
      'GET',
      `/pubsub/namespaces/local/brokers/default/clients?client_id_prefix=${prefix}`,
    );
    assert.deepEqual(left.body.result.map((c: Json) => c.client_id).sort(), [
      `${prefix}-v311`,
      `${prefix}-v5`,
      `${prefix}/device`,
    ]);
    await until(
      async () => (await row(`${prefix}-away`).count()) === 0,
      'the ended session to leave the table',
    );
    assert.deepEqual(errors, []);
  });

  it('Retained: listed by filter with a topic tree; JSON pretty-printed, binary as hex, markup as text; a level narrows the list; Delete removes one', async (t) => {
    const root = uniqueName('rt');
    const publisher = await mqtt.connectAsync(serve.urls.mqtt!, { protocolVersion: 5, reconnectPeriod: 0 });
    t.after(() => publisher.endAsync(true));
    await publisher.publishAsync(`${root}/kitchen/temp`, '{"celsius":21.5}', { retain: true, qos: 1 });
    await publisher.publishAsync(`${root}/kitchen/raw`, Buffer.from([0x00, 0x01, 0xff]), {
      retain: true,
      qos: 1,
    });
    await publisher.publishAsync(`${root}/hall`, '<img src=x onerror=alert(1)>', { retain: true, qos: 1 });

    const { page, errors } = await openPage(t, '/console/retained');
    await signIn(page);
    await page.getByLabel('Topic filter').fill(`${root}/#`);
    await page.getByRole('button', { name: 'List', exact: true }).click();
    const list = page.getByRole('list', { name: 'Retained messages' });
    const item = (topic: string) => list.getByRole('listitem', { name: topic, exact: true });
    await item(`${root}/hall`).waitFor();
    assert.equal(await item(`${root}/kitchen/temp`).locator('pre').textContent(), '{\n  "celsius": 21.5\n}');
    assert.equal(await item(`${root}/kitchen/raw`).locator('pre').textContent(), '00 01 ff');
    assert.equal(await item(`${root}/hall`).locator('pre').textContent(), '<img src=x onerror=alert(1)>');
    assert.equal(await list.locator('img').count(), 0, 'the payload was rendered as HTML');
    await screenshots(page, 'retained');

    await page
      .getByRole('navigation', { name: 'Topic tree' })
      .getByRole('button', { name: `Topic level ${root}/kitchen`, exact: true })
      .click();
    assert.equal(await page.getByLabel('Topic filter').inputValue(), `${root}/kitchen/#`);
    await until(
      async () => (await list.getByRole('listitem').count()) === 2,
      'the level to keep its two topics',
    );

    await item(`${root}/kitchen/raw`)
      .getByRole('button', { name: `Delete retained ${root}/kitchen/raw` })
      .click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete', exact: true }).click();
    await page
      .getByRole('status')
      .filter({ hasText: `Retained message of ${root}/kitchen/raw deleted.` })
      .waitFor();
    const left = await api(
      'GET',
      `/pubsub/namespaces/local/brokers/default/retained?filter=${encodeURIComponent(`${root}/#`)}`,
    );
    assert.deepEqual(left.body.result.map((m: Json) => m.topic).sort(), [
      `${root}/hall`,
      `${root}/kitchen/temp`,
    ]);
    assert.deepEqual(errors, []);
  });

  it('Hooks: a deployment refused by the API marks its line; a deployed function runs on MQTT traffic and its figures show; then a webhook is set', async (t) => {
    const { namespace, broker } = await tokenBroker();
    const { page, errors } = await openPage(t, `/console/hooks?broker=${broker}.${namespace}`);
    await signIn(page);
    const editor = page.getByLabel('Function code');
    await editor.fill('export function onPublish(messages) {\n  return messages;\n}\nconst broken = ;\n');
    await page.getByRole('button', { name: 'Deploy', exact: true }).click();
    await page
      .getByRole('alert')
      .filter({ hasText: /^Line 4: .*code 14010/ })
      .waitFor();
    assert.equal(await page.locator('ol.gutter li.error-line').textContent(), '4');
    await screenshots(page, 'hooks-error');

    await editor.fill(
      'export function onPublish(messages) {\n  return messages.map((m) => ({ ...m, payload: new TextDecoder().decode(m.payload).toUpperCase() }));\n}\n',
    );
    await page.getByRole('button', { name: 'Deploy', exact: true }).click();
    await page.getByRole('status').filter({ hasText: 'Function version 1 deployed.' }).waitFor();
    assert.equal(await page.locator('ol.gutter li.error-line').count(), 0);
    const [clientId, password] = Object.entries(
      (await api('GET', `/pubsub/namespaces/${namespace}/brokers/${broker}/credentials?number=1`)).body
        .result,
    )[0] as [string, string];
    const client = await mqtt.connectAsync(serve.urls.mqtt!, {
      protocolVersion: 5,
      clientId,
      username: `${broker}.${namespace}`,
      password,
      reconnectPeriod: 0,
    });
    t.after(() => client.endAsync(true));
    await client.subscribeAsync('hooked/#');
    const got = new Promise<string>((resolve) =>
      client.once('message', (_topic, payload) => resolve(payload.toString())),
    );
    await client.publishAsync('hooked/1', 'quiet', { qos: 1 });
    assert.equal(await got, 'QUIET');
    const metrics = page.getByRole('table', { name: 'Hook metrics' });
    const figure = (name: string) =>
      metrics
        .getByRole('row')
        .filter({ has: page.getByRole('rowheader', { name, exact: true }) })
        .getByRole('cell');
    await until(
      async () => Number(await figure('calls').textContent()) >= 1,
      'the figures to count the call',
    );
    await screenshots(page, 'hooks');

    await page.getByRole('button', { name: 'Remove function' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Remove function' }).click();
    await page.getByRole('status').filter({ hasText: 'Function removed.' }).waitFor();
    await page.getByLabel('Webhook URL').fill('http://127.0.0.1:9/pubsub');
    await page.getByLabel('Failure policy').selectOption('fail-open');
    await page.getByRole('button', { name: 'Set webhook' }).click();
    await page.getByRole('status').filter({ hasText: 'Webhook set to http://127.0.0.1:9/pubsub.' }).waitFor();
    const hook = await api('GET', `/pubsub/namespaces/${namespace}/brokers/${broker}/hook`);
    assert.equal(hook.body.result.kind, 'webhook');
    assert.deepEqual(
      [hook.body.result.on_publish.url, hook.body.result.on_publish.policy],
      ['http://127.0.0.1:9/pubsub', 'fail-open'],
    );
    await page.getByLabel('Hook in force').getByText('webhook', { exact: true }).waitFor();
    // The one expected error: the browser logs the refused deployment (400).
    assert.deepEqual(
      errors.filter((e) => !/status of 400/.test(e)),
      [],
    );
    assert.equal(errors.length, 1, errors.join('\n'));
  });

  it('every page has its own address: links push history, the back button returns to the page before', async (t) => {
    const { page, errors } = await openPage(t, '/console/credentials');
    await signIn(page);
    await page.getByRole('heading', { name: 'Credentials', level: 1 }).waitFor();
    await page.getByRole('link', { name: 'Brokers' }).click();
    await page.getByRole('heading', { name: 'Brokers', level: 1 }).waitFor();
    await page.waitForURL((url) => url.pathname === '/console/brokers');
    await page.getByRole('link', { name: 'WebSocket client' }).click();
    await page.getByRole('heading', { name: 'WebSocket client', level: 1 }).waitFor();
    await page.goBack();
    await page.getByRole('heading', { name: 'Brokers', level: 1 }).waitFor();
    await page.goBack();
    await page.getByRole('heading', { name: 'Credentials', level: 1 }).waitFor();
    await page.waitForURL((url) => url.pathname === '/console/credentials');
    await page.goForward();
    await page.getByRole('heading', { name: 'Brokers', level: 1 }).waitFor();
    assert.equal(await page.getByRole('link', { name: 'Brokers' }).getAttribute('aria-current'), 'page');
    assert.deepEqual(errors, []);
  });
});
