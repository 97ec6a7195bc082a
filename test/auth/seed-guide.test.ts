/**
 * Acceptance of issues 6 and 21: Cloudflare Pub/Sub's get-started guide, end to end, against a
 * local server with only the host changed, once with the operator token and once with a token
 * scoped to `pubsub:edit`. Its curl commands (legacy X-Auth-Email / X-Auth-Key
 * headers) create a namespace, a TOKEN broker and two client tokens; its jq expression picks the
 * first; its MQTT.js program, run as a separate Node process, subscribes to "example-topic",
 * publishes "hello" and prints what it receives, over TCP and in the WebSocket form.
 *
 * The credentials command is the guide's verbatim, `...&topicAcl=#` unencoded: curl strips the
 * `#` as a URL fragment, so the server sees `topicAcl=` and applies its default, `#`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it, type TestContext } from 'node:test';
import { spawnChild } from '../helpers/child-process.ts';
import { curl, describeWithTool } from '../helpers/interop-tools.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const jqInstalled = spawnSync('jq', ['--version'], { stdio: 'ignore' }).status === 0;

/**
 * The guide's index.js as an ES module. MQTT.js is imported by absolute URL (the program lives
 * in a temporary directory, outside the repository's node_modules). Two options differ from the
 * guide's first version, and say why: Cloudflare's later examples make the same choices.
 */
const seedProgram = (mqttUrl: string): string => `import mqtt from ${JSON.stringify(mqttUrl)};

const brokerEndpoint = process.env.BROKER_ENDPOINT;

const options = {
  port: Number(process.env.BROKER_PORT),
  // MQTT.js sends no password unless a user name is set; the broker ignores the user name.
  username: process.env.SEED_USERNAME ?? 'anything',
  // Empty, not MQTT.js's default: a generated mqttjs_... id is not the token's sub (refused
  // with 0x85), while an empty one is given the token's sub (Assigned Client Identifier).
  clientId: process.env.SEED_CLIENT_ID ?? '',
  password: process.env.BROKER_TOKEN,
  protocolVersion: 5, // MQTT 5
  reconnectPeriod: 0,
};

const client = mqtt.connect(brokerEndpoint, options);

client.on('connect', (connack) => {
  const clientId = connack.properties?.assignedClientIdentifier ?? client.options.clientId;
  client.subscribe('example-topic');
  client.publish('example-topic', \`message from \${clientId}: hello at \${Date.now()}\`);
});
client.on('message', function (topic, message) {
  console.log(\`received message on \${topic}: \${message}\`);
  client.end();
});
client.on('error', (err) => {
  console.error(\`error: \${err.message} (\${err.code})\`);
  process.exitCode = 1;
  client.end();
});
setTimeout(() => {
  console.error('no message within 10 s');
  process.exit(2);
}, 10_000).unref();
`;

/**
 * The API token the guide's commands carry: the operator token printed at first start, and a
 * token with only `pubsub:edit` on the account (what the guide asks a user to create).
 */
const TOKENS = {
  operator: async (ts: TestServer) => ts.adminToken,
  'pubsub:edit': async (ts: TestServer) => {
    const res = await fetch(`${ts.apiUrl}/client/v4/accounts/${ts.accountId}/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ts.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'seed guide', permissions: ['pubsub:edit'] }),
    });
    const created = (await res.json()) as { result: { value: string; permissions: string[] } };
    assert.deepEqual(created.result.permissions, ['pubsub:edit']);
    return created.result.value;
  },
};

for (const [tokenKind, makeToken] of Object.entries(TOKENS))
  describeWithTool(
    `the seed guide (Cloudflare Pub/Sub get started) against a local server, with the ${tokenKind} token`,
    curl,
    () => {
      let ts: TestServer;
      let dir: string;
      /** The guide's shell variables, with the API host changed to the local server's. */
      let guideEnv: Record<string, string>;
      const credentials = { response: '', first: { key: '', value: '' } };

      /** Runs a shell command line as the guide shows it; resolves with its stdout (exit 0 asserted). */
      const sh = async (t: TestContext, script: string, input?: string): Promise<string> => {
        const child = spawnChild(t, 'sh', ['-c', script], { env: { ...process.env, ...guideEnv } });
        child.process.stdin!.end(input ?? '');
        const exit = await child.waitForExit();
        assert.equal(exit.code, 0, child.report());
        return child.lines.join('\n');
      };

      before(async () => {
        ts = await startServer({ httpPort: 0 });
        dir = mkdtempSync(join(tmpdir(), 'pubsub-seed-'));
        writeFileSync(join(dir, 'index.mjs'), seedProgram(import.meta.resolve('mqtt')));
        guideEnv = {
          API: `${ts.apiUrl}/client/v4`,
          CF_API_EMAIL: 'user@example.com',
          CF_API_KEY: await makeToken(ts),
          CLOUDFLARE_ACCOUNT_ID: ts.accountId,
          DEFAULT_NAMESPACE: 'my-namespace',
          BROKER_NAME: 'example-broker',
        };
      });
      after(async () => {
        await ts.close();
        rmSync(dir, { recursive: true, force: true });
      });

      it('curl creates the namespace and a TOKEN broker', async (t) => {
        const ns = JSON.parse(
          await sh(
            t,
            `curl -s -H "X-Auth-Email: \${CF_API_EMAIL}" -H "X-Auth-Key: \${CF_API_KEY}" -H "Content-Type: application/json" "\${API}/accounts/\${CLOUDFLARE_ACCOUNT_ID}/pubsub/namespaces" --data '{"name": "my-namespace"}'`,
          ),
        );
        assert.equal(ns.success, true, JSON.stringify(ns));
        assert.equal(ns.result.name, 'my-namespace');
        const broker = JSON.parse(
          await sh(
            t,
            `curl -s -H "X-Auth-Email: \${CF_API_EMAIL}" -H "X-Auth-Key: \${CF_API_KEY}" -H "Content-Type: application/json" "\${API}/accounts/\${CLOUDFLARE_ACCOUNT_ID}/pubsub/namespaces/\${DEFAULT_NAMESPACE}/brokers" --data '{"name": "example-broker", "authType": "TOKEN" }'`,
          ),
        );
        assert.equal(broker.success, true, JSON.stringify(broker));
        assert.equal(broker.result.authType, 'TOKEN');
      });

      it('curl issues two tokens with the guide command (topicAcl=# unencoded); the first is picked as the guide does', async (t) => {
        credentials.response = await sh(
          t,
          `curl -s -H "X-Auth-Email: \${CF_API_EMAIL}" -H "X-Auth-Key: \${CF_API_KEY}" -H "Content-Type: application/json" "\${API}/accounts/\${CLOUDFLARE_ACCOUNT_ID}/pubsub/namespaces/\${DEFAULT_NAMESPACE}/brokers/\${BROKER_NAME}/credentials?number=2&type=TOKEN&topicAcl=#"`,
        );
        const envelope = JSON.parse(credentials.response) as {
          success: boolean;
          result: Record<string, string>;
        };
        assert.equal(envelope.success, true, credentials.response);
        const entries = Object.entries(envelope.result);
        assert.equal(entries.length, 2);
        for (const [clientId, jwt] of entries) {
          assert.match(clientId, /^example-broker[0-9A-HJKMNP-TV-Z]{26}$/);
          const claims = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString());
          assert.equal(claims.sub, clientId);
          assert.equal(claims.topicAcl, '#', 'the server default, since curl dropped "#"');
        }
        // The guide: `| jq '.result | to_entries | .[0]'`, then `export BROKER_TOKEN="<value>"`.
        credentials.first = jqInstalled
          ? JSON.parse(await sh(t, `jq '.result | to_entries | .[0]'`, credentials.response))
          : { key: entries[0]![0], value: entries[0]![1] };
        assert.deepEqual([credentials.first.key, credentials.first.value], entries[0]);
      });

      const runSeed = async (t: TestContext, env: Record<string, string>): Promise<string> => {
        assert.notEqual(credentials.first.value, '', 'the token step ran');
        const child = spawnChild(t, process.execPath, ['index.mjs'], {
          cwd: dir,
          env: { ...process.env, BROKER_TOKEN: credentials.first.value, ...env },
        });
        const exit = await child.waitForExit();
        assert.equal(exit.code, 0, child.report());
        assert.equal(child.lines.length, 1, child.report());
        return child.lines[0]!;
      };
      const expected = (): RegExp =>
        new RegExp(
          `^received message on example-topic: message from ${credentials.first.key}: hello at \\d+$`,
        );

      it("the guide's MQTT.js program (protocolVersion 5, password = token) receives its hello over TCP", async (t) => {
        // No host name on plain TCP: the token's aud routes the client to example-broker.my-namespace.
        const line = await runSeed(t, {
          BROKER_ENDPOINT: `mqtt://127.0.0.1:${ts.port}`,
          BROKER_PORT: String(ts.port),
        });
        assert.match(line, expected(), 'the empty client id was assigned the token sub');
      });

      it('the WebSocket form (ws:// URL, username anything, clientId empty) receives its hello', async (t) => {
        const wsPort = new URL(ts.wsUrl).port;
        const line = await runSeed(t, { BROKER_ENDPOINT: ts.wsUrl, BROKER_PORT: wsPort });
        assert.match(line, expected());
      });

      it("the guide's later form (clientId and username = the token's client id) works as well", async (t) => {
        const line = await runSeed(t, {
          BROKER_ENDPOINT: `mqtt://127.0.0.1:${ts.port}`,
          BROKER_PORT: String(ts.port),
          SEED_CLIENT_ID: credentials.first.key,
          SEED_USERNAME: credentials.first.key,
        });
        assert.match(line, expected());
      });
    },
  );
