/**
 * `pubsub broker issue|revoke|unrevoke|show-revocations|public-keys|rotate-keys` run as a user
 * runs them (the real binary) against a running server: wrangler's flags and quirks (`--exp`,
 * `--jti` as issue's alias of `--client-id`), tables and `--json`, usage errors (exit 2) and
 * API errors (exit 1); and end to end, a token issued by the CLI carrying an MQTT.js client
 * until `broker revoke` disconnects it (0x98), and `rotate-keys` retiring a token's key.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { show } from '../helpers/pubsub-process.ts';
import { type ApiServer, row, startApiServer } from './run-cli.ts';

interface Claims {
  sub: string;
  jti: string;
  aud: string;
  iat: number;
  exp?: number;
  topicAcl: string | string[];
}

interface Jwks {
  keys: { kid: string; kty: string; crv: string; alg: string; use: string; x: string }[];
}

const claimsOf = (jwt: string): Claims =>
  JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Claims;

let api: ApiServer;
before(async () => {
  api = await startApiServer();
  await api.ok(['namespace', 'create', 'cli-creds']);
  await api.ok(['broker', 'create', 'issuer', '--ns', 'cli-creds']);
  await api.ok(['broker', 'create', 'hourly', '--ns', 'cli-creds', '--expiration', '1h']);
});
after(() => api.server.close());

const NS = ['--ns', 'cli-creds'];

describe('pubsub broker issue', () => {
  it('prints a table of client id, jti, expiry and token; the token names the broker and allows #', async () => {
    const { stdout, stderr } = await api.ok(['broker', 'issue', 'issuer', ...NS]);
    assert.match(
      stderr,
      /^Issued 1 token for broker issuer in namespace cli-creds\. Each token is a secret: the MQTT password of its client id\.$/m,
    );
    const lines = stdout.trimEnd().split('\n');
    assert.equal(lines.length, 2, stdout);
    assert.match(lines[0]!, /^CLIENT ID +JTI +EXPIRES +TOKEN$/);
    const [clientId, jti, expires, token] = lines[1]!.split(/ {2,}/) as [string, string, string, string];
    assert.match(clientId, /^issuer[0-9A-HJKMNP-TV-Z]{26}$/, 'broker name + ULID');
    const claims = claimsOf(token);
    assert.equal(claims.sub, clientId);
    assert.equal(claims.jti, jti);
    assert.equal(claims.aud, 'issuer.cli-creds');
    assert.equal(claims.topicAcl, '#', 'no --topic-acl: everything');
    assert.equal(claims.exp, undefined);
    assert.equal(expires, 'never');
  });

  it('--json prints the API map; -n counts, --expiration and --exp set exp; the broker expiration wins when shorter', async () => {
    const three = await api.json<Record<string, string>>(['broker', 'issue', 'issuer', ...NS, '-n', '3']);
    assert.equal(Object.keys(three).length, 3);
    for (const [id, jwt] of Object.entries(three)) assert.equal(claimsOf(jwt).sub, id);

    const lifetime = async (args: string[]): Promise<number | undefined> => {
      const map = await api.json<Record<string, string>>(['broker', 'issue', ...args]);
      const claims = claimsOf(Object.values(map)[0]!);
      return claims.exp === undefined ? undefined : claims.exp - claims.iat;
    };
    assert.equal(await lifetime(['issuer', ...NS, '--expiration', '1h30m']), 5400);
    assert.equal(await lifetime(['issuer', ...NS, '--exp', '2d']), 2 * 86_400, "wrangler's alias");
    assert.equal(await lifetime(['hourly', ...NS]), 3600, "the broker's expiration");
    assert.equal(await lifetime(['hourly', ...NS, '--exp', '10m']), 600, 'shorter request wins');
    assert.equal(await lifetime(['hourly', ...NS, '--expiration', '7d']), 3600, 'shorter broker wins');
    assert.equal(await lifetime(['hourly', ...NS, '--expiration', 'none']), undefined, 'none: no exp');
    assert.equal(await lifetime(['hourly', ...NS, '--expiration=-1']), undefined, '-1: no exp');
    assert.equal(await lifetime(['hourly', ...NS, '--expiration', '-1']), undefined, '-1 as its own word');

    const { stdout } = await api.ok(['broker', 'issue', 'hourly', ...NS, '--type', 'token']);
    const [, , expires] = stdout.trimEnd().split('\n')[1]!.split(/ {2,}/);
    assert.match(expires!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'the expiry as a UTC time');
  });

  it('--client-id (and its wrangler alias --jti) names the client ids; --topic-acl carries the rules', async () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the ACL placeholder is literal text.
    const acl = ['pub:devices/${clientId}/#', 'sub:commands/${clientId}', 'status/+'];
    const map = await api.json<Record<string, string>>([
      'broker',
      'issue',
      'issuer',
      ...NS,
      '--client-id',
      'sensor-1',
      'sensor-2',
      '--jti',
      'sensor-3',
      '--topic-acl',
      ...acl,
    ]);
    assert.deepEqual(Object.keys(map), ['sensor-1', 'sensor-2', 'sensor-3']);
    for (const [id, jwt] of Object.entries(map)) {
      const claims = claimsOf(jwt);
      assert.equal(claims.sub, id);
      assert.deepEqual(claims.topicAcl, acl);
    }
    const help = await api.ok(['broker', 'issue', '--help']);
    assert.doesNotMatch(help.stdout, /--jti/, 'the alias is hidden: on issue it is not a token id');
  });

  it('usage errors exit 2: bad --number, bad --expiration, --number with --client-id, unknown --type', async () => {
    for (const [args, message] of [
      [['-n', '0'], /must be a whole number from 1 to 100/],
      [['-n', '101'], /must be a whole number from 1 to 100/],
      [['--number', 'two'], /must be a whole number from 1 to 100/],
      [['--expiration', 'soon'], /soon is not a time duration/],
      [['--exp', '0'], /0 would expire at once/],
      [['-n', '2', '--client-id', 'only-one'], /with --client-id one token is issued per id/],
      [['--type', 'password'], /must be one of TOKEN/],
      [['--expiration', '1h', '--exp', '2h'], /give --expiration or --exp, not both/],
      [[], /required option '--ns, --namespace <name>' not specified/],
    ] as const) {
      const full = ['broker', 'issue', 'issuer', ...(args.length === 0 ? [] : NS), ...args];
      const r = await api.run(full);
      assert.equal(r.code, 2, show(full, r));
      assert.match(r.stderr, message, show(full, r));
      assert.equal(r.stdout, '', 'no token printed');
    }
  });

  it('API refusals exit 1 with the message: unknown broker, invalid ACL rule', async () => {
    const unknown = ['broker', 'issue', 'nope', ...NS];
    const r = await api.run(unknown);
    assert.equal(r.code, 1, show(unknown, r));
    assert.equal(r.stderr, 'pubsub: broker nope not found in namespace cli-creds (code 14006)\n');
    const badAcl = ['broker', 'issue', 'issuer', ...NS, '--topic-acl', 'pub:a/#/b'];
    const acl = await api.run(badAcl);
    assert.equal(acl.code, 1, show(badAcl, acl));
    assert.match(acl.stderr, /^pubsub: topicAcl rule "pub:a\/#\/b": not a valid topic filter \(code \d+\)$/m);
  });
});

describe('pubsub broker revoke|unrevoke|show-revocations', () => {
  it('revoke takes --jti repeated or comma-separated; show-revocations lists them; unrevoke removes', async () => {
    await api.ok(['broker', 'create', 'revoker', ...NS]);
    const empty = await api.ok(['broker', 'show-revocations', 'revoker', ...NS]);
    assert.equal(empty.stdout, '');
    assert.match(empty.stderr, /^No revoked tokens in broker revoker of namespace cli-creds\.$/m);
    assert.deepEqual(await api.json(['broker', 'show-revocations', 'revoker', ...NS]), []);

    const revoked = await api.ok(['broker', 'revoke', 'revoker', ...NS, '--jti', 'jti-a,jti-b', 'jti-c']);
    assert.match(
      revoked.stderr,
      /^Revoked 3 tokens of broker revoker in namespace cli-creds: clients connected with them were disconnected \(0x98\)\.$/m,
    );
    const { stdout } = await api.ok(['broker', 'show-revocations', 'revoker', ...NS]);
    assert.deepEqual(stdout.trimEnd().split('\n'), ['JTI', 'jti-a', 'jti-b', 'jti-c']);

    assert.equal(await api.json(['broker', 'unrevoke', 'revoker', ...NS, '--jti', 'jti-b']), null);
    assert.deepEqual(await api.json(['broker', 'show-revocations', 'revoker', ...NS]), ['jti-a', 'jti-c']);
    const unrevoked = await api.ok(['broker', 'unrevoke', 'revoker', ...NS, '--jti', 'jti-a']);
    assert.match(unrevoked.stderr, /^Unrevoked 1 token of broker revoker in namespace cli-creds: /m);
    assert.equal(await api.json(['broker', 'revoke', 'revoker', ...NS, '--jti', 'jti-d']), null);
    assert.deepEqual(await api.json(['broker', 'show-revocations', 'revoker', ...NS]), ['jti-c', 'jti-d']);
  });

  it('--jti is required (exit 2); an unknown broker is the API error (exit 1)', async () => {
    for (const verb of ['revoke', 'unrevoke']) {
      const args = ['broker', verb, 'revoker', ...NS];
      const r = await api.run(args);
      assert.equal(r.code, 2, show(args, r));
      assert.match(r.stderr, /required option '--jti <id\.\.\.>' not specified/);
      const blank = [...args, '--jti', ','];
      const b = await api.run(blank);
      assert.equal(b.code, 2, show(blank, b));
      assert.match(b.stderr, /--jti: give at least one token id/);
    }
    for (const args of [
      ['broker', 'revoke', 'nope', ...NS, '--jti', 'x'],
      ['broker', 'unrevoke', 'nope', ...NS, '--jti', 'x'],
      ['broker', 'show-revocations', 'nope', ...NS],
      ['broker', 'public-keys', 'nope', ...NS],
      ['broker', 'rotate-keys', 'nope', ...NS, '--yes'],
    ]) {
      const r = await api.run(args);
      assert.equal(r.code, 1, show(args, r));
      assert.equal(r.stderr, 'pubsub: broker nope not found in namespace cli-creds (code 14006)\n');
    }
  });
});

describe('pubsub broker public-keys|rotate-keys', () => {
  it('public-keys prints the two keys (the newest signs) and --json the JWKS', async () => {
    const jwks = await api.json<Jwks>(['broker', 'public-keys', 'issuer', ...NS]);
    assert.equal(jwks.keys.length, 2);
    const { stdout } = await api.ok(['broker', 'public-keys', 'issuer', ...NS]);
    const lines = stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^KID +ALG +CRV +USE +SIGNS NEW TOKENS$/);
    assert.deepEqual(row(stdout, jwks.keys[0]!.kid), [jwks.keys[0]!.kid, 'EdDSA', 'Ed25519', 'sig', 'no']);
    assert.deepEqual(row(stdout, jwks.keys[1]!.kid), [jwks.keys[1]!.kid, 'EdDSA', 'Ed25519', 'sig', 'yes']);
    const token = Object.values(
      await api.json<Record<string, string>>(['broker', 'issue', 'issuer', ...NS]),
    )[0]!;
    const header = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { kid: string };
    assert.equal(header.kid, jwks.keys[1]!.kid, 'new tokens are signed by the last key listed');
  });

  it('rotate-keys asks first (exit 2 without a terminal or --yes); a token survives one rotation, not two', async (t) => {
    await api.ok(['broker', 'create', 'rotator', ...NS]);
    const before = await api.json<Jwks>(['broker', 'public-keys', 'rotator', ...NS]);
    const token = Object.values(
      await api.json<Record<string, string>>(['broker', 'issue', 'rotator', ...NS]),
    )[0]!;

    const refused = await api.run(['broker', 'rotate-keys', 'rotator', ...NS]);
    assert.equal(refused.code, 2);
    assert.match(
      refused.stderr,
      new RegExp(`tokens signed by the retired key ${before.keys[0]!.kid} will be refused\\): not confirmed`),
    );
    assert.deepEqual(await api.json(['broker', 'public-keys', 'rotator', ...NS]), before, 'nothing changed');

    const first = await api.ok(['broker', 'rotate-keys', 'rotator', ...NS, '--yes']);
    assert.match(
      first.stderr,
      new RegExp(`retired ${before.keys[0]!.kid}, added \\S+ \\(it signs new tokens\\)`),
    );
    const afterFirst = await api.json<Jwks>(['broker', 'public-keys', 'rotator', ...NS]);
    assert.equal(afterFirst.keys[0]!.kid, before.keys[1]!.kid);
    assert.deepEqual(row(first.stdout, afterFirst.keys[1]!.kid)?.at(-1), 'yes');

    const connect = (): Promise<mqtt.MqttClient> =>
      mqtt.connectAsync(api.server.url, {
        protocolVersion: 5,
        reconnectPeriod: 0,
        username: 'anything',
        password: token,
        clientId: '',
      });
    const survivor = await connect();
    t.after(() => survivor.endAsync(true));

    const second = await api.json<Jwks>(['broker', 'rotate-keys', 'rotator', ...NS, '-y']);
    assert.equal(second.keys[0]!.kid, afterFirst.keys[1]!.kid);
    assert.ok(!second.keys.some((k) => k.kid === before.keys[1]!.kid), 'the token key is retired');
    await assert.rejects(connect(), (err: Error & { code?: number }) => {
      assert.equal(err.code, 0x86, err.message); // Bad User Name or Password
      return true;
    });
  });

  it('every credential verb requires --namespace/--ns (exit 2)', async () => {
    for (const args of [
      ['broker', 'issue', 'x'],
      ['broker', 'revoke', 'x', '--jti', 'a'],
      ['broker', 'unrevoke', 'x', '--jti', 'a'],
      ['broker', 'show-revocations', 'x'],
      ['broker', 'public-keys', 'x'],
      ['broker', 'rotate-keys', 'x', '--yes'],
    ]) {
      const r = await api.run(args);
      assert.equal(r.code, 2, show(args, r));
      assert.match(r.stderr, /required option '--ns, --namespace <name>' not specified/, show(args, r));
    }
  });
});

describe('pubsub broker issue and revoke with a real client', () => {
  it('MQTT.js connects with an issued token (any user name, empty client id) until `broker revoke` disconnects it (0x98)', async (t) => {
    await api.ok(['broker', 'create', 'live', ...NS]);
    const { stdout } = await api.ok(['broker', 'issue', 'live', ...NS, '--expiration', '1h']);
    const [clientId, jti, , token] = stdout.trimEnd().split('\n')[1]!.split(/ {2,}/) as [
      string,
      string,
      string,
      string,
    ];
    // MQTT.js sends no password without a user name; the server ignores the user name.
    const options = {
      protocolVersion: 5 as const,
      reconnectPeriod: 0,
      username: 'anything',
      password: token,
    };
    // Plain TCP, no host name: the token's aud routes the client to broker live.cli-creds.
    const client = await mqtt.connectAsync(api.server.url, { ...options, clientId: '' });
    t.after(() => client.endAsync(true));
    const received = new Promise<string>((resolve) => client.once('message', (_t, p) => resolve(`${p}`)));
    await client.subscribeAsync('cli/creds', { qos: 1 });
    await client.publishAsync('cli/creds', 'with a CLI token', { qos: 1 });
    assert.equal(await received, 'with a CLI token');

    const disconnect = new Promise<number | undefined>((resolve) =>
      client.once('disconnect', (packet) => resolve(packet.reasonCode)),
    );
    await api.ok(['broker', 'revoke', 'live', ...NS, '--jti', jti]);
    assert.equal(await disconnect, 0x98); // Administrative action [MQTT-3.14.2.1]

    await assert.rejects(
      mqtt.connectAsync(api.server.url, { ...options, clientId }),
      (err: Error & { code?: number }) => {
        assert.equal(err.code, 0x86, err.message);
        return true;
      },
    );
    await api.ok(['broker', 'unrevoke', 'live', ...NS, '--jti', jti]);
    const again = await mqtt.connectAsync(api.server.url, { ...options, clientId });
    await again.endAsync();
  });
});
