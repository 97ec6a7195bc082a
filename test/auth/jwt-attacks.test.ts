/**
 * Client tokens an attacker can make, each refused at CONNECT with 0x86 (v5) / 0x04 (v3.1.1)
 * and counted in `pubsub_auth_failures_total{reason="bad_credentials"}`; with MQTT.js (both
 * versions) and mosquitto_pub. Tokens are built by hand here (header, claims, signature) with
 * the broker's own key where the attack needs a valid signature; a control token built the
 * same way is admitted, so each refusal is the attack's and not the builder's.
 *
 * docs/security.md "Client tokens (JWT)" has the rules; src/auth/token-verifier.ts the checks.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHmac, type KeyObject, sign } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { describeWithTool, mosquittoClients } from '../helpers/interop-tools.ts';
import { pubsubApi, startServer, type TestServer } from '../helpers/server.ts';

const run = promisify(execFile);
const SKEW = 5;
const b64 = (value: unknown): string =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

describe('JWT attacks at CONNECT', () => {
  let ts: TestServer;
  let homeKey: { kid: string; privateKey: KeyObject; publicKey: KeyObject };
  let otherKey: { kid: string; privateKey: KeyObject };
  let realToken: string;
  const now = (): number => Math.floor(Date.now() / 1000);
  const claims = (extra: Record<string, unknown> = {}) => ({
    sub: 'dev1',
    jti: `j${Math.random().toString(36).slice(2)}`,
    aud: 'home.jwt',
    topicAcl: '#',
    iat: now(),
    ...extra,
  });
  /** A compact JWS over `header` and `payload` (objects, or JSON text as given), EdDSA-signed. */
  const signed = (
    payload: unknown,
    key = homeKey,
    header: unknown = { alg: 'EdDSA', kid: key.kid },
  ): string => {
    const input = `${b64(header)}.${b64(payload)}`;
    return `${input}.${sign(null, Buffer.from(input), key.privateKey).toString('base64url')}`;
  };

  const failures = (): number =>
    ts.server.tenancy.tenant(ts.accountId, 'jwt', 'home').broker.stats.authFailures.get('BAD_CREDENTIALS') ??
    0;

  const attempt = (version: 4 | 5, password: string, clientId = 'dev1'): Promise<number> =>
    mqtt
      .connectAsync(ts.url, {
        protocolVersion: version,
        reconnectPeriod: 0,
        clientId,
        username: 'home.jwt',
        password,
      })
      .then(
        async (client) => {
          await client.endAsync();
          return 0;
        },
        (err: Error & { code?: number }) => err.code ?? -1,
      );

  before(async () => {
    // The limiter is tested in brute-force.test.ts; here every attempt must reach the verifier.
    ts = await startServer({ httpPort: 0, authFailureLimit: 0, jwtClockSkew: SKEW });
    assert.equal((await pubsubApi(ts, 'POST', '/namespaces', { name: 'jwt' })).success, true);
    for (const name of ['home', 'other'])
      assert.equal(
        (await pubsubApi(ts, 'POST', '/namespaces/jwt/brokers', { name, authType: 'TOKEN' })).success,
        true,
      );
    const keyOf = (broker: string) =>
      [...ts.server.tenancy.tenant(ts.accountId, 'jwt', broker).credentials.keys.values()].at(-1)!;
    homeKey = keyOf('home');
    otherKey = keyOf('other');
    const issued = await pubsubApi<Record<string, string>>(
      ts,
      'GET',
      '/namespaces/jwt/brokers/home/credentials?clientid=dev1',
    );
    realToken = issued.result.dev1!;
  });
  after(() => ts.close());

  it('controls: an issued token and a token built here are admitted (v5 and v3.1.1)', async () => {
    for (const version of [5, 4] as const) {
      assert.equal(await attempt(version, realToken), 0);
      assert.equal(await attempt(version, signed(claims())), 0);
    }
  });

  const attacks: [string, () => string][] = [
    ['alg none, no signature', () => `${b64({ alg: 'none', kid: homeKey.kid })}.${b64(claims())}.`],
    [
      'alg none with the header of a real token',
      () => `${b64({ alg: 'none', typ: 'JWT' })}.${realToken.split('.')[1]}.`,
    ],
    [
      'HS256 keyed with the public key (PEM): algorithm confusion',
      () => {
        const input = `${b64({ alg: 'HS256', kid: homeKey.kid })}.${b64(claims())}`;
        const pem = homeKey.publicKey.export({ type: 'spki', format: 'pem' });
        return `${input}.${createHmac('sha256', pem).update(input).digest('base64url')}`;
      },
    ],
    [
      'HS256 keyed with the public JWK x bytes: algorithm confusion',
      () => {
        const input = `${b64({ alg: 'HS256', kid: homeKey.kid })}.${b64(claims())}`;
        const x = Buffer.from(homeKey.publicKey.export({ format: 'jwk' }).x!, 'base64url');
        return `${input}.${createHmac('sha256', x).update(input).digest('base64url')}`;
      },
    ],
    [
      'signed by another broker, under its kid, aud this broker',
      () => signed(claims(), otherKey as typeof homeKey),
    ],
    [
      "another broker's kid with this broker's signature",
      () => signed(claims(), homeKey, { alg: 'EdDSA', kid: otherKey.kid }),
    ],
    [
      'a valid signature over a modified payload (topicAcl widened)',
      () => {
        const [header, payload, signature] = realToken.split('.') as [string, string, string];
        const changed = { ...JSON.parse(Buffer.from(payload, 'base64url').toString()), topicAcl: '$SYS/#' };
        return `${header}.${b64(changed)}.${signature}`;
      },
    ],
    [`exp ${SKEW + 3} s ago (past the ${SKEW} s skew)`, () => signed(claims({ exp: now() - SKEW - 3 }))],
    [`nbf ${SKEW + 3} s ahead (past the ${SKEW} s skew)`, () => signed(claims({ nbf: now() + SKEW + 3 }))],
    ['over 4096 bytes, validly signed', () => signed(claims({ pad: 'x'.repeat(3100) }))],
    ['a repeated claim: two "sub"', () => signed(`{"sub":"dev1","jti":"j1","aud":"home.jwt","sub":"admin"}`)],
    [
      'a repeated claim spelled with an escape: "exp" and "\\u0065xp"',
      () => signed(`{"sub":"dev1","jti":"j2","aud":"home.jwt","exp":1,"\\u0065xp":${now() + 3600}}`),
    ],
    [
      'a repeated header member: two "alg"',
      () => signed(claims(), homeKey, `{"alg":"none","kid":"${homeKey.kid}","alg":"EdDSA"}`),
    ],
  ];

  for (const [name, token] of attacks)
    it(`${name}: refused with 0x86 (v5) and 0x04 (v3.1.1), counted`, async () => {
      const jwt = token();
      if (name.startsWith('over'))
        assert.ok(Buffer.byteLength(jwt) > 4096, `${Buffer.byteLength(jwt)} bytes`);
      const before = failures();
      assert.equal(await attempt(5, jwt), 0x86);
      assert.equal(await attempt(4, jwt), 0x04);
      assert.equal(failures() - before, 2);
    });

  it(`exp and nbf inside the ${SKEW} s skew are admitted`, async () => {
    assert.equal(await attempt(5, signed(claims({ exp: now() - SKEW + 3 }))), 0);
    assert.equal(await attempt(4, signed(claims({ nbf: now() + SKEW - 3 }))), 0);
  });

  it('the refusals are counted in pubsub_auth_failures_total', async () => {
    const text = await (await fetch(`${ts.apiUrl}/metrics`)).text();
    const line = text
      .split('\n')
      .find(
        (l) =>
          l.startsWith('pubsub_auth_failures_total{') &&
          l.includes('broker="home"') &&
          l.includes('bad_credentials'),
      );
    assert.ok(line !== undefined, text);
    assert.equal(Number(line.split(' ').at(-1)), attacks.length * 2);
  });

  describeWithTool('mosquitto_pub', mosquittoClients, () => {
    const pub = (version: string, password: string) =>
      run('mosquitto_pub', [
        ...['-p', String(ts.port), '-h', '127.0.0.1', '-V', version, '-i', 'dev1', '-u', 'home.jwt'],
        ...['-P', password, '-t', 't', '-m', 'm'],
      ]).then(
        () => 'ok',
        (err: { stderr: string }) => err.stderr,
      );
    for (const index of [0, 2, 4, 6, 10])
      it(`${attacks[index]![0]}: mosquitto_pub v3.1.1 and v5 are told bad user name or password`, async () => {
        const jwt = attacks[index]![1]();
        assert.match(await pub('mqttv311', jwt), /bad user ?name or password/i);
        assert.match(await pub('mqttv5', jwt), /bad user ?name or password/i);
      });
    it('control: mosquitto_pub with the issued token publishes', async () => {
      assert.equal(await pub('mqttv311', realToken), 'ok');
      assert.equal(await pub('mqttv5', realToken), 'ok');
    });
  });
});
