import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ConfigError, isSwitch, loadConfig, OPTIONS, type OptionKey } from '../src/config.ts';
import { BEGIN_MARKER, CONFIGURATION_DOC, END_MARKER, withOptionReference } from '../src/config-doc.ts';

describe('configuration', () => {
  it('docs/configuration.md carries the option reference generated from the table (npm run docs:config)', () => {
    const doc = readFileSync(CONFIGURATION_DOC, 'utf8');
    assert.equal(
      withOptionReference(doc),
      doc,
      'docs/configuration.md and src/config-options.ts drifted: run `npm run docs:config`',
    );
    for (const [key, def] of Object.entries(OPTIONS)) {
      const row = doc.split('\n').find((line) => line.startsWith(`| \`${def.flag}\``));
      assert.ok(row?.includes(`| \`${def.env}\` | \`${key}\` |`), `a row for ${def.flag}`);
    }
  });

  it('regenerating the reference replaces only the text between its markers', () => {
    const page = `# Title\n\nprose before\n\n${BEGIN_MARKER}\nstale rows\n${END_MARKER}\n\nprose after\n`;
    const next = withOptionReference(page);
    assert.ok(next.startsWith('# Title\n\nprose before\n\n'));
    assert.ok(next.endsWith(`${END_MARKER}\n\nprose after\n`));
    assert.ok(!next.includes('stale rows'));
    assert.ok(next.includes('| `--tls-self-signed`, `--no-tls-self-signed` | `PUBSUB_TLS_SELF_SIGNED` |'));
    assert.equal(withOptionReference(next), next);
    assert.throws(() => withOptionReference('# no markers\n'), /OPTION REFERENCE/);
  });

  it('a boolean takes true/false words, yes/no and 1/0 from any source, and a JSON boolean from a file', () => {
    for (const [word, value] of [
      ['true', true],
      ['yes', true],
      ['1', true],
      ['false', false],
      ['no', false],
      ['0', false],
    ] as const) {
      assert.equal(loadConfig({ flags: { tcpNoDelay: word } }).tcpNoDelay, value, `flag ${word}`);
      assert.equal(loadConfig({ env: { PUBSUB_TCP_NODELAY: word } }).tcpNoDelay, value, `env ${word}`);
    }
    assert.equal(loadConfig({ flags: { tlsSelfSigned: true } }).tlsSelfSigned, true);
    assert.equal(loadConfig({ flags: { tcpNoDelay: false } }).tcpNoDelay, false);
  });

  it('a tri-state switch (auto|true|false) takes its words, or a boolean as true/false', () => {
    assert.equal(loadConfig({}).allowAnonymous, 'auto');
    assert.equal(loadConfig({ flags: { allowAnonymous: true } }).allowAnonymous, 'true');
    assert.equal(loadConfig({ flags: { allowAnonymous: false } }).allowAnonymous, 'false');
    assert.equal(loadConfig({ flags: { hookAllowLoopback: 'auto' } }).hookAllowLoopback, 'auto');
    assert.equal(loadConfig({ flags: { hookAllowLoopback: true } }).hookAllowLoopback, 'true');
    assert.throws(
      () => loadConfig({ flags: { allowAnonymous: 'maybe' } }),
      /allowAnonymous must be one of auto, true, false/,
    );
    // Only switches: a boolean for any other string option is still refused.
    assert.throws(() => loadConfig({ flags: { logLevel: true } }), /logLevel must be a string/);
  });

  it('the switches are the booleans and the auto|true|false options, and nothing else', () => {
    const switches = (Object.keys(OPTIONS) as OptionKey[]).filter((k) => isSwitch(OPTIONS[k]));
    const expected = (Object.keys(OPTIONS) as OptionKey[]).filter(
      (k) => OPTIONS[k].kind === 'bool' || k === 'allowAnonymous' || k === 'hookAllowLoopback',
    );
    assert.deepEqual(switches, expected);
  });

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
