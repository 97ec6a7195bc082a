/**
 * The brute-force limiter end to end (src/auth/failure-limiter.ts, docs/security.md "Brute
 * force"): wrong MQTT passwords and wrong admin API tokens from one address are slowed, then
 * refused for the ban time, while a client on another address is served at once. Linux routes
 * all of 127/8 to lo, so the attacker binds 127.0.0.2 (127.0.0.3, ...) as its local address and
 * the server, on 127.0.0.1, sees it as another host.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { connect as tcpConnect } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { MAX_DELAY_MS } from '../../src/auth/failure-limiter.ts';
import { until } from '../helpers/child-process.ts';
import { curl, describeWithTool, mosquittoClients } from '../helpers/interop-tools.ts';
import { pubsubApi, startServer, type TestServer } from '../helpers/server.ts';
import { packet, str } from '../helpers/wire.ts';

const run = promisify(execFile);
const LIMIT = 10;
const DELAY_MS = 20;
const BROKER = 'vault.guard';

async function guardedServer(t: TestContext, overrides: Record<string, unknown> = {}): Promise<TestServer> {
  const ts = await startServer({
    httpPort: 0,
    authFailureLimit: LIMIT,
    authFailureDelay: DELAY_MS,
    authBanTime: 60_000,
    ...overrides,
  });
  t.after(() => ts.close());
  assert.equal((await pubsubApi(ts, 'POST', '/namespaces', { name: 'guard' })).success, true);
  assert.equal(
    (await pubsubApi(ts, 'POST', '/namespaces/guard/brokers', { name: 'vault', authType: 'TOKEN' })).success,
    true,
  );
  return ts;
}

async function issueToken(ts: TestServer): Promise<[string, string]> {
  const issued = await pubsubApi<Record<string, string>>(
    ts,
    'GET',
    '/namespaces/guard/brokers/vault/credentials',
  );
  return Object.entries(issued.result)[0]!;
}

/** A CONNECT with user name and password, MQTT 5 or 3.1.1, clean, no properties. */
function connectWithPassword(version: 4 | 5, clientId: string, username: string, password: string): Buffer {
  return Buffer.from(
    packet(0x10, [
      ...str('MQTT'),
      version,
      0xc2, // user name, password, clean
      0,
      60,
      ...(version === 5 ? [0] : []),
      ...str(clientId),
      ...str(username),
      ...str(password),
    ]),
  );
}

/** One raw CONNECT from `localAddress`: the CONNACK's reason code and how long it took to come. */
function rawAttempt(
  port: number,
  localAddress: string,
  bytes: Buffer,
): Promise<{ code: number | undefined; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = tcpConnect({ port, host: '127.0.0.1', localAddress });
    let got = Buffer.alloc(0);
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (got.length >= 4) socket.destroy();
    });
    socket.on('error', reject);
    socket.on('close', () =>
      resolve({ code: got[0] === 0x20 ? got[3] : undefined, ms: performance.now() - started }),
    );
  });
}

describe('brute-force limiter: MQTT', () => {
  it('1,000 wrong passwords from 127.0.0.2 (v5) are slowed, then refused with 0x8A, while 127.0.0.1 connects at once', async (t) => {
    const ts = await guardedServer(t);
    const [clientId, jwt] = await issueToken(ts);
    const limiter = ts.server.tenancy.authFailures;
    const results: { code: number | undefined; ms: number }[] = [];
    for (let i = 0; i < 1000; i++)
      results.push(
        await rawAttempt(ts.port, '127.0.0.2', connectWithPassword(5, '', BROKER, `wrong-${i}.x.y`)),
      );
    // The first LIMIT are judged on their credentials (0x86); the LIMIT-th starts the ban.
    for (let i = 0; i < LIMIT; i++) assert.equal(results[i]!.code, 0x86, `attempt ${i + 1}`);
    for (let i = LIMIT; i < 1000; i++) assert.equal(results[i]!.code, 0x8a, `attempt ${i + 1}`);
    // Failures past half the limit wait DELAY_MS, doubling: 20, 40, 80, 160 ms.
    const free = LIMIT / 2;
    for (let i = free; i < LIMIT - 1; i++)
      assert.ok(
        results[i]!.ms >= DELAY_MS * 2 ** (i - free) - 1,
        `attempt ${i + 1} took ${results[i]!.ms} ms`,
      );
    assert.deepEqual(limiter.counts.mqtt, {
      failures: LIMIT,
      delayed: LIMIT - 1 - free,
      refused: 1000 - LIMIT,
    });
    assert.equal(limiter.bans, 1);

    // The right token from the banned address is refused too: the ban comes before credentials.
    const banned = await rawAttempt(ts.port, '127.0.0.2', connectWithPassword(5, clientId, BROKER, jwt));
    assert.equal(banned.code, 0x8a);
    // Another address is served at once, with MQTT.js.
    const started = performance.now();
    const client = await mqtt.connectAsync(ts.url, {
      protocolVersion: 5,
      reconnectPeriod: 0,
      clientId,
      username: BROKER,
      password: jwt,
    });
    assert.ok(performance.now() - started < 1000);
    await client.endAsync();
    // ... and a wrong password from it is judged on its credentials, not banned.
    await assert.rejects(
      mqtt.connectAsync(ts.url, {
        protocolVersion: 5,
        reconnectPeriod: 0,
        username: BROKER,
        password: 'nope',
      }),
      (err: Error & { code?: number }) => err.code === 0x86,
    );

    const metrics = await (await fetch(`${ts.apiUrl}/metrics`)).text();
    assert.match(
      metrics,
      /^pubsub_auth_limited_total\{protocol="mqtt",action="refused",node="[^"]+"\} 991$/m,
    );
    assert.match(metrics, /^pubsub_auth_limited_total\{protocol="mqtt",action="delayed",node="[^"]+"\} 4$/m);
    assert.match(metrics, /^pubsub_auth_bans_total\{node="[^"]+"\} 1$/m);
    assert.match(metrics, /^pubsub_auth_banned_sources\{node="[^"]+"\} 1$/m);
  });

  it('v3.1.1 (raw): after the limit the CONNACK is 0x05 from 127.0.0.3, and a success between failures does not reset the count', async (t) => {
    const ts = await guardedServer(t, { authFailureDelay: 0 });
    const [clientId, jwt] = await issueToken(ts);
    const v3 = async (password: string, id = ''): Promise<number | undefined> =>
      (await rawAttempt(ts.port, '127.0.0.3', connectWithPassword(4, id, BROKER, password))).code;
    for (let i = 0; i < LIMIT - 1; i++) {
      assert.equal(await v3('wrong'), 0x04);
      // The attacker holds one valid token and uses it between guesses: the count stays.
      assert.equal(await v3(jwt, clientId), 0x00);
    }
    assert.equal(await v3('wrong'), 0x04);
    assert.equal(await v3(jwt, clientId), 0x05);
  });

  it('a client that closes while its refusal is held back releases the connection at once', async (t) => {
    const ts = await guardedServer(t, { authFailureDelay: MAX_DELAY_MS, authFailureLimit: 2 });
    assert.equal(
      (await rawAttempt(ts.port, '127.0.0.5', connectWithPassword(5, '', BROKER, 'wrong'))).code,
      0x86,
    );
    const socket = tcpConnect({ port: ts.port, host: '127.0.0.1', localAddress: '127.0.0.5' });
    await new Promise((resolve) => socket.on('connect', resolve));
    socket.write(connectWithPassword(5, '', BROKER, 'wrong'));
    await until(() => ts.server.tenancy.authFailures.counts.mqtt.failures === 2, 'the second failure');
    assert.equal(ts.server.connections.size, 1, 'held back, not yet answered');
    socket.destroy();
    const closedAt = performance.now();
    await until(() => ts.server.connections.size === 0, 'the connection released');
    assert.ok(performance.now() - closedAt < MAX_DELAY_MS / 2);
  });

  describeWithTool('mosquitto_pub (v3.1.1)', mosquittoClients, () => {
    it('is refused "not authorised" (0x05) from the banned address and served from another', async (t) => {
      const ts = await guardedServer(t, { authFailureDelay: 0 });
      const [clientId, jwt] = await issueToken(ts);
      const pub = (bind: string, password: string, id = 'x') =>
        run('mosquitto_pub', [
          ...['-A', bind, '-p', String(ts.port), '-h', '127.0.0.1', '-V', 'mqttv311'],
          ...['-i', id, '-u', BROKER, '-P', password, '-t', 't', '-m', 'm'],
        ]).then(
          () => 'ok',
          (err: { stderr: string }) => err.stderr,
        );
      for (let i = 0; i < LIMIT; i++)
        assert.match(await pub('127.0.0.6', 'wrong'), /bad user name or password/i);
      assert.match(await pub('127.0.0.6', jwt, clientId), /not authori[sz]ed/i);
      assert.equal(await pub('127.0.0.1', jwt, clientId), 'ok');
    });
  });
});

/** A GET of the namespaces route from `localAddress` with `token`: status and Retry-After. */
function apiAttempt(
  ts: TestServer,
  localAddress: string,
  token: string,
): Promise<{ status: number; retryAfter: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(`${ts.apiUrl}/client/v4/accounts/${ts.accountId}/pubsub/namespaces`);
    const req = request(url, { localAddress, headers: { authorization: `Bearer ${token}` } }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      res.on('end', () =>
        resolve({
          status: res.statusCode!,
          retryAfter: res.headers['retry-after'] as string | undefined,
          body,
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

describe('brute-force limiter: admin API', () => {
  it('1,000 wrong tokens from 127.0.0.2 get 403, slowed, then 429 with Retry-After; 127.0.0.1 is served', async (t) => {
    const ts = await guardedServer(t);
    const statuses: number[] = [];
    let last: Awaited<ReturnType<typeof apiAttempt>> | undefined;
    for (let i = 0; i < 1000; i++) {
      last = await apiAttempt(ts, '127.0.0.2', `wrong-${i}`);
      statuses.push(last.status);
    }
    assert.deepEqual(statuses.slice(0, LIMIT), Array(LIMIT).fill(403));
    assert.deepEqual(statuses.slice(LIMIT), Array(1000 - LIMIT).fill(429));
    const envelope = JSON.parse(last!.body);
    assert.equal(envelope.success, false);
    assert.equal(envelope.errors[0].code, 971);
    assert.ok(
      Number(last!.retryAfter) > 0 && Number(last!.retryAfter) <= 60,
      `Retry-After ${last!.retryAfter}`,
    );
    // The real token from the banned address: still 429 (nothing tells whether it was right).
    assert.equal((await apiAttempt(ts, '127.0.0.2', ts.adminToken)).status, 429);
    // Another address, with fetch: served.
    assert.equal((await pubsubApi(ts, 'GET', '/namespaces')).success, true);
    assert.equal(ts.server.tenancy.authFailures.counts.api.delayed, LIMIT - 1 - LIMIT / 2);
    const metrics = await (await fetch(`${ts.apiUrl}/metrics`)).text();
    assert.match(metrics, /^pubsub_api_auth_failures_total\{node="[^"]+"\} 10$/m);
    assert.match(metrics, /^pubsub_auth_limited_total\{protocol="api",action="refused",node="[^"]+"\} 991$/m);
  });

  it('requests without any credential are not counted', async (t) => {
    const ts = await guardedServer(t);
    for (let i = 0; i < LIMIT * 2; i++) {
      const res = await fetch(`${ts.apiUrl}/client/v4/accounts/${ts.accountId}/pubsub/namespaces`);
      assert.equal(res.status, 403);
    }
    assert.equal(ts.server.tenancy.authFailures.counts.api.failures, 0);
  });

  it('behind a proxy --api-trust-proxy names, callers are counted by their forwarded address', async (t) => {
    const ts = await guardedServer(t, { authFailureDelay: 0, apiTrustProxy: '127.0.0.1/32' });
    const url = `${ts.apiUrl}/client/v4/accounts/${ts.accountId}/pubsub/namespaces`;
    const get = (forwardedFor: string, token: string) =>
      fetch(url, { headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': forwardedFor } });
    for (let i = 0; i < LIMIT; i++) assert.equal((await get('192.0.2.7', `wrong-${i}`)).status, 403);
    assert.equal((await get('192.0.2.7', ts.adminToken)).status, 429);
    // The same proxy (127.0.0.1) forwarding another caller: not banned with the guesser.
    assert.equal((await get('192.0.2.8', ts.adminToken)).status, 200);
  });

  describeWithTool('curl', curl, () => {
    it('curl from the banned address sees 429 and Retry-After; curl from another address is served', async (t) => {
      const ts = await guardedServer(t, { authFailureDelay: 0 });
      const url = `${ts.apiUrl}/client/v4/accounts/${ts.accountId}/pubsub/namespaces`;
      const get = async (iface: string, token: string) =>
        (await run('curl', ['-s', '-i', '--interface', iface, '-H', `Authorization: Bearer ${token}`, url]))
          .stdout;
      for (let i = 0; i < LIMIT; i++) assert.match(await get('127.0.0.7', 'nope'), /^HTTP\/1\.1 403/);
      const refused = await get('127.0.0.7', ts.adminToken);
      assert.match(refused, /^HTTP\/1\.1 429/);
      assert.match(refused, /^retry-after: \d+\r$/im);
      assert.match(await get('127.0.0.1', ts.adminToken), /^HTTP\/1\.1 200/);
    });
  });
});
