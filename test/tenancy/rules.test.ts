/**
 * Tenancy rules without sockets: DNS-label names, host-name routing, the anonymous default,
 * and the store's refusal of a damaged or newer database file.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { configWith } from '../../src/config.ts';
import { silentLogger } from '../../src/observability/index.ts';
import { MIGRATIONS, openDatabase, StoreError, tenancyStores } from '../../src/store/index.ts';
import { brokerAddressOf, canonicalName, nameProblem, Tenancy } from '../../src/tenancy/index.ts';

describe('names are DNS labels (RFC 1035), case-insensitive', () => {
  for (const good of ['a', 'my-namespace', 'Example-Broker', 'b1', `a${'b'.repeat(62)}`])
    it(`${JSON.stringify(good)} is accepted as ${JSON.stringify(good.toLowerCase())}`, () => {
      assert.equal(canonicalName(good), good.toLowerCase());
    });
  for (const [bad, why] of [
    ['', /required/],
    ['1abc', /start with a letter/],
    ['-abc', /start with a letter/],
    ['abc-', /end with a hyphen/],
    ['a_b', /letters, digits and hyphens/],
    ['a.b', /letters, digits and hyphens/],
    [`a${'b'.repeat(63)}`, /longer than 63/],
  ] as const)
    it(`${JSON.stringify(bad)} is refused: ${why.source}`, () => {
      assert.equal(canonicalName(bad), undefined);
      assert.match(nameProblem(bad), why);
    });
  it('a non-string is refused', () => {
    assert.equal(canonicalName(42), undefined);
  });
});

describe('host names route to brokers', () => {
  it('<broker>.<namespace>.<domain> names a broker, case- and trailing-dot-insensitive', () => {
    assert.deepEqual(brokerAddressOf('alpha.iso.localhost', 'localhost'), {
      broker: 'alpha',
      namespace: 'iso',
    });
    assert.deepEqual(brokerAddressOf('Alpha.ISO.example.com.', 'example.com'), {
      broker: 'alpha',
      namespace: 'iso',
    });
  });
  it('the bare domain, one label, three labels, another domain or an address name none', () => {
    for (const host of [
      'localhost',
      'iso.localhost',
      'a.b.c.localhost',
      'alpha.iso.example.org',
      '127.0.0.1',
      undefined,
    ])
      assert.equal(brokerAddressOf(host, 'localhost'), undefined, String(host));
  });
});

describe('anonymous access default', () => {
  const tenancyFor = (host: string, allowAnonymous = 'auto') => {
    const db = openDatabase(':memory:');
    return new Tenancy(
      tenancyStores(db),
      configWith({ host, allowAnonymous, dataDir: ':memory:' }),
      silentLogger(),
    );
  };
  it('auto: on for loopback binds, off for wider ones', () => {
    assert.equal(tenancyFor('127.0.0.1').anonymousAllowed, true);
    assert.equal(tenancyFor('::1').anonymousAllowed, true);
    assert.equal(tenancyFor('0.0.0.0').anonymousAllowed, false);
    assert.equal(tenancyFor('192.168.1.10').anonymousAllowed, false);
  });
  it('auto: off behind a proxy (--proxy-protocol, --ws-trust-proxy) even on a loopback bind', () => {
    for (const proxy of [{ proxyProtocol: true }, { wsTrustProxy: true }]) {
      const db = openDatabase(':memory:');
      const tenancy = new Tenancy(
        tenancyStores(db),
        configWith({ host: '127.0.0.1', dataDir: ':memory:', ...proxy }),
        silentLogger(),
      );
      assert.equal(tenancy.anonymousAllowed, false, JSON.stringify(proxy));
      tenancy.close();
    }
  });
  it('true and false are explicit', () => {
    assert.equal(tenancyFor('0.0.0.0', 'true').anonymousAllowed, true);
    assert.equal(tenancyFor('127.0.0.1', 'false').anonymousAllowed, false);
  });
});

describe('the database file', () => {
  it('a file that is not a database is reported with its path and left untouched', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pubsub-store-'));
    try {
      const file = join(dir, 'pubsub.db');
      writeFileSync(
        file,
        'this is not sqlite, just some text that is long enough to be a header '.repeat(20),
      );
      assert.throws(
        () => openDatabase(dir),
        (err: Error) =>
          err instanceof StoreError && err.message.includes(file) && /restore a backup/.test(err.message),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a database from a newer server is refused, not downgraded', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pubsub-store-'));
    try {
      openDatabase(dir).close();
      const newer = [...MIGRATIONS, 'CREATE TABLE future (x)'];
      openDatabase(dir, newer).close();
      assert.throws(() => openDatabase(dir), /newer than this server knows/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('bootstrap runs once: a second start keeps the account and prints no new token', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pubsub-store-'));
    try {
      const config = configWith({ dataDir: dir });
      const db1 = openDatabase(dir);
      const first = new Tenancy(tenancyStores(db1), config, silentLogger()).bootstrap();
      db1.close();
      const db2 = openDatabase(dir);
      const second = new Tenancy(tenancyStores(db2), config, silentLogger()).bootstrap();
      db2.close();
      assert.ok(first.adminToken);
      assert.equal(second.adminToken, undefined);
      assert.equal(second.account.id, first.account.id);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
