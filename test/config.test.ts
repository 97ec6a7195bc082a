import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig, OPTIONS, type OptionKey } from '../src/config.ts';

describe('configuration', () => {
  for (const file of ['docs/configuration.md', 'README.md']) {
    it(`${file} documents every option with its flag, variable, key and default`, () => {
      const doc = readFileSync(new URL(`../${file}`, import.meta.url), 'utf8');
      for (const [key, def] of Object.entries(OPTIONS)) {
        const row = doc.split('\n').find((line) => line.startsWith(`| \`${def.flag}\` |`));
        assert.ok(row, `no row for ${def.flag}`);
        assert.ok(row.includes(`\`${def.env}\``), `${def.flag}: env ${def.env}`);
        assert.ok(row.includes(`\`${key}\``), `${def.flag}: key ${key}`);
        assert.ok(row.includes(`\`${def.default}\``), `${def.flag}: default ${def.default}`);
      }
    });
  }

  it('flags override the environment, which overrides the defaults', () => {
    const config = loadConfig({
      env: { PUBSUB_PORT: '1999', PUBSUB_HOST: '0.0.0.0' },
      flags: { port: '2000' },
    });
    assert.equal(config.port, 2000);
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.maximumQoS, 2);
  });

  it('out-of-range and mistyped values are refused with the option named', () => {
    assert.throws(
      () => loadConfig({ flags: { port: '70000' } }),
      (e: Error) => e instanceof ConfigError && /port/.test(e.message),
    );
    assert.throws(() => loadConfig({ env: { PUBSUB_MAX_QOS: 'two' } }), /maximumQoS must be an integer/);
    assert.throws(() => loadConfig({ flags: { logLevel: 'loud' } }), /logLevel must be one of/);
    assert.throws(
      () => loadConfig({ flags: { retainAvailable: 'maybe' } }),
      /retainAvailable must be true or false/,
    );
  });

  it('a tlsCiphers list OpenSSL cannot use, or an empty one, is refused at start', () => {
    assert.throws(
      () => loadConfig({ flags: { tlsCiphers: 'NO-SUCH-CIPHER' } }),
      (e: Error) =>
        e instanceof ConfigError && /tlsCiphers is not a usable OpenSSL cipher list/.test(e.message),
    );
    assert.throws(() => loadConfig({ flags: { tlsCiphers: ' ' } }), /tlsCiphers must name at least one/);
    assert.equal(
      loadConfig({ flags: { tlsCiphers: 'ECDHE-ECDSA-AES128-SHA' } }).tlsCiphers,
      'ECDHE-ECDSA-AES128-SHA',
    );
  });

  it('every option has a distinct flag and environment variable', () => {
    const keys = Object.keys(OPTIONS) as OptionKey[];
    assert.equal(new Set(keys.map((k) => OPTIONS[k].flag)).size, keys.length);
    assert.equal(new Set(keys.map((k) => OPTIONS[k].env)).size, keys.length);
  });
});
