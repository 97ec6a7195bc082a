/**
 * Interop over TLS with Debian's mosquitto_pub / mosquitto_sub (libmosquitto on OpenSSL): QoS
 * 0/1/2 round trips trusting the broker through `--cafile`, the same with a client certificate
 * (`--cert`/`--key`) on a `--tls-client-auth require` listener, and refusals of a client without
 * a certificate or with one from another CA, the broker serving others all along.
 * Certificates come from the test PKI (test/helpers/certificates.ts), made and removed here.
 */
import assert from 'node:assert/strict';
import { after, before, it, type TestContext } from 'node:test';
import { createTestPki, type TestPki } from '../helpers/certificates.ts';
import type { Child } from '../helpers/child-process.ts';
import {
  describeWithTool,
  mosquittoClients,
  mosquittoPub,
  mosquittoSub,
  uniqueName,
} from '../helpers/interop-tools.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

let pki: TestPki;
let plain: TestServer;
let mutual: TestServer;
before(async () => {
  pki = createTestPki();
  plain = await startServer({ tlsCert: pki.server.certFile, tlsKey: pki.server.keyFile });
  mutual = await startServer({
    tlsCert: pki.server.certFile,
    tlsKey: pki.server.keyFile,
    tlsCa: pki.ca.certFile,
    tlsClientAuth: 'require',
  });
});
after(async () => {
  await plain?.close();
  await mutual?.close();
  pki?.remove();
});

const tlsPort = (ts: TestServer): string => new URL(ts.tlsUrl).port;

function common(ts: TestServer, version: 4 | 5, extra: string[]): string[] {
  return [
    '-h',
    '127.0.0.1',
    '-p',
    tlsPort(ts),
    '-V',
    version === 4 ? 'mqttv311' : 'mqttv5',
    '--cafile',
    pki.ca.certFile,
    ...extra,
  ];
}

async function subscribe(t: TestContext, args: string[]): Promise<Child> {
  return mosquittoSub(t, ['-F', 'msg %q %t %p', '-W', '30', ...args]);
}

async function publish(t: TestContext, args: string[]): Promise<{ code: number | null; child: Child }> {
  const pub = await mosquittoPub(t, args);
  return { code: pub.exit!.code, child: pub };
}

const certified = (): string[] => ['--cert', pki.client.certFile, '--key', pki.client.keyFile];

for (const version of [4, 5] as const) {
  const v = `MQTT ${version === 4 ? '3.1.1' : '5.0'}`;
  describeWithTool(`mosquitto_pub/mosquitto_sub over TLS, ${v}`, mosquittoClients, () => {
    for (const qos of [0, 1, 2] as const) {
      it(`${v}: QoS ${qos} round trip over TLS trusting the broker with --cafile`, async (t) => {
        const topic = uniqueName(`mosq-tls/v${version}/q${qos}`);
        const sub = await subscribe(t, common(plain, version, ['-q', String(qos), '-t', topic, '-C', '1']));
        const pub = await publish(
          t,
          common(plain, version, ['-q', String(qos), '-t', topic, '-m', `tls ${qos}`]),
        );
        assert.equal(pub.code, 0, pub.child.report());
        await sub.waitForLine((l) => l === `msg ${qos} ${topic} tls ${qos}`, 'the message');
        assert.equal((await sub.waitForExit()).code, 0, sub.report());
      });

      it(`${v}: QoS ${qos} round trip with a client certificate on a require listener`, async (t) => {
        const topic = uniqueName(`mosq-mtls/v${version}/q${qos}`);
        const sub = await subscribe(
          t,
          common(mutual, version, [...certified(), '-q', String(qos), '-t', topic, '-C', '1']),
        );
        const pub = await publish(
          t,
          common(mutual, version, [...certified(), '-q', String(qos), '-t', topic, '-m', `mtls ${qos}`]),
        );
        assert.equal(pub.code, 0, pub.child.report());
        await sub.waitForLine((l) => l === `msg ${qos} ${topic} mtls ${qos}`, 'the message');
        assert.equal((await sub.waitForExit()).code, 0, sub.report());
      });
    }

    it(`${v}: on a require listener, no certificate and a certificate from another CA are refused; a certified subscriber is undisturbed`, async (t) => {
      const topic = uniqueName(`mosq-mtls/v${version}/refused`);
      const sub = await subscribe(t, common(mutual, version, [...certified(), '-q', '1', '-t', topic]));
      const bare = await publish(t, common(mutual, version, ['-q', '1', '-t', topic, '-m', 'bare']));
      assert.notEqual(bare.code, 0, bare.child.report());
      const rogue = await publish(
        t,
        common(mutual, version, [
          '--cert',
          pki.rogueClient.certFile,
          '--key',
          pki.rogueClient.keyFile,
          '-q',
          '1',
          '-t',
          topic,
          '-m',
          'rogue',
        ]),
      );
      assert.notEqual(rogue.code, 0, rogue.child.report());
      const ok = await publish(
        t,
        common(mutual, version, [...certified(), '-q', '1', '-t', topic, '-m', 'marker']),
      );
      assert.equal(ok.code, 0, ok.child.report());
      await sub.waitForLine((l) => l === `msg 1 ${topic} marker`, 'the marker');
      assert.deepEqual(
        sub.lines.filter((l) => l.startsWith('msg ')),
        [`msg 1 ${topic} marker`],
      );
    });
  });
}
