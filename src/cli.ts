#!/usr/bin/env node
/**
 * Process entry: `pubsub serve [flags]` runs the server until SIGTERM/SIGINT. Flags come from
 * the option table in config-options.ts (cli/serve-options.ts turns rows into flags; a boolean is
 * a switch: `--flag`, `--no-flag` or `--flag true|false`), so every option has a flag, an
 * environment variable and a config-file key. Prints one line per listener once listening, the account id, on the first
 * start the bootstrap admin API token (or, when stdout is not a terminal, only its file), and
 * with TLS one line naming the certificate and its SHA-256 fingerprint. SIGHUP re-reads the TLS
 * certificate files (connections are kept; a failed reload keeps the old certificate and is
 * logged). Exit codes: 0 after a clean shutdown, 1 on a start-up failure (bad config, port in
 * use, data directory held by another server), 2 on bad usage.
 * Later starts name the token's file while it is the only API token (src/cli/token-banner.ts).
 *
 * The management verbs (`namespace`, `broker`, `token`, `account`) are in src/cli/; they only
 * talk to the admin API, so the server's modules are imported when `serve` runs, not before.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Command, CommanderError } from 'commander';
import { addManagementCommands } from './cli/index.ts';
import { addServeOptions } from './cli/serve-options.ts';
import { bootstrapTokenReminder, tokenBanner } from './cli/token-banner.ts';
import { ConfigError, loadConfig } from './config.ts';
import type { ServedCertificate } from './transport/tls-setup.ts';

const FORCE_EXIT_MS = 5000;

function certificateBanner(cert: ServedCertificate): string {
  const kind = cert.selfSigned ? ` (self-signed, ${cert.generated ? 'generated' : 'reused'})` : '';
  const lines = [
    `pubsub: TLS certificate ${cert.certFile}${kind} SHA-256 fingerprint ${cert.fingerprint256}`,
  ];
  if (cert.selfSigned)
    lines.push(`pubsub: Chromium trusts it with --ignore-certificate-errors-spki-list=${cert.spkiSha256}`);
  return lines.join('\n');
}

/**
 * Gives back the memory that start-up garbage holds, once. Loading and compiling the modules
 * grows V8's young generation to 32 MB (two 16 MiB semi-spaces), and no scavenge shrinks it
 * while the server idles, so an idle server would hold ~30 MB it no longer needs. V8's
 * "last resort" collection (what a low-memory notification runs) shrinks the young generation
 * and compacts the old one; under load the young generation grows back as the allocation rate
 * asks. The `gc` function exists only in a throwaway context made while the flag is on.
 */
function releaseStartupGarbage(): void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as (options: object) => void;
  setFlagsFromString('--no-expose-gc');
  gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}

async function serve(flags: Record<string, unknown>): Promise<void> {
  const { config: file, ...rest } = flags;
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig({ file: file as string | undefined, flags: rest, env: process.env });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`pubsub: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const [{ createLogger }, { Server }] = await Promise.all([
    import('./observability/index.ts'),
    import('./server.ts'),
  ]);
  const processLogger = createLogger(config.logLevel);
  let server: InstanceType<typeof Server>;
  try {
    server = new Server(config, { logger: processLogger });
  } catch (err) {
    process.stderr.write(`pubsub: cannot start: ${(err as Error).message}\n`);
    process.exit(1);
  }
  const logger = server.logger; // its lines carry the node's name
  try {
    await server.start();
  } catch (err) {
    process.stderr.write(`pubsub: cannot start: ${(err as Error).message}\n`);
    await server.close();
    process.exit(1);
  }

  process.on('SIGHUP', () => {
    if (!server.tlsCertificate) {
      logger.info({ signal: 'SIGHUP' }, 'nothing to reload: TLS is not configured');
      return;
    }
    try {
      const cert = server.reloadTls();
      logger.info(
        { signal: 'SIGHUP', certFile: cert.certFile, fingerprint256: cert.fingerprint256 },
        'TLS certificate reloaded',
      );
      process.stdout.write(`${certificateBanner(cert)}\n`);
    } catch (err) {
      logger.error({ signal: 'SIGHUP', err }, 'TLS reload failed; the previous certificate stays in service');
    }
  });

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    setTimeout(() => process.exit(0), FORCE_EXIT_MS).unref();
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'error during shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  releaseStartupGarbage();
  // Last, once every signal is handled: a supervisor may signal as soon as it reads these lines.
  // One write, so that a reader of a pipe gets the whole banner at once, in order.
  const lines = server.listeners.map((l) => `pubsub: ${l.name} listening on ${l.url}`);
  if (server.tlsCertificate) lines.push(certificateBanner(server.tlsCertificate));
  if (server.apiUrl !== undefined) lines.push(`pubsub: admin API listening on ${server.apiUrl}`);
  if (server.apiUrl !== undefined) lines.push(`pubsub: web console on ${server.apiUrl}/`);
  lines.push(`pubsub: account id ${server.bootstrap.account.id}`);
  const token = server.bootstrap.adminToken;
  if (token !== undefined) lines.push(tokenBanner(config, token, process.stdout.isTTY === true));
  else if (server.bootstrapTokenFile !== undefined)
    lines.push(bootstrapTokenReminder(server.bootstrapTokenFile));
  process.stdout.write(`${lines.join('\n')}\n`);
}

const program = new Command('pubsub').description('Multi-tenant MQTT 3.1.1/5.0 pub/sub service');
// Before any .command(): subcommands inherit it. Usage errors then exit 2 (below), not commander's 1.
program.exitOverride();
const serveCommand = program
  .command('serve')
  .description('run the broker (MQTT listeners)')
  .option('--config <file>', 'JSON config file (keys as in docs/configuration.md)')
  .addHelpText(
    'after',
    '\nA switch ([true|false], [auto|true|false]) given alone means true; --no-<flag> means false.',
  );
const flagsOf = addServeOptions(serveCommand);
serveCommand.action((opts: Record<string, unknown>) => serve(flagsOf(opts)));

addManagementCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (!(err instanceof CommanderError)) throw err;
  // Commander has printed the message or the help; exit code 0 is help or version asked for.
  process.exitCode = err.exitCode === 0 ? 0 : 2;
}
