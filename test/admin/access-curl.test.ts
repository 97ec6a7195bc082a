/**
 * The authentication bypass of issue 24, replayed with curl against a running server: the
 * percent-encoded, mixed-case, doubled-slash and dot-segment spellings of the account and
 * token routes (sent as-is: `--path-as-is`, so curl resolves nothing) are 403 without a
 * token, and nothing is minted. With the token, a dot segment is refused as ambiguous (400).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, it } from 'node:test';
import { promisify } from 'node:util';
import { curl, describeWithTool } from '../helpers/interop-tools.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const run = promisify(execFile);

describeWithTool('admin API access through curl', curl, () => {
  let ts: TestServer;

  /** Status and body of one request, the path sent byte for byte. */
  const request = async (
    method: string,
    path: string,
    headers: string[] = [],
    data?: string,
  ): Promise<{ status: number; body: string }> => {
    const args = ['-s', '--path-as-is', '-X', method, '-w', '\n%{http_code}'];
    for (const h of headers) args.push('-H', h);
    if (data !== undefined) args.push('-H', 'Content-Type: application/json', '--data', data);
    const { stdout } = await run('curl', [...args, `${ts.apiUrl}${path}`]);
    const cut = stdout.lastIndexOf('\n');
    return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
  };

  const tokenCount = (): number => ts.server.tenancy.listApiTokens(ts.accountId).length;

  before(async () => {
    ts = await startServer({ httpPort: 0 });
  });
  after(() => ts.close());

  it('the encoded spellings of /client/v4/accounts and .../tokens are 403 without a token; nothing is minted', async () => {
    const minted = tokenCount();
    const a = ts.accountId;
    const paths = [
      '/%63lient/v4/accounts',
      '/%63%6c%69%65%6e%74/v4/accounts',
      '/client/v4/%61ccounts',
      '/CLIENT/v4/accounts',
      '//client/v4/accounts',
      '/client/v4//accounts',
      '/x/../client/v4/accounts',
      '/x/%2e%2e/client/v4/accounts',
      `/%63lient/v4/accounts/${a}/tokens`,
      `/%63lient/v4/accounts/${a}/%74okens`,
      `/Client/V4/Accounts/${a}/Tokens`,
      `//client/v4/accounts/${a}/tokens`,
      `/client/v4/accounts/${a}/pubsub/../tokens`,
      `/client/v4/accounts%2F${a}/tokens`,
      `/%63lient/v4/accounts/${a}/pubsub/namespaces`,
    ];
    for (const path of paths) {
      for (const method of ['GET', 'POST']) {
        const res = await request(method, path, [], method === 'POST' ? '{"name":"minted"}' : undefined);
        assert.equal(res.status, 403, `${method} ${path}: ${res.body}`);
        const env = JSON.parse(res.body);
        assert.equal(env.success, false);
        assert.equal(env.errors[0].code, 10000, `${method} ${path}: ${res.body}`);
      }
    }
    assert.equal(tokenCount(), minted);
  });

  it('with the admin token, dot segments and encoded slashes are 400 (code 7010), encoded letters route', async () => {
    const auth = [`Authorization: Bearer ${ts.adminToken}`];
    const a = ts.accountId;
    for (const path of [
      `/client/v4/accounts/${a}/pubsub/../tokens`,
      `/client/v4/accounts/${a}/pubsub/%2E%2E/tokens`,
      `/client/v4/accounts/${a}/./tokens`,
      `/client/v4/accounts%2f${a}/tokens`,
      `//client/v4/accounts/${a}/tokens`,
    ]) {
      const res = await request('GET', path, auth);
      assert.equal(res.status, 400, `${path}: ${res.body}`);
      assert.equal(JSON.parse(res.body).errors[0].code, 7010);
    }
    const res = await request('GET', `/%63lient/v4/accounts/${a}/tokens`, auth);
    assert.equal(res.status, 200, res.body);
  });

  it('an absolute-form request target (RFC 9112 section 3.2.2) is authenticated and routed like its path', async () => {
    const target = `${ts.apiUrl}/client/v4/accounts/${ts.accountId}/tokens`;
    const send = (headers: string[]) =>
      run('curl', [
        '-s',
        '-w',
        '\n%{http_code}',
        '--request-target',
        target,
        ...headers.flatMap((h) => ['-H', h]),
        ts.apiUrl,
      ]);
    const anonymous = await send([]);
    assert.match(anonymous.stdout, /\n403$/, anonymous.stdout);
    const admin = await send([`Authorization: Bearer ${ts.adminToken}`]);
    assert.match(admin.stdout, /\n200$/, admin.stdout);
  });
});
