/**
 * Where the bootstrap admin token is printed: on a terminal and with `:memory:` only; a pipe and
 * `--quiet-token` get the file's path. (test/tenancy/restart.test.ts checks the pipe case on a
 * real `pubsub serve`.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tokenBanner } from '../../src/cli/token-banner.ts';
import { ConfigError, configWith } from '../../src/config.ts';

const SECRET = 'pubsub_secret';

describe('bootstrap admin token banner', () => {
  it('a terminal sees the secret and the file', () => {
    const line = tokenBanner({ dataDir: 'data', quietToken: false }, SECRET, true);
    assert.equal(
      line,
      `pubsub: admin API token, shown once (also in data/admin-token, mode 0600): ${SECRET}`,
    );
  });
  it('a pipe sees only the file', () => {
    const line = tokenBanner({ dataDir: 'data', quietToken: false }, SECRET, false);
    assert.equal(line, 'pubsub: admin API token written to data/admin-token (mode 0600)');
  });
  it('--quiet-token hides the secret from a terminal too', () => {
    const line = tokenBanner({ dataDir: 'data', quietToken: true }, SECRET, true);
    assert.ok(!line.includes(SECRET));
  });
  it('with :memory: the banner is the only copy, so it is printed; --quiet-token is refused there', () => {
    assert.ok(tokenBanner({ dataDir: ':memory:', quietToken: false }, SECRET, false).endsWith(SECRET));
    assert.throws(() => configWith({ dataDir: ':memory:', quietToken: true }), ConfigError);
  });
});
