/**
 * The webhook egress policy (security review, finding 2) on its decisions: the class of each
 * internal range (IPv4 inside IPv6 included), what the default, `hookAllowPrivate` and
 * `hookAllowCidrs` allow, and `vet`/`lookup` with an injected resolver. Connection tests only
 * ever offer the policy loopback or 0.0.0.0 (which reaches this host): a policy that let one
 * through would be seen by the local server counting connections, and no packet leaves the host.
 */
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createServer as createTlsServer } from 'node:tls';
import { parseCidrList } from '../../src/cidr-list.ts';
import { configWith, servesOnlyThisMachine } from '../../src/config.ts';
import {
  type AddressClass,
  classifyAddress,
  decideAddress,
  EgressPolicy,
  EgressRefusedError,
  type EgressRules,
} from '../../src/hooks/webhook/egress-policy.ts';
import { HttpPoster } from '../../src/hooks/webhook/http-post.ts';
import { fakeResolver } from '../helpers/hosts.ts';

const CLASSES: Record<AddressClass, string[]> = {
  public: [
    '192.0.2.1',
    '8.8.8.8',
    '11.0.0.1',
    '172.32.0.1',
    '100.128.0.1',
    '2001:db8::1',
    '2606:4700::1111',
    '::ffff:8.8.8.8',
    '64:ff9b::808:808',
    '2002:808:808::1',
  ],
  loopback: ['127.0.0.1', '127.255.255.254', '::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '64:ff9b::7f00:1'],
  private: [
    '10.0.0.1',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '100.64.0.1',
    '100.127.255.255',
    'fc00::1',
    'fd00::1',
    'FD12:3456::1',
    'fec0::1',
    '64:ff9b:1::1',
    '::ffff:10.0.0.1',
    '::ffff:c0a8:101',
    '2002:c0a8:101::1',
  ],
  'link-local': ['169.254.1.1', 'fe80::1', 'fe80::1%eth0', '::ffff:169.254.1.1'],
  metadata: [
    '169.254.169.254',
    '169.254.170.2',
    '100.100.100.200',
    '168.63.129.16',
    'fd00:ec2::254',
    'fd00:ec2::23',
    '::ffff:169.254.169.254',
    '::ffff:a9fe:a9fe',
  ],
  unspecified: ['0.0.0.0', '0.1.2.3', '::', '::ffff:0.0.0.0'],
  multicast: ['224.0.0.1', '239.255.255.250', 'ff02::1'],
  broadcast: ['255.255.255.255'],
  reserved: ['240.0.0.1', '198.18.0.1', '192.0.0.8', '::7f00:1', '100::1', '2001::1', 'not-an-address', ''],
  // Decided by the rules (the machine's interfaces), never by the address alone.
  self: [],
};

const rules = (overrides: Partial<EgressRules> = {}): EgressRules => ({
  allowLoopback: true,
  self: parseCidrList(''),
  allowPrivate: false,
  allowCidrs: parseCidrList(''),
  ...overrides,
});

const policyFor = (overrides: Record<string, unknown>, table: Parameters<typeof fakeResolver>[0] = {}) => {
  const hosts = fakeResolver(table, false);
  return { policy: EgressPolicy.fromConfig(configWith(overrides), hosts.resolve, []), hosts };
};

describe('webhook egress policy: decisions', () => {
  it('classifies every internal range, and IPv4 inside IPv6 as the IPv4 address it reaches', () => {
    for (const [cls, addresses] of Object.entries(CLASSES))
      for (const address of addresses) assert.equal(classifyAddress(address), cls, address);
  });

  it('by default (the server binds loopback) public and loopback addresses are allowed, nothing else', () => {
    for (const [cls, addresses] of Object.entries(CLASSES))
      for (const address of addresses)
        assert.equal(
          decideAddress(address, rules()).allowed,
          cls === 'public' || cls === 'loopback',
          `${address} (${cls})`,
        );
  });

  it('loopback is allowed only while the server itself binds loopback', () => {
    for (const host of ['127.0.0.1', '127.0.0.2', '::1', 'localhost', 'LOCALHOST'])
      assert.equal(servesOnlyThisMachine(configWith({ host })), true, host);
    for (const host of ['0.0.0.0', '::', '192.168.1.10', 'fd00::1', 'broker.example.com'])
      assert.equal(servesOnlyThisMachine(configWith({ host })), false, host);
    const { policy: wide } = policyFor({ host: '0.0.0.0' });
    for (const address of CLASSES.loopback) assert.equal(wide.decide(address).allowed, false, address);
    assert.equal(wide.decide('192.0.2.1').allowed, true);
    const { policy: local } = policyFor({ host: '127.0.0.1' });
    for (const address of CLASSES.loopback) assert.equal(local.decide(address).allowed, true, address);
  });

  it('auto allows loopback only without a proxy in front (--proxy-protocol, --ws-trust-proxy); true and false force it', () => {
    const cases: [Record<string, unknown>, boolean][] = [
      [{ host: '127.0.0.1' }, true],
      [{ host: '127.0.0.1', proxyProtocol: true }, false],
      [{ host: '127.0.0.1', wsTrustProxy: true }, false],
      [{ host: '127.0.0.1', hookAllowLoopback: 'false' }, false],
      [{ host: '0.0.0.0', hookAllowLoopback: 'true' }, true],
      [{ host: '0.0.0.0', proxyProtocol: true, hookAllowLoopback: 'true' }, true],
    ];
    for (const [config, allowed] of cases) {
      const { policy } = policyFor(config);
      assert.equal(policy.decide('127.0.0.1').allowed, allowed, JSON.stringify(config));
      assert.equal(policy.decide('::1').allowed, allowed, JSON.stringify(config));
    }
  });

  it("the machine's own interface addresses are refused as self unless loopback is allowed", () => {
    const own = ['192.0.2.7', '10.0.0.5', '2001:db8::7', 'fe80::1%eth0'];
    const wide = EgressPolicy.fromConfig(
      configWith({ host: '0.0.0.0', hookAllowPrivate: true }),
      undefined,
      own,
    );
    for (const address of ['192.0.2.7', '::ffff:192.0.2.7', '10.0.0.5', '2001:db8::7']) {
      const decision = wide.decide(address);
      assert.deepEqual(decision, { allowed: false, class: 'self' }, address);
    }
    assert.equal(wide.decide('192.0.2.8').allowed, true, 'a neighbour is not this machine');
    assert.equal(wide.decide('fe80::1').class, 'link-local', 'link-local stays link-local');
    const local = EgressPolicy.fromConfig(configWith({ host: '127.0.0.1' }), undefined, own);
    assert.equal(local.decide('192.0.2.7').allowed, true, 'local development: this machine is allowed');
  });

  it('--hook-allow-private opens private networks only: not metadata, link-local or loopback', () => {
    const { policy } = policyFor({ host: '0.0.0.0', hookAllowPrivate: true });
    for (const [cls, addresses] of Object.entries(CLASSES))
      for (const address of addresses)
        assert.equal(
          policy.decide(address).allowed,
          cls === 'public' || cls === 'private',
          `${address} (${cls})`,
        );
  });

  it('--hook-allow-cidrs opens exactly its ranges, whatever their class, IPv4-mapped forms included', () => {
    const { policy } = policyFor({
      host: '0.0.0.0',
      hookAllowCidrs: ' 10.1.0.0/16, 169.254.169.254 ,fd12::/64,127.0.0.1/32',
    });
    for (const address of ['10.1.2.3', '::ffff:10.1.2.3', '169.254.169.254', 'fd12::5', '127.0.0.1'])
      assert.equal(policy.decide(address).allowed, true, address);
    for (const address of ['10.2.0.1', '169.254.169.253', 'fd12:0:0:1::5', '127.0.0.2', 'fd00:ec2::254'])
      assert.equal(policy.decide(address).allowed, false, address);
    assert.equal(policy.decide('169.254.169.254').class, 'metadata', 'still named for the log');
  });

  it('an allow list entry that is not address/prefix is refused, and stops the server at start-up', () => {
    for (const bad of [
      '10.0.0.0/33',
      'fd00::/129',
      '10.0.0.0/',
      '10.0.0/8',
      'intranet',
      '10.0.0.0/8/1',
      '::/-1',
    ])
      assert.throws(() => parseCidrList(bad), /is not an IPv4 or IPv6 address\/prefix/, bad);
    assert.throws(
      () => configWith({ hookAllowCidrs: '10.0.0.0/8,nonsense' }),
      /hookAllowCidrs: "nonsense" is not an IPv4 or IPv6 address\/prefix/,
    );
    assert.equal(configWith({ hookAllowCidrs: '10.0.0.0/8, ::1' }).hookAllowCidrs, '10.0.0.0/8, ::1');
  });
});

describe('webhook egress policy: resolving', () => {
  it('a host name resolving to a private address is refused, naming it for the log; literals are not resolved', async () => {
    const { policy, hosts } = policyFor({}, { 'intranet.test': ['10.0.0.5'] });
    await assert.rejects(
      policy.vet('intranet.test'),
      (err: Error) =>
        err instanceof EgressRefusedError &&
        err.message === 'intranet.test: 10.0.0.5 is private (refused by the webhook egress policy)',
    );
    assert.deepEqual(hosts.asked, ['intranet.test']);
    await assert.rejects(policy.vet('169.254.169.254'), EgressRefusedError);
    await assert.rejects(policy.vet('[fd00::1]'), EgressRefusedError);
    assert.deepEqual(await policy.vet('[::1]'), [{ address: '::1', family: 6 }]);
    assert.deepEqual(hosts.asked, ['intranet.test'], 'literals were decided without a lookup');
    assert.ok(policy.literalRefusal('10.0.0.5') instanceof EgressRefusedError);
    assert.equal(policy.literalRefusal('intranet.test'), undefined, 'names wait for their lookup');
  });

  it('one refused address among several refuses the host; a name without addresses fails', async () => {
    const { policy } = policyFor(
      {},
      {
        'mixed.test': ['192.0.2.7', 'fd00::7'],
        'public.test': ['192.0.2.8', '2001:db8::8'],
        'empty.test': [],
      },
    );
    await assert.rejects(policy.vet('mixed.test'), /mixed\.test: fd00::7 is private/);
    assert.equal((await policy.vet('public.test')).length, 2);
    await assert.rejects(policy.vet('empty.test'), { code: 'ENOTFOUND' });
    await assert.rejects(policy.vet('unknown.test'), { code: 'ENOTFOUND' });
  });
});

describe('webhook egress policy: connecting', () => {
  let server: Server;
  let port: number;
  const connections: string[] = [];
  const hosts: string[] = [];

  before(async () => {
    server = createHttpServer((req, res) => {
      hosts.push(req.headers.host ?? '');
      res.writeHead(200).end('[]');
    });
    server.on('connection', (socket) => connections.push(socket.localAddress ?? ''));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const post = (poster: HttpPoster) => poster.post({}, '[]', AbortSignal.timeout(5000), 1024);

  it('on a server bound to 0.0.0.0, a name mapped to loopback and a loopback literal are refused before connecting', async (t) => {
    const { policy, hosts: asked } = policyFor({ host: '0.0.0.0' }, { 'inside.test': ['127.0.0.1'] });
    const byName = new HttpPoster(`http://inside.test:${port}/hook`, 1, policy);
    const byLiteral = new HttpPoster(`http://127.0.0.1:${port}/hook`, 1, policy);
    t.after(() => {
      byName.close();
      byLiteral.close();
    });
    connections.length = 0;
    await assert.rejects(post(byName), /inside\.test: 127\.0\.0\.1 is loopback/);
    await assert.rejects(post(byLiteral), EgressRefusedError);
    assert.deepEqual(asked.asked, ['inside.test']);
    assert.deepEqual(connections, [], 'no connection was attempted');
  });

  it('a DNS answer that changes after the URL was checked is decided again when connecting (rebinding)', async (t) => {
    const answers = [['127.0.0.1'], ['0.0.0.0']];
    const { policy, hosts: asked } = policyFor({}, { 'rebind.test': () => answers.shift() ?? ['0.0.0.0'] });
    assert.deepEqual(
      await policy.vet('rebind.test'),
      [{ address: '127.0.0.1', family: 4 }],
      'the deploy-time check',
    );
    const poster = new HttpPoster(`http://rebind.test:${port}/hook`, 1, policy);
    t.after(() => poster.close());
    connections.length = 0;
    await assert.rejects(post(poster), /rebind\.test: 0\.0\.0\.0 is unspecified/);
    assert.deepEqual(asked.asked, ['rebind.test', 'rebind.test'], 'resolved again at connect time');
    assert.deepEqual(connections, [], '0.0.0.0 would have reached this server');
  });

  it('an allowed name connects to the address it resolved to and keeps the name as the Host header', async (t) => {
    const { policy } = policyFor({}, { 'hook.test': ['127.0.0.1'] });
    const poster = new HttpPoster(`http://hook.test:${port}/hook`, 1, policy);
    t.after(() => poster.close());
    hosts.length = 0;
    const answer = await post(poster);
    assert.equal(answer.status, 200);
    assert.deepEqual(hosts, [`hook.test:${port}`]);
  });

  it('over https the TLS server name stays the host name, not the vetted address', async (t) => {
    const names: string[] = [];
    const tls = createTlsServer({
      SNICallback: (name, callback) => {
        names.push(name);
        callback(new Error('the test ends the handshake here'));
      },
    });
    tls.on('tlsClientError', () => {});
    await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => tls.close(() => resolve())));
    const { policy } = policyFor({}, { 'secure.test': ['127.0.0.1'] });
    const poster = new HttpPoster(`https://secure.test:${(tls.address() as AddressInfo).port}/`, 1, policy);
    t.after(() => poster.close());
    await assert.rejects(post(poster));
    assert.deepEqual(names, ['secure.test']);
  });
});
