/**
 * Enhanced authentication (section 4.12) with SCRAM-SHA-256 (RFC 5802, RFC 7677): the method
 * against RFC 7677's example, the AUTH exchange as literal bytes, failures (0x86, 0x8C, 0x82),
 * re-authentication (AUTH 0x19), the credentials file, and MQTT.js authenticating end to end
 * through its handleAuth hook.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import mqtt from 'mqtt';
import {
  type AuthStep,
  parseScramUsers,
  ScramSha256,
  scramCredential,
  scramCredentialLine,
} from '../../src/auth/index.ts';
import { Broker } from '../../src/broker/index.ts';
import { ConfigError, configWith } from '../../src/config.ts';
import type { AuthPacket } from '../../src/protocol/index.ts';
import { ScramClient } from '../helpers/scram-client.ts';
import { harness } from '../helpers/v5-harness.ts';
import { connectV5, packet, str, varint, Wire } from '../helpers/wire.ts';

const h = harness('auth');

// RFC 7677 section 3: user "user", password "pencil".
const RFC = {
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverNonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal:
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};
const rfcCredential = scramCredential('pencil', Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'), 4096);
const users = new Map([
  ['user', rfcCredential],
  ['alice', scramCredential('wonderland')],
]);

/** The RFC's server: RFC 7677's nonce, users "user"/pencil and "alice"/wonderland. */
function rfcAuthenticator(): ScramSha256 {
  return new ScramSha256((u) => users.get(u), { nonce: () => RFC.serverNonce });
}

/** A server offering SCRAM-SHA-256 with the test users. */
async function scramServer(): Promise<ReturnType<typeof h.serverWith>> {
  const s = await h.serverWith({});
  s.server.defaultBroker.authenticators.set('SCRAM-SHA-256', rfcAuthenticator());
  return s;
}

/** CONNECT v5, Clean Start, keep alive 60, properties: Authentication Method and Data. */
function connectWithAuth(id: string, method: string, data: string): number[] {
  const props = [0x15, ...str(method), 0x16, ...str(data)];
  return packet(0x10, [
    ...str('MQTT'),
    0x05,
    0x02,
    0x00,
    0x3c,
    ...varint(props.length),
    ...props,
    ...str(id),
  ]);
}

/** AUTH with a reason code, Authentication Method and Data. */
function auth(reason: number, method: string, data: string): number[] {
  const props = [0x15, ...str(method), 0x16, ...str(data)];
  return packet(0xf0, [reason, ...varint(props.length), ...props]);
}

describe('SCRAM-SHA-256, RFC 7677 example', () => {
  test('the server answers the RFC client with the RFC server-first and server-final messages', () => {
    const exchange = rfcAuthenticator().begin();
    const first = exchange.start(Buffer.from(RFC.clientFirst));
    assert.deepEqual(first, { outcome: 'continue', data: Buffer.from(RFC.serverFirst) });
    const final = exchange.continue(Buffer.from(RFC.clientFinal));
    assert.deepEqual(final, { outcome: 'success', data: Buffer.from(RFC.serverFinal), username: 'user' });
  });

  test('a wrong proof, a changed nonce or channel binding are refused', () => {
    const proofs = [
      RFC.clientFinal.replace('p=dHzb', 'p=eHzb'),
      RFC.clientFinal.replace('r=rOpr', 'r=xOpr'),
      RFC.clientFinal.replace('c=biws', 'c=eSws'),
    ];
    for (const bad of proofs) {
      const exchange = rfcAuthenticator().begin();
      exchange.start(Buffer.from(RFC.clientFirst));
      const step = exchange.continue(Buffer.from(bad)) as AuthStep;
      assert.equal(step.outcome, 'fail', bad);
    }
    const cb = rfcAuthenticator().begin().start(Buffer.from('p=tls-unique,,n=user,r=abc')) as AuthStep;
    assert.equal(cb.outcome, 'fail');
  });

  test('an unknown user gets a plausible server-first (same salt each time) and then fails', () => {
    const server = rfcAuthenticator();
    const a = server.begin().start(Buffer.from('n,,n=nobody,r=abc')) as AuthStep;
    const b = server.begin().start(Buffer.from('n,,n=nobody,r=abc')) as AuthStep;
    assert.equal(a.outcome, 'continue');
    assert.deepEqual(a, b);
    const client = new ScramClient('nobody', 'guess', 'abc');
    client.first();
    const exchange = server.begin();
    const sf = exchange.start(Buffer.from('n,,n=nobody,r=abc'));
    const step = exchange.continue(client.final((sf as { data: Buffer }).data)) as AuthStep;
    assert.equal(step.outcome, 'fail');
  });
});

describe('the AUTH exchange on the wire', () => {
  test('CONNECT(method, client-first) → AUTH 0x18(server-first) → AUTH 0x18(client-final) → CONNACK(server-final) [MQTT-4.12.0-2] [MQTT-4.12.0-5]', async (t) => {
    const s = await scramServer();
    const w = await Wire.tcp(s.port, 5);
    t.after(() => w.destroy());
    w.send(connectWithAuth(h.uid(), 'SCRAM-SHA-256', RFC.clientFirst));
    const challenge = await w.frame();
    assert.deepEqual(
      [challenge.first, ...varint(challenge.body.length), ...challenge.body],
      auth(0x18, 'SCRAM-SHA-256', RFC.serverFirst),
      'AUTH 0x18 with the method and server-first-message',
    );
    w.send(auth(0x18, 'SCRAM-SHA-256', RFC.clientFinal));
    const ack = await w.frame();
    assert.equal(ack.first, 0x20);
    assert.deepEqual([...ack.body.subarray(0, 2)], [0x00, 0x00], 'CONNACK success');
    const body = ack.body.toString('latin1');
    assert.ok(body.includes(`\x15\x00\x0dSCRAM-SHA-256`), 'Authentication Method in CONNACK');
    assert.ok(
      body.includes(`\x16\x00${String.fromCharCode(RFC.serverFinal.length)}${RFC.serverFinal}`),
      'server-final',
    );
    await w.expectAlive();
  });

  test('a wrong password gets CONNACK 0x86 and a close [MQTT-4.12.0-4]', async (t) => {
    const s = await scramServer();
    const w = await Wire.tcp(s.port, 5);
    t.after(() => w.destroy());
    const client = new ScramClient('alice', 'not-wonderland');
    w.send(connectWithAuth(h.uid(), 'SCRAM-SHA-256', client.first().toString()));
    const challenge = await w.frame();
    assert.equal(challenge.first, 0xf0);
    const serverFirst = challenge.body.toString('latin1').split('\x16')[1]!.slice(2);
    w.send(auth(0x18, 'SCRAM-SHA-256', client.final(serverFirst).toString()));
    const ack = await w.frame();
    assert.deepEqual([ack.first, ack.body[0], ack.body[1]], [0x20, 0x00, 0x86]);
    await w.expectSilentClose();
  });

  test('wrong SCRAM proofs count against the address: past --auth-failure-limit even the right password gets 0x8A', async (t) => {
    const s = await h.serverWith({ authFailureLimit: 2, authFailureDelay: 1 });
    s.server.defaultBroker.authenticators.set('SCRAM-SHA-256', rfcAuthenticator());
    const attempt = async (password: string): Promise<number> => {
      const w = await Wire.tcp(s.port, 5);
      t.after(() => w.destroy());
      const client = new ScramClient('alice', password);
      w.send(connectWithAuth(h.uid(), 'SCRAM-SHA-256', client.first().toString()));
      const first = await w.frame();
      if (first.first === 0x20) return first.body[1]!; // refused before the exchange
      const serverFirst = first.body.toString('latin1').split('\x16')[1]!.slice(2);
      w.send(auth(0x18, 'SCRAM-SHA-256', client.final(serverFirst).toString()));
      const ack = await w.frame();
      return ack.body[1]!;
    };
    assert.equal(await attempt('not-wonderland'), 0x86);
    assert.equal(await attempt('still-not-wonderland'), 0x86);
    assert.equal(await attempt('wonderland'), 0x8a, 'the address is banned after two wrong proofs');
  });

  test('an authentication method the server does not offer gets CONNACK 0x8C [MQTT-4.12.0-1]', async (t) => {
    const s = await scramServer();
    const w = await Wire.tcp(s.port, 5);
    t.after(() => w.destroy());
    w.send(connectWithAuth(h.uid(), 'KERBEROS', 'x'));
    const ack = await w.frame();
    assert.deepEqual([ack.first, ack.body[0], ack.body[1]], [0x20, 0x00, 0x8c]);
    await w.expectSilentClose();
    const plain = await Wire.tcp(h.ts.port, 5);
    t.after(() => plain.destroy());
    plain.send(connectWithAuth(h.uid(), 'SCRAM-SHA-256', RFC.clientFirst));
    const refused = await plain.frame();
    assert.deepEqual([refused.body[0], refused.body[1]], [0x00, 0x8c], 'no method configured: 0x8C');
  });

  test('a packet other than AUTH during the exchange gets CONNACK 0x82 (section 4.12)', async (t) => {
    const s = await scramServer();
    const w = await Wire.tcp(s.port, 5);
    t.after(() => w.destroy());
    w.send(connectWithAuth(h.uid(), 'SCRAM-SHA-256', RFC.clientFirst));
    assert.equal((await w.frame()).first, 0xf0);
    w.send([0xc0, 0x00]); // PINGREQ
    const ack = await w.frame();
    assert.deepEqual([ack.first, ack.body[0], ack.body[1]], [0x20, 0x00, 0x82]);
    await w.client.closed();
  });

  test('AUTH with another method than CONNECT’s: DISCONNECT 0x82; without a method in CONNECT: 0x82 [MQTT-4.12.0-7] [MQTT-4.12.1-1]', async (t) => {
    const s = await scramServer();
    const w = await Wire.tcp(s.port, 5);
    t.after(() => w.destroy());
    const client = new ScramClient('alice', 'wonderland');
    w.send(connectWithAuth(h.uid(), 'SCRAM-SHA-256', client.first().toString()));
    const sf = (await w.frame()).body.toString('latin1').split('\x16')[1]!.slice(2);
    w.send(auth(0x18, 'SCRAM-SHA-256', client.final(sf).toString()));
    assert.equal((await w.frame()).first, 0x20);
    w.send(auth(0x19, 'OTHER', 'x'));
    await w.expectDisconnect(0x82);
    const none = await Wire.tcp(s.port, 5);
    t.after(() => none.destroy());
    await none.handshake(connectV5(h.uid()));
    none.send(auth(0x19, 'SCRAM-SHA-256', RFC.clientFirst));
    await none.expectDisconnect(0x82);
  });
});

describe('re-authentication', () => {
  /** A RawClient authenticated as alice. */
  async function authenticated(server: Parameters<typeof h.open>[1]) {
    const c = h.open(5, server);
    const client = new ScramClient('alice', 'wonderland');
    c.send({
      type: 'connect',
      protocolName: 'MQTT',
      protocolVersion: 5,
      clean: true,
      keepalive: 60,
      clientId: h.uid(),
      properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: client.first() },
    });
    const challenge = await c.expect('auth');
    assert.equal(challenge.reasonCode, 0x18);
    c.send({
      type: 'auth',
      reasonCode: 0x18,
      properties: {
        authenticationMethod: 'SCRAM-SHA-256',
        authenticationData: client.final(challenge.properties!.authenticationData!),
      },
    });
    const ack = await c.expect('connack');
    assert.equal(ack.reasonCode, 0);
    assert.ok(client.verify(ack.properties?.authenticationData), 'the server proved it knows the ServerKey');
    return c;
  }

  test('AUTH 0x19 → AUTH 0x18 → AUTH 0x18 → AUTH 0x00 with the server signature, while the session keeps working [MQTT-4.12.1-1]', async () => {
    const s = await scramServer();
    const c = await authenticated(s.server);
    await h.subscribe(c, 'reauth/#', 1);
    const again = new ScramClient('alice', 'wonderland');
    c.send({
      type: 'auth',
      reasonCode: 0x19,
      properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: again.first() },
    });
    const challenge = await c.expect('auth');
    assert.equal(challenge.reasonCode, 0x18);
    assert.equal(challenge.properties?.authenticationMethod, 'SCRAM-SHA-256');
    await h.publish(c, 'reauth/x', 'during', 0); // other packets flow during re-authentication
    assert.equal((await h.receive(c)).payload.toString(), 'during');
    c.send({
      type: 'auth',
      reasonCode: 0x18,
      properties: {
        authenticationMethod: 'SCRAM-SHA-256',
        authenticationData: again.final(challenge.properties!.authenticationData!),
      },
    });
    const done: AuthPacket = await c.expect('auth');
    assert.equal(done.reasonCode, 0x00);
    assert.ok(again.verify(done.properties?.authenticationData));
    await h.publish(c, 'reauth/x', 'after', 0);
    assert.equal((await h.receive(c)).payload.toString(), 'after');
  });

  test('a failed re-authentication gets DISCONNECT 0x87 and a close [MQTT-4.12.1-2]', async () => {
    const s = await scramServer();
    const c = await authenticated(s.server);
    const wrong = new ScramClient('alice', 'wrong');
    c.send({
      type: 'auth',
      reasonCode: 0x19,
      properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: wrong.first() },
    });
    const challenge = await c.expect('auth');
    c.send({
      type: 'auth',
      reasonCode: 0x18,
      properties: {
        authenticationMethod: 'SCRAM-SHA-256',
        authenticationData: wrong.final(challenge.properties!.authenticationData!),
      },
    });
    assert.equal((await c.expect('disconnect')).reasonCode, 0x87);
    await c.closed();
  });
});

describe('SCRAM credentials file and MQTT.js', () => {
  test('MQTT.js v5 authenticates with SCRAM-SHA-256 from a users file (handleAuth), then publishes and receives', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'pubsub-scram-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'users.scram');
    writeFileSync(file, `# test users\n${scramCredentialLine('bob', 'builder', 1000)}\n`);
    const s = await h.serverWith({ scramUsersFile: file });
    const scram = new ScramClient('bob', 'builder');
    const client = mqtt.connect(s.url, {
      protocolVersion: 5,
      reconnectPeriod: 0,
      clientId: h.uid(),
      properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: scram.first() },
    });
    t.after(() => client.endAsync(true));
    client.handleAuth = (packet, callback) => {
      const data = packet.properties?.authenticationData as Buffer;
      callback(undefined, {
        cmd: 'auth',
        reasonCode: 0x18,
        properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: scram.final(data) },
      });
    };
    const connack = await new Promise<mqtt.IConnackPacket>((resolve, reject) => {
      client.once('connect', resolve);
      client.once('error', reject);
    });
    assert.equal(connack.reasonCode, 0);
    assert.ok(scram.verify(connack.properties?.authenticationData), 'MQTT.js got the server signature');
    await client.subscribeAsync('scram/x', { qos: 1 });
    const got = new Promise<string>((resolve) => client.once('message', (_t, p) => resolve(p.toString())));
    await client.publishAsync('scram/x', 'hello', { qos: 1 });
    assert.equal(await got, 'hello');

    const wrong = new ScramClient('bob', 'wrecker');
    const refused = mqtt.connect(s.url, {
      protocolVersion: 5,
      reconnectPeriod: 0,
      properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: wrong.first() },
    });
    t.after(() => refused.endAsync(true));
    refused.handleAuth = (packet, callback) => {
      callback(undefined, {
        cmd: 'auth',
        reasonCode: 0x18,
        properties: {
          authenticationMethod: 'SCRAM-SHA-256',
          authenticationData: wrong.final(packet.properties?.authenticationData as Buffer),
        },
      });
    };
    const err = await new Promise<Error & { code?: number }>((resolve) => refused.once('error', resolve));
    assert.equal(err.code, 0x86);
  });

  test('scram-user.ts prints a line the server loads; a malformed file stops start-up naming the line', () => {
    const out = spawnSync(process.execPath, ['src/auth/scram-user.ts', 'carol', 's3cret', '2000'], {
      encoding: 'utf8',
    });
    assert.equal(out.status, 0, out.stderr);
    const parsed = parseScramUsers(out.stdout, 'stdout');
    assert.equal(parsed.get('carol')?.iterations, 2000);
    assert.throws(() => parseScramUsers('carol:abc:1\n', 'users.scram'), /users\.scram:1: expected/);
    assert.throws(
      () => new Broker('b', configWith({ scramUsersFile: '/nonexistent/users.scram' })),
      (e: Error) => e instanceof ConfigError && /scramUsersFile/.test(e.message),
    );
  });
});
