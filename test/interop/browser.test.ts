/**
 * A real browser: headless Chromium (Debian's `chromium`, driven by playwright-core) opens a
 * small page that loads MQTT.js's browser bundle (node_modules/mqtt/dist/mqtt.min.js), connects
 * to the broker with protocolVersion 5 over ws:// and over wss:// (the broker's --tls-self-signed
 * certificate, trusted by its SPKI pin through --ignore-certificate-errors-spki-list), subscribes,
 * publishes and receives its own message; a TCP client (MQTT.js in Node) publishes to the same
 * topic and the page receives that too, and the TCP client receives the page's message.
 *
 * Each run leaves a screenshot of the page in test-output/browser/ (gitignored) for a person to
 * look at: ws.png and wss.png.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { after, before, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import type { Browser } from 'playwright-core';
import { WAIT_MS } from '../helpers/child-process.ts';
import { chromium, describeWithTool, launchChromium, uniqueName } from '../helpers/interop-tools.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const BUNDLE = fileURLToPath(new URL('../../node_modules/mqtt/dist/mqtt.min.js', import.meta.url));
const SCREENSHOTS = fileURLToPath(new URL('../../test-output/browser/', import.meta.url));

/** The page: connects to ?broker= with MQTT 5, subscribes to ?topic=, publishes once, lists what arrives. */
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>pubsub in a browser</title>
<style>
  body { font: 15px system-ui, sans-serif; margin: 24px; color: #1d2330; }
  h1 { font-size: 20px; margin: 0 0 12px; }
  #status { display: inline-block; padding: 2px 10px; border-radius: 10px; background: #eee; }
  #status.ok { background: #d6f5dd; } #status.error { background: #fbd9d9; }
  table { border-collapse: collapse; margin-top: 16px; } td, th { border: 1px solid #ccd; padding: 4px 10px; text-align: left; }
</style>
<script src="/mqtt.min.js"></script></head>
<body>
<h1>pubsub: MQTT.js in Chromium</h1>
<p>Broker <code id="broker"></code> <span id="status">connecting…</span></p>
<p>Topic <code id="topic"></code></p>
<table><thead><tr><th>#</th><th>topic</th><th>payload</th><th>QoS</th></tr></thead><tbody id="messages"></tbody></table>
<script>
  const params = new URLSearchParams(location.search);
  const broker = params.get('broker');
  const topic = params.get('topic');
  document.getElementById('broker').textContent = broker;
  document.getElementById('topic').textContent = topic;
  const status = document.getElementById('status');
  window.received = [];
  window.state = 'connecting';
  const client = mqtt.connect(broker, { protocolVersion: 5, clientId: 'browser-' + Math.random().toString(16).slice(2), reconnectPeriod: 0 });
  client.on('connect', (connack) => {
    status.textContent = 'connected, MQTT 5, reason code ' + connack.reasonCode;
    status.className = 'ok';
    client.subscribe(topic, { qos: 1 }, (err) => {
      if (err) { window.state = 'error: ' + err.message; return; }
      client.publish(topic, 'hello from ' + navigator.userAgent.match(/Chrom\\S+/)[0], { qos: 1 }, () => {
        window.state = 'subscribed';
      });
    });
  });
  client.on('message', (t, payload, packet) => {
    window.received.push({ topic: t, payload: payload.toString(), qos: packet.qos });
    const row = document.createElement('tr');
    for (const cell of [window.received.length, t, payload.toString(), packet.qos]) {
      const td = document.createElement('td'); td.textContent = String(cell); row.appendChild(td);
    }
    document.getElementById('messages').appendChild(row);
  });
  client.on('error', (err) => { window.state = 'error: ' + err.message; status.textContent = err.message; status.className = 'error'; });
</script>
</body></html>`;

/** What the page keeps on its window. */
interface PageState {
  state: string;
  received: { topic: string; payload: string; qos: number }[];
}

let broker: TestServer;
let web: Server;
let webBase: string;
let browser: Browser | undefined;

describeWithTool('a real browser (Chromium + MQTT.js browser bundle)', chromium, () => {
  before(async () => {
    broker = await startServer({ tlsSelfSigned: true });
    const bundle = readFileSync(BUNDLE);
    web = createServer((req, res) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      if (path === '/mqtt.min.js') {
        res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle);
      } else if (path === '/') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
    const address = web.address();
    webBase = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    const spki = broker.server.tlsCertificate!.spkiSha256;
    browser = await launchChromium([`--ignore-certificate-errors-spki-list=${spki}`]);
    await mkdir(SCREENSHOTS, { recursive: true });
  });

  after(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (web ? web.close(() => resolve()) : resolve()));
    await broker?.close();
  });

  for (const scheme of ['ws', 'wss'] as const) {
    it(`Chromium over ${scheme}:// with MQTT 5: subscribes, publishes, receives its own and a TCP client's message`, async () => {
      const port = new URL(scheme === 'ws' ? broker.wsUrl : broker.wssUrl).port;
      // wss: the name the self-signed certificate is issued for.
      const url = `${scheme}://${scheme === 'ws' ? '127.0.0.1' : 'localhost'}:${port}/mqtt`;
      const topic = uniqueName(`browser/${scheme}`);
      const tcp = await mqtt.connectAsync(broker.url, { protocolVersion: 5, reconnectPeriod: 0 });
      const context = await browser!.newContext({ viewport: { width: 900, height: 420 } });
      try {
        await tcp.subscribeAsync(topic, { qos: 1 });
        const fromPage = new Promise<string>((resolve) =>
          tcp.once('message', (_t, p) => resolve(p.toString())),
        );
        const page = await context.newPage();
        const errors: string[] = [];
        page.on('pageerror', (err) => errors.push(err.message));
        await page.goto(`${webBase}/?broker=${encodeURIComponent(url)}&topic=${encodeURIComponent(topic)}`);
        await page.waitForFunction(() => (globalThis as unknown as PageState).state !== 'connecting', null, {
          timeout: WAIT_MS,
        });
        assert.equal(
          await page.evaluate(() => (globalThis as unknown as PageState).state),
          'subscribed',
          errors.join('\n'),
        );
        assert.match(await fromPage, /^hello from Chrom/);
        await tcp.publishAsync(topic, `hello from TCP over ${scheme}`, { qos: 1 });
        await page.waitForFunction(() => (globalThis as unknown as PageState).received.length >= 2, null, {
          timeout: WAIT_MS,
        });
        const received = await page.evaluate(() => (globalThis as unknown as PageState).received);
        assert.equal(received.length, 2);
        assert.match(received[0]!.payload, /^hello from Chrom/);
        assert.deepEqual(received[1], { topic, payload: `hello from TCP over ${scheme}`, qos: 1 });
        await page.screenshot({ path: `${SCREENSHOTS}${scheme}.png` });
        assert.deepEqual(errors, []);
      } finally {
        await context.close();
        await tcp.endAsync();
      }
    });
  }
});
