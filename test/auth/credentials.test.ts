/**
 * Broker credentials end to end: tokens minted by the API, verified independently (jose against
 * /publickeys, and node:crypto by hand), then used by real MQTT.js clients over TCP (routed by
 * the token's aud) and WebSocket; every refusal a client can meet, revocation live and before
 * connect, key rotation, and topic ACLs on publish and subscribe.
 */
import assert from 'node:assert/strict';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createLocalJWKSet, decodeProtectedHeader, type JWK, jwtVerify } from 'jose';
import mqtt from 'mqtt';
import { RawClient } from '../helpers/raw-client.ts';
import { type Envelope, pubsubApi, startServer, type TestServer } from '../helpers/server.ts';

describe('broker credentials', () => {
  let ts: TestServer;
  const clients: mqtt.MqttClient[] = [];
  const api = <T>(method: string, path: string, body?: unknown): Promise<Envelope<T>> =>
    pubsubApi<T>(ts, method, path, body);
  const issue = async (broker: string, query = ''): Promise<[string, string][]> => {
    const env = await api<Record<string, string>>(
      'GET',
      `/namespaces/creds/brokers/${broker}/credentials?${query}`,
    );
    assert.equal(env.success, true, JSON.stringify(env));
    return Object.entries(env.result);
  };
  const connect = async (opts: mqtt.IClientOptions, url = ts.url): Promise<mqtt.MqttClient> => {
    // MQTT.js sends no password without a user name; any user name is accepted by default.
    const c = await mqtt.connectAsync(url, {
      protocolVersion: 5,
      reconnectPeriod: 0,
      username: 'anything',
      ...opts,
    });
    clients.push(c);
    return c;
  };
  const refusedWith = async (opts: mqtt.IClientOptions, code: number): Promise<void> => {
    await assert.rejects(connect(opts), (err: Error & { code?: number }) => {
      assert.equal(err.code, code, err.message);
      return true;
    });
  };

  before(async () => {
    ts = await startServer({ httpPort: 0 });
    assert.equal((await api('POST', '/namespaces', { name: 'creds' })).success, true);
    for (const name of ['home', 'other'])
      assert.equal(
        (await api('POST', '/namespaces/creds/brokers', { name, authType: 'TOKEN' })).success,
        true,
      );
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await ts.close();
  });

  it('mints N tokens: client ids are the broker name + a ULID; claims as documented', async () => {
    const tokens = await issue('home', 'number=2&type=TOKEN&topicAcl=');
    assert.equal(tokens.length, 2);
    for (const [clientId, jwt] of tokens) {
      assert.match(clientId, /^home[0-9A-HJKMNP-TV-Z]{26}$/);
      const header = decodeProtectedHeader(jwt);
      assert.equal(header.alg, 'EdDSA');
      const claims = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString());
      assert.equal(claims.sub, clientId);
      assert.equal(claims.aud, 'home.creds');
      assert.equal(claims.topicAcl, '#');
      assert.match(claims.jti, /^[0-9A-HJKMNP-TV-Z]{26}$/);
      assert.equal(typeof claims.iat, 'number');
      assert.equal(claims.exp, undefined, 'no expiry unless one applies');
    }
  });

  it('tokens verify with an independent implementation: jose against /publickeys, and node:crypto by hand', async () => {
    const [[, jwt]] = (await issue('home')) as [[string, string]];
    const keys = (await api<{ keys: JWK[] }>('GET', '/namespaces/creds/brokers/home/publickeys')).result;
    assert.equal(keys.keys.length, 2);
    for (const k of keys.keys) {
      // kid is the RFC 7638 thumbprint of {crv, kty, x}.
      const expected = createHash('sha256')
        .update(`{"crv":"Ed25519","kty":"OKP","x":"${k.x}"}`)
        .digest('base64url');
      assert.equal(k.kid, expected);
      assert.deepEqual([k.kty, k.crv, k.alg, k.use], ['OKP', 'Ed25519', 'EdDSA', 'sig']);
      assert.equal((k as Record<string, unknown>).d, undefined, 'no private part published');
    }
    const { payload } = await jwtVerify(jwt, createLocalJWKSet(keys), { audience: 'home.creds' });
    assert.equal(typeof payload.sub, 'string');
    const [h, p, s] = jwt.split('.') as [string, string, string];
    const kid = decodeProtectedHeader(jwt).kid;
    const jwk = keys.keys.find((k) => k.kid === kid)!;
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: jwk.x! }, format: 'jwk' });
    assert.ok(verify(null, Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url')));
  });

  it('a token connects over TCP with no host name: routed by aud, client id from sub when empty', async () => {
    const [[clientId, jwt]] = (await issue('home')) as [[string, string]];
    const c = await connect({ clientId: '', password: jwt });
    const assigned = [...ts.server.tenancy.tenants()]
      .find((t) => t.record.name === 'home')!
      .broker.sessions.get(clientId)?.clientId;
    assert.equal(assigned, clientId, 'the session is keyed by the token sub');
    const got = new Promise<string>((resolve) => c.once('message', (_t, p) => resolve(`${p}`)));
    await c.subscribeAsync('example-topic', { qos: 1 });
    await c.publishAsync('example-topic', 'hello', { qos: 1 });
    assert.equal(await got, 'hello');
    const same = await connect({ clientId, password: jwt }, ts.wsUrl);
    assert.ok(same.connected, 'the same token over WebSocket with the matching client id');
  });

  it('the token of another broker is refused (0x86), even through the other broker host name', async () => {
    const [[, jwt]] = (await issue('other')) as [[string, string]];
    const ws = ts.wsUrl;
    await assert.rejects(
      mqtt.connectAsync(ws, {
        protocolVersion: 5,
        reconnectPeriod: 0,
        clientId: '',
        username: 'anything',
        password: jwt,
        wsOptions: { headers: { host: 'home.creds.localhost' } },
      } as mqtt.IClientOptions),
      (err: Error & { code?: number }) => err.code === 0x86,
    );
  });

  it('a wrong signature, a malformed token and no token are refused (0x86)', async () => {
    const [[, jwt]] = (await issue('home')) as [[string, string]];
    const [h, p, s] = jwt.split('.') as [string, string, string];
    const flipped = Buffer.from(s, 'base64url');
    flipped[0]! ^= 1;
    await refusedWith({ clientId: '', password: `${h}.${p}.${flipped.toString('base64url')}` }, 0x86);
    // A payload changed under the same signature.
    const forged = Buffer.from(
      JSON.stringify({
        ...JSON.parse(Buffer.from(p, 'base64url').toString()),
        topicAcl: '#',
        sub: 'intruder',
      }),
    ).toString('base64url');
    await refusedWith({ clientId: '', password: `${h}.${forged}.${s}` }, 0x86);
  });

  it('a client id other than the token sub is refused (0x85)', async () => {
    const [[, jwt]] = (await issue('home')) as [[string, string]];
    await refusedWith({ clientId: 'someone-else', password: jwt }, 0x85);
  });

  it('an expired token is refused (0x86); a live session is disconnected at exp with 0xA0', async () => {
    // exp is whole seconds after a floored iat: a 1 s token can be a few ms from expiry when it
    // is issued late in a second, so it gets 2 s (at least one whole second to connect in).
    const [[, soon]] = (await issue('home', 'expiration=2')) as [[string, string]];
    const claims = JSON.parse(Buffer.from(soon.split('.')[1]!, 'base64url').toString());
    assert.equal(claims.exp - claims.iat, 2);
    const c = await connect({ clientId: '', password: soon });
    const reason = await new Promise<number | undefined>((resolve) =>
      c.once('disconnect', (packet) => resolve(packet.reasonCode)),
    );
    assert.equal(reason, 0xa0);
    await refusedWith({ clientId: '', password: soon }, 0x86);
  });

  it('revoked before connect: refused (0x86); unrevoked: accepted again', async () => {
    const [[, jwt]] = (await issue('home')) as [[string, string]];
    const { jti } = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString());
    assert.equal(
      (await api('POST', `/namespaces/creds/brokers/home/revocations?jti=${jti},another-id`)).success,
      true,
    );
    const listed = await api<string[]>('GET', '/namespaces/creds/brokers/home/revocations');
    assert.ok(listed.result.includes(jti) && listed.result.includes('another-id'));
    await refusedWith({ clientId: '', password: jwt }, 0x86);
    assert.equal(
      (await api('DELETE', `/namespaces/creds/brokers/home/revocations?jti=${jti}&jti=another-id`)).success,
      true,
    );
    assert.deepEqual((await api<string[]>('GET', '/namespaces/creds/brokers/home/revocations')).result, []);
    assert.ok((await connect({ clientId: '', password: jwt })).connected);
  });

  it('a revocation is pruned once its token has expired; one of a token without expiry stays', async () => {
    const [[, short]] = (await issue('home', 'expiration=60')) as [[string, string]];
    const [[, forever]] = (await issue('home', 'expiration=-1')) as [[string, string]];
    const jtiOf = (jwt: string) =>
      JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()).jti as string;
    await api('POST', `/namespaces/creds/brokers/home/revocations?jti=${jtiOf(short)},${jtiOf(forever)}`);
    const listed = async () =>
      (await api<string[]>('GET', '/namespaces/creds/brokers/home/revocations')).result;
    assert.ok((await listed()).includes(jtiOf(short)));
    assert.equal(ts.server.tenancy.pruneExpiredRevocations(Date.now() + 61_000), 1);
    const after = await listed();
    assert.ok(!after.includes(jtiOf(short)), 'pruned after its exp');
    assert.ok(after.includes(jtiOf(forever)), 'kept: it never expires');
    await api('DELETE', `/namespaces/creds/brokers/home/revocations?jti=${jtiOf(forever)}`);
  });

  it('revoked while connected: disconnected with 0x98 within a second, other clients untouched', async () => {
    const [[, victimJwt], [, bystanderJwt]] = (await issue('home', 'number=2')) as [string, string][];
    const victim = await connect({ clientId: '', password: victimJwt! });
    const bystander = await connect({ clientId: '', password: bystanderJwt! });
    const { jti } = JSON.parse(Buffer.from(victimJwt!.split('.')[1]!, 'base64url').toString());
    const started = Date.now();
    const reason = new Promise<number | undefined>((resolve) =>
      victim.once('disconnect', (packet) => resolve(packet.reasonCode)),
    );
    await api('POST', `/namespaces/creds/brokers/home/revocations?jti=${jti}`);
    assert.equal(await reason, 0x98);
    assert.ok(Date.now() - started < 1000);
    await bystander.subscribeAsync('alive', { qos: 1 });
  });

  it('key rotation: a token survives one rotation; the second disconnects its session (0x98) and refuses it', async () => {
    const [[, jwt]] = (await issue('home')) as [[string, string]];
    const before = (await api<{ keys: JWK[] }>('GET', '/namespaces/creds/brokers/home/publickeys')).result
      .keys;
    const once = (await api<{ keys: JWK[] }>('POST', '/namespaces/creds/brokers/home/publickeys/rotate'))
      .result.keys;
    assert.equal(once.length, 2);
    assert.equal(once[0]!.kid, before[1]!.kid, 'the oldest retired, the newest kept');
    const live = await connect({ clientId: '', password: jwt });
    const [[, newer]] = (await issue('home')) as [[string, string]];
    const survivor = await connect({ clientId: '', password: newer });
    const reason = new Promise<number | undefined>((resolve) =>
      live.once('disconnect', (packet) => resolve(packet.reasonCode)),
    );
    await api('POST', '/namespaces/creds/brokers/home/publickeys/rotate');
    assert.equal(await reason, 0x98, 'the session of a token signed by the retired key is ended');
    assert.ok(survivor.connected, 'a session of a token signed by the kept key stays');
    await refusedWith({ clientId: '', password: jwt }, 0x86);
    const [[, fresh]] = (await issue('home')) as [[string, string]];
    assert.ok((await connect({ clientId: '', password: fresh })).connected);
  });

  it('topic ACLs: publish and subscribe allowed or refused per rule, with the client id substituted', async () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: ACL rules contain the literal ${clientId} placeholder.
    const acl = ['pub:devices/${clientId}/#', 'sub:commands/${clientId}', 'sub:jobs/#']
      .map((r) => `topicAcl=${encodeURIComponent(r)}`)
      .join('&');
    const [[id, jwt]] = (await issue('home', acl)) as [[string, string]];
    const device = await connect({ clientId: '', password: jwt });
    const [[, adminJwt]] = (await issue('home')) as [[string, string]];
    const watcher = await connect({ clientId: '', password: adminJwt });
    const seen: string[] = [];
    watcher.on('message', (topic) => seen.push(topic));
    await watcher.subscribeAsync('#', { qos: 1 });

    const outcome = async (filter: string): Promise<string> =>
      device.subscribeAsync(filter, { qos: 1 }).then(
        () => 'granted',
        (err: Error) => (/Not authorized/i.test(err.message) ? 'refused' : err.message),
      );
    assert.equal(await outcome(`commands/${id}`), 'granted');
    assert.equal(await outcome('commands/someone-else'), 'refused');
    assert.equal(await outcome(`devices/${id}/x`), 'refused', 'a pub rule grants no subscription');
    assert.equal(await outcome('jobs/+/urgent'), 'granted', 'sub:jobs/# covers jobs/+/urgent');
    assert.equal(await outcome('$share/workers/jobs/a'), 'granted', 'shared: the inner filter is checked');
    assert.equal(await outcome('$share/workers/other'), 'refused');
    assert.equal(await outcome('#'), 'refused');
    await device.publishAsync(`devices/${id}/temp`, '21', { qos: 1 });
    await assert.rejects(
      device.publishAsync('devices/other/temp', 'x', { qos: 1 }),
      (err: Error & { code?: number }) => {
        assert.equal(err.code, 0x87);
        return true;
      },
    );
    await device.publishAsync('elsewhere', 'qos0 dropped', { qos: 0 });
    await device.publishAsync(`devices/${id}/end`, 'end', { qos: 1 });
    await new Promise<void>((resolve) => {
      const check = () => (seen.includes(`devices/${id}/end`) ? resolve() : setTimeout(check, 5));
      check();
    });
    assert.deepEqual(seen, [`devices/${id}/temp`, `devices/${id}/end`]);
    assert.ok(ts.server.tenancy.tenants().next() !== undefined);
  });

  it('a QoS 0 PUBLISH the topic ACL refuses is dropped unanswered, in v3.1.1 and v5 [MQTT-3.3.5-2]', async () => {
    const [[id, jwt]] = (await issue('home', `topicAcl=${encodeURIComponent('pub:mine/#')}`)) as [
      [string, string],
    ];
    for (const version of [4, 5] as const) {
      const raw = await RawClient.tcp(ts.port, version);
      try {
        const connack = await raw.connect({ clientId: id, username: 'anything', password: Buffer.from(jwt) });
        assert.equal(connack.reasonCode, 0);
        raw.send({
          type: 'publish',
          topic: 'elsewhere',
          payload: Buffer.from('x'),
          qos: 0,
          retain: false,
          dup: false,
        });
        raw.send({ type: 'pingreq' });
        await raw.expect('pingresp'); // no PUBACK/PUBREC before it: QoS 0 has nothing to acknowledge
      } finally {
        raw.destroy();
      }
    }
  });

  it('bad credential requests: number out of range, unknown type, bad ACL, unknown broker', async () => {
    const bad = async (query: string, code: number) => {
      const env = await api('GET', `/namespaces/creds/brokers/home/credentials?${query}`);
      assert.equal(env.success, false, query);
      assert.equal(env.errors[0]!.code, code, `${query}: ${JSON.stringify(env.errors)}`);
    };
    await bad('number=0', 14009);
    await bad('number=101', 14009);
    await bad('type=PASSWORD', 6009);
    await bad(`topicAcl=${encodeURIComponent('pub:a/#/b')}`, 14009);
    await bad('expiration=-2', 14009);
    const missing = await api('GET', '/namespaces/creds/brokers/ghost/credentials');
    assert.equal(missing.errors[0]!.code, 14006);
    const noJti = await api('POST', '/namespaces/creds/brokers/home/revocations');
    assert.equal(noJti.errors[0]!.code, 14009);
  });
});
