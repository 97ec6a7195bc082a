/**
 * Secrets never reach the log (docs/security.md "Secrets and the log"): a `pubsub serve` process
 * at log level trace goes through a whole flow — an API token created, client JWTs issued,
 * MQTT clients connecting with right, wrong, tampered, revoked and foreign tokens, the API and
 * the metrics route called with right and wrong secrets, a client refused by the brute-force
 * limiter — and then every line it wrote (stdout and stderr) is searched for every secret used:
 * the bootstrap token, the created token, each JWT and its signature alone, the wrong passwords
 * and the metrics token. None may appear.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import mqtt from 'mqtt';
import { startServe } from '../helpers/pubsub-process.ts';

describe('secrets never appear in the log', () => {
  it('a full flow at log level trace logs no token, JWT, password or metrics token', async (t) => {
    const metricsToken = 'metrics-secret-4f1c9a0e7b2d';
    const serve = await startServe(t, {
      env: { PUBSUB_LOG_LEVEL: 'trace', PUBSUB_METRICS_TOKEN: metricsToken },
      args: ['--auth-failure-limit', '5', '--auth-failure-delay', '1'],
    });
    const adminToken = readFileSync(join(serve.dataDir, 'admin-token'), 'utf8').trim();
    const secrets = new Map<string, string>([
      ['bootstrap admin token', adminToken],
      ['metrics token', metricsToken],
    ]);
    const call = async (method: string, path: string, body?: unknown, token = adminToken) => {
      const res = await fetch(`${serve.apiUrl}/client/v4/accounts/${serve.accountId}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return (await res.json()) as { success: boolean; result: Record<string, string> };
    };

    const created = await call('POST', '/tokens', { name: 'ci' });
    assert.equal(created.success, true, JSON.stringify(created));
    const apiToken = created.result.value!;
    secrets.set('created API token', apiToken);
    assert.equal((await call('POST', '/pubsub/namespaces', { name: 'logs' }, apiToken)).success, true);
    for (const name of ['vault', 'other'])
      assert.equal(
        (await call('POST', '/pubsub/namespaces/logs/brokers', { name, authType: 'TOKEN' }, apiToken))
          .success,
        true,
      );
    const issued = await call('GET', '/pubsub/namespaces/logs/brokers/vault/credentials?number=3');
    const [[goodId, good], [revokedId, revoked], [, spare]] = Object.entries(issued.result) as [
      string,
      string,
    ][];
    const foreign = Object.values(
      (await call('GET', '/pubsub/namespaces/logs/brokers/other/credentials')).result,
    )[0]!;
    const [header, payload, signature] = spare!.split('.') as [string, string, string];
    const tampered = `${header}.${Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), topicAcl: '#' }),
    ).toString('base64url')}x.${signature}`;
    for (const [name, jwt] of [
      ['good', good!],
      ['revoked', revoked!],
      ['spare', spare!],
      ['foreign', foreign],
    ] as const) {
      secrets.set(`JWT ${name}`, jwt);
      secrets.set(`signature of JWT ${name}`, jwt.split('.')[2]!);
    }
    const jti = JSON.parse(Buffer.from(revoked!.split('.')[1]!, 'base64url').toString()).jti as string;
    assert.equal(
      (await call('POST', `/pubsub/namespaces/logs/brokers/vault/revocations?jti=${jti}`)).success,
      true,
    );
    const wrongPasswords = ['hunter2-wrong-password', 'correct horse battery staple'];
    for (const [i, p] of wrongPasswords.entries()) secrets.set(`wrong password ${i}`, p);

    const url = serve.urls.mqtt!;
    const attempt = (password: string, clientId = '', version: 4 | 5 = 5) =>
      mqtt
        .connectAsync(url, {
          protocolVersion: version,
          reconnectPeriod: 0,
          clientId,
          username: 'vault.logs',
          password,
        })
        .then(
          async (c) => {
            await c.publishAsync('t', 'm');
            await c.endAsync();
            return 0;
          },
          (err: Error & { code?: number }) => err.code ?? -1,
        );
    assert.equal(await attempt(good!, goodId), 0);
    assert.equal(await attempt(good!, goodId, 4), 0);
    assert.equal(await attempt(revoked!, revokedId), 0x86);
    assert.equal(await attempt(tampered), 0x86);
    // A token names its broker by aud before the user name does: it is served by its own broker.
    assert.equal(await attempt(foreign), 0);
    for (const p of wrongPasswords) assert.equal(await attempt(p, 'someone', 4), 0x04);
    // The fifth failure bans this address: the right token is then refused too (0x8A).
    assert.equal(await attempt(wrongPasswords[0]!), 0x86);
    assert.equal(await attempt(good!, goodId), 0x8a);

    // API and metrics with wrong and right secrets (the API now answers 429: banned address).
    const wrongApi = await fetch(`${serve.apiUrl}/client/v4/accounts/${serve.accountId}/tokens`, {
      headers: { authorization: `Bearer ${wrongPasswords[1]}` },
    });
    assert.equal(wrongApi.status, 429);
    assert.equal(
      (await fetch(`${serve.apiUrl}/metrics`, { headers: { authorization: `Bearer ${wrongPasswords[0]}` } }))
        .status,
      403,
    );
    assert.equal(
      (await fetch(`${serve.apiUrl}/metrics`, { headers: { authorization: `Bearer ${metricsToken}` } }))
        .status,
      200,
    );

    await serve.stop();
    const log = `${serve.child.lines.join('\n')}\n${serve.child.stderr}`;
    assert.ok(log.includes('"level":10') || log.includes('"level":20'), 'the log is at trace/debug level');
    assert.ok(log.includes('token refused'), 'the refusals were logged');
    for (const [what, secret] of secrets) assert.ok(!log.includes(secret), `${what} appears in the log`);
  });
});
