/**
 * `pubsub serve`'s flags, parsed by commander exactly as the CLI registers them and loaded like
 * the CLI loads them: every boolean option is a switch (bare, `--no-`, `true|false`), the
 * tri-state ones keep their words, value options still need a value, and a flag not given
 * leaves the environment in force.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Command, CommanderError } from 'commander';
import { addServeOptions, flagUsage, negatedFlag } from '../../src/cli/serve-options.ts';
import { type Config, isSwitch, loadConfig, OPTIONS, type OptionKey } from '../../src/config.ts';

/** The configuration `pubsub serve ...args` would run with (environment `env`). */
function configFor(args: string[], env: NodeJS.ProcessEnv = {}): Config {
  const command = new Command('serve').exitOverride().configureOutput({ writeErr: () => {} });
  const flagsOf = addServeOptions(command);
  let flags: Record<string, unknown> = {};
  command.action((opts: Record<string, unknown>) => {
    flags = flagsOf(opts);
  });
  command.parse(args, { from: 'user' });
  return loadConfig({ flags, env });
}

const keys = Object.keys(OPTIONS) as OptionKey[];
const booleans = keys.filter((k) => OPTIONS[k].kind === 'bool');

describe('pubsub serve flags', () => {
  it('covers the boolean options (a table without them would make the loop below vacuous)', () => {
    assert.ok(booleans.includes('tlsSelfSigned') && booleans.includes('tcpNoDelay'));
    assert.ok(booleans.length >= 10, `${booleans.length} booleans`);
  });

  for (const key of booleans) {
    const def = OPTIONS[key];
    it(`${def.flag}: bare is true, ${negatedFlag(def)} false, ${def.flag} true|false either`, () => {
      // Followed by another flag, as a user types it: the bare switch must not swallow it.
      assert.equal(configFor([def.flag, '--port', '0'])[key], true);
      assert.equal(configFor([negatedFlag(def), '--port', '0'])[key], false);
      assert.equal(configFor([def.flag, 'false'])[key], false);
      assert.equal(configFor([def.flag, 'true'])[key], true);
      assert.equal(configFor([def.flag, 'no'])[key], false);
      // Not given: the environment decides, then the default.
      assert.equal(configFor([], { [def.env]: String(!def.default) })[key], !def.default);
      assert.equal(configFor([])[key], def.default);
      assert.throws(() => configFor([def.flag, 'maybe']), new RegExp(`${key} must be true or false`));
    });
  }

  for (const key of ['allowAnonymous', 'hookAllowLoopback'] as const) {
    const def = OPTIONS[key];
    it(`${def.flag} (auto|true|false): bare is true, ${negatedFlag(def)} false, the words as given`, () => {
      assert.equal(configFor([def.flag, '--port', '0'])[key], 'true');
      assert.equal(configFor([negatedFlag(def)])[key], 'false');
      for (const word of ['auto', 'true', 'false']) assert.equal(configFor([def.flag, word])[key], word);
      assert.equal(configFor([], { [def.env]: 'false' })[key], 'false');
      assert.equal(configFor([])[key], 'auto');
    });
  }

  it('the flag wins over the environment in both directions', () => {
    assert.equal(configFor(['--no-tcp-nodelay'], { PUBSUB_TCP_NODELAY: 'true' }).tcpNoDelay, false);
    assert.equal(configFor(['--retain'], { PUBSUB_RETAIN: 'false' }).retainAvailable, true);
  });

  it('the last of --flag and --no-flag wins', () => {
    assert.equal(configFor(['--no-tcp-nodelay', '--tcp-nodelay']).tcpNoDelay, true);
    assert.equal(configFor(['--tcp-nodelay', '--no-tcp-nodelay']).tcpNoDelay, false);
  });

  it('value options still need their value, and have no --no- form', () => {
    assert.throws(
      () => configFor(['--port']),
      (e: unknown) => e instanceof CommanderError && e.code === 'commander.optionMissingArgument',
    );
    assert.throws(
      () => configFor(['--no-port']),
      (e: unknown) => e instanceof CommanderError && e.code === 'commander.unknownOption',
    );
  });

  it('help names each switch with its words and its --no- form', () => {
    const command = new Command('serve');
    addServeOptions(command);
    const help = command.helpInformation();
    for (const key of keys) {
      const def = OPTIONS[key];
      assert.ok(help.includes(flagUsage(def)), flagUsage(def));
      assert.equal(help.includes(`${negatedFlag(def)}: false`), isSwitch(def), def.flag);
    }
    assert.ok(help.includes('--tls-self-signed [true|false]'));
    assert.ok(help.includes('--allow-anonymous [auto|true|false]'));
    assert.ok(help.includes('--port <value>'));
  });
});
