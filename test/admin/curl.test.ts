/**
 * The seed guide's curl commands (Cloudflare's Pub/Sub "Get started" guide, steps 3 and 4),
 * replayed verbatim through a shell against a running server, with only
 * `https://api.cloudflare.com` replaced by the local base URL. The guide authenticates with
 * the legacy X-Auth-Email / X-Auth-Key pair; our key is an admin API token.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, it } from 'node:test';
import { promisify } from 'node:util';
import { curl, describeWithTool } from '../helpers/interop-tools.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const run = promisify(execFile);

describeWithTool('the seed guide curl commands', curl, () => {
  let ts: TestServer;
  let env: NodeJS.ProcessEnv;
  const sh = async (script: string): Promise<unknown> => {
    const { stdout } = await run('bash', ['-c', script], { env });
    return JSON.parse(stdout);
  };

  before(async () => {
    ts = await startServer({ httpPort: 0 });
    env = {
      ...process.env,
      CF_API_EMAIL: 'you@example.com',
      CF_API_KEY: ts.adminToken,
      CF_ACCOUNT_ID: ts.accountId,
      API_BASE: ts.apiUrl,
    };
  });
  after(() => ts.close());

  it('step 3: create your first namespace', async () => {
    const out = (await sh(
      `curl -s -H "X-Auth-Email: \${CF_API_EMAIL}" -H "X-Auth-Key: \${CF_API_KEY}" -H "Content-Type: application/json" "\${API_BASE}/client/v4/accounts/\${CF_ACCOUNT_ID}/pubsub/namespaces" --data '{"name": "my-namespace" }'`,
    )) as { success: boolean; result: Record<string, unknown>; errors: unknown[]; messages: unknown[] };
    assert.equal(out.success, true, JSON.stringify(out));
    assert.deepEqual(out.errors, []);
    assert.deepEqual(out.messages, []);
    assert.deepEqual(Object.keys(out.result).sort(), [
      'created_on',
      'description',
      'id',
      'modified_on',
      'name',
    ]);
    assert.equal(out.result.name, 'my-namespace');
    assert.equal(out.result.description, '');
  });

  it('step 4: create a broker', async () => {
    const out = (await sh(
      `export DEFAULT_NAMESPACE="my-namespace"
       curl -s -H "X-Auth-Email: \${CF_API_EMAIL}" -H "X-Auth-Key: \${CF_API_KEY}" -H "Content-Type: application/json" "\${API_BASE}/client/v4/accounts/\${CF_ACCOUNT_ID}/pubsub/namespaces/\${DEFAULT_NAMESPACE}/brokers" --data '{"name": "example-broker", "authType": "TOKEN" }'`,
    )) as { success: boolean; result: Record<string, unknown> };
    assert.equal(out.success, true, JSON.stringify(out));
    assert.equal(out.result.name, 'example-broker');
    assert.equal(out.result.authType, 'TOKEN');
    assert.equal(out.result.expiration, null);
    assert.equal(out.result.endpoint, `mqtt://example-broker.my-namespace.localhost:${ts.port}`);
  });

  it('the same with a bearer token, and errors in the envelope with their HTTP status', async () => {
    const listed = (await sh(
      `curl -s -H "Authorization: Bearer \${CF_API_KEY}" "\${API_BASE}/client/v4/accounts/\${CF_ACCOUNT_ID}/pubsub/namespaces/my-namespace/brokers"`,
    )) as { result: { name: string }[]; result_info: { total_count: number } };
    assert.deepEqual(
      listed.result.map((b) => b.name),
      ['example-broker'],
    );
    const { stdout } = await run(
      'bash',
      [
        '-c',
        `curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer wrong" "\${API_BASE}/client/v4/accounts/\${CF_ACCOUNT_ID}/pubsub/namespaces"`,
      ],
      { env },
    );
    assert.equal(stdout, '403');
    const dup = (await sh(
      `curl -s -H "Authorization: Bearer \${CF_API_KEY}" -H "Content-Type: application/json" "\${API_BASE}/client/v4/accounts/\${CF_ACCOUNT_ID}/pubsub/namespaces" --data '{"name": "my-namespace" }'`,
    )) as { success: boolean; errors: { code: number }[] };
    assert.equal(dup.success, false);
    assert.equal(dup.errors[0]!.code, 14002);
  });
});
