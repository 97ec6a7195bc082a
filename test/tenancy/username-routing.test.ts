/**
 * Naming a broker by the MQTT user name, without sockets: the shape rule, its place after the
 * host name and the token's audience, and that the named broker's own authType still decides
 * (a user name never lets another broker's credentials in).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { configWith } from '../../src/config.ts';
import { silentLogger } from '../../src/observability/index.ts';
import { openDatabase, tenancyStores } from '../../src/store/index.ts';
import { type Admission, brokerAddressOfUsername, Tenancy } from '../../src/tenancy/index.ts';

describe('the user-name shape: <broker>.<namespace>, or <anything>@<broker>.<namespace>', () => {
  for (const [username, broker, namespace] of [
    ['devices.home', 'devices', 'home'],
    ['sensor-1@devices.home', 'devices', 'home'],
    ['a@b@devices.home', 'devices', 'home'],
    ['first.last@devices.home', 'devices', 'home'],
    ['Devices.HOME', 'devices', 'home'],
  ] as const)
    it(`${JSON.stringify(username)} names ${broker}.${namespace}`, () => {
      assert.deepEqual(brokerAddressOfUsername(username), { broker, namespace });
    });
  for (const username of [
    undefined,
    '',
    'alice',
    '@',
    'alice@',
    'a.b.c',
    'me@mail.example.com',
    'devices.',
    '.home',
    'dev_ices.home',
    '1st.home',
    'devices.home@',
  ])
    it(`${JSON.stringify(username)} has not the shape`, () => {
      assert.equal(brokerAddressOfUsername(username), undefined);
    });
});

describe('CONNECT routing by user name', () => {
  let tenancy: Tenancy;
  let accountId: string;
  /** A token of broker `tok.other`, and one of `locked.home`. */
  let otherToken: string;
  let lockedToken: string;

  const admit = (username: string | undefined, extra: { host?: string; password?: string } = {}) =>
    tenancy.admit(
      { host: extra.host, remoteAddress: '127.0.0.1' },
      {
        clientId: '',
        username,
        password: extra.password === undefined ? undefined : Buffer.from(extra.password),
      },
    );
  /** `<broker>.<namespace>` of the admitted tenant, or `refused <code>`. */
  const where = (a: Admission): string =>
    'refuse' in a ? `refused ${a.refuse}` : `${a.tenant.record.name}.${a.tenant.record.namespaceName}`;

  before(async () => {
    tenancy = new Tenancy(
      tenancyStores(openDatabase(':memory:')),
      configWith({ host: '127.0.0.1', dataDir: ':memory:' }),
      silentLogger(),
    );
    accountId = tenancy.bootstrap().account.id;
    tenancy.createNamespace(accountId, { name: 'home' });
    tenancy.createNamespace(accountId, { name: 'other' });
    tenancy.createNamespace(accountId, { name: 'empty' });
    tenancy.createBroker(accountId, 'home', { name: 'devices', authType: 'NONE' });
    tenancy.createBroker(accountId, 'home', { name: 'locked', authType: 'TOKEN' });
    tenancy.createBroker(accountId, 'other', { name: 'devices', authType: 'NONE' });
    tenancy.createBroker(accountId, 'other', { name: 'tok', authType: 'TOKEN' });
    const issue = { number: 1, clientIds: ['c1'], expiration: undefined, topicAcl: ['#'] };
    otherToken = (await tenancy.issueCredentials(accountId, 'other', 'tok', issue)).c1!;
    lockedToken = (await tenancy.issueCredentials(accountId, 'home', 'locked', issue)).c1!;
  });
  after(() => tenancy.close());

  it('names the broker, in either form and any case', () => {
    assert.equal(where(admit('devices.home')), 'devices.home');
    assert.equal(where(admit('sensor-1@devices.other')), 'devices.other');
    assert.equal(where(admit('Devices.Other')), 'devices.other');
  });

  it('an ordinary user name (no namespace of this server after the dot) goes to the default broker', () => {
    for (const username of [undefined, '', 'alice', 'john.doe', 'me@example.com', 'a.b.c', 'x.empty'])
      assert.equal(where(admit(username)), 'default.local', String(username));
  });

  it('a missing broker in an existing namespace is refused like an unknown host (0x87)', () => {
    assert.equal(where(admit('nosuch.home')), 'refused NOT_AUTHORIZED');
    assert.equal(where(admit('me@nosuch.home')), 'refused NOT_AUTHORIZED');
    assert.equal(where(admit(undefined, { host: 'nosuch.home.localhost' })), 'refused NOT_AUTHORIZED');
  });

  it('the host name comes first: it wins over the user name, and its refusal stands', () => {
    assert.equal(where(admit('devices.home', { host: 'devices.other.localhost' })), 'devices.other');
    assert.equal(where(admit('devices.home', { host: 'nosuch.other.localhost' })), 'refused NOT_AUTHORIZED');
    // A host name that names no broker (an address, the bare domain) leaves the user name to decide.
    assert.equal(where(admit('devices.home', { host: '127.0.0.1' })), 'devices.home');
  });

  it("the token's audience comes before the user name: a token opens only its own broker", () => {
    const a = admit('locked.home', { password: otherToken });
    assert.equal(where(a), 'tok.other');
    assert.equal(where(admit('devices.home', { password: lockedToken })), 'locked.home');
  });

  it("the named broker's authType decides: a TOKEN broker named by user name wants its own token", () => {
    assert.equal(where(admit('locked.home')), 'refused BAD_CREDENTIALS');
    assert.equal(where(admit('locked.home', { password: 'not a token' })), 'refused BAD_CREDENTIALS');
    // Another broker's token at locked.home, named by the host: refused as before.
    assert.equal(
      where(admit('locked.home', { host: 'locked.home.localhost', password: otherToken })),
      'refused BAD_CREDENTIALS',
    );
  });

  it('a namespace counts while it has brokers: deleting its last broker makes the name ordinary', () => {
    tenancy.createNamespace(accountId, { name: 'brief' });
    tenancy.createBroker(accountId, 'brief', { name: 'only', authType: 'NONE' });
    assert.equal(where(admit('only.brief')), 'only.brief');
    assert.equal(where(admit('gone.brief')), 'refused NOT_AUTHORIZED');
    tenancy.deleteBroker(accountId, 'brief', 'only');
    assert.equal(where(admit('only.brief')), 'default.local');
  });
});

describe('anonymous access switched off', () => {
  it('a NONE broker named by user name is refused like one named by host', () => {
    const tenancy = new Tenancy(
      tenancyStores(openDatabase(':memory:')),
      configWith({ host: '127.0.0.1', dataDir: ':memory:', allowAnonymous: 'false' }),
      silentLogger(),
    );
    const { account } = tenancy.bootstrap();
    tenancy.createNamespace(account.id, { name: 'home' });
    tenancy.createBroker(account.id, 'home', { name: 'devices', authType: 'NONE' });
    const a = tenancy.admit({ remoteAddress: '127.0.0.1' }, { clientId: 'c', username: 'devices.home' });
    assert.ok('refuse' in a && a.refuse === 'NOT_AUTHORIZED' && /anonymous/.test(a.detail));
    tenancy.close();
  });
});
