/**
 * Loads the server's configuration from the option table (config-options.ts). Precedence, lowest
 * first: defaults < config file (JSON, same keys) < environment (PUBSUB_*) < command-line flags.
 * `loadConfig` validates and clamps each value once at start-up; the rest of the code reads the
 * resulting frozen object and never re-checks. The table and its types are re-exported here, so
 * the rest of src imports configuration from this module only.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { createSecureContext } from 'node:tls';
import { parseCidrList } from './cidr-list.ts';
import { OPTIONS, type OptionDef, type OptionKey } from './config-options.ts';
import { parseHumanDuration } from './duration.ts';
import { isNodeName } from './store/node-name.ts';

export { OPTIONS, type OptionDef, type OptionKey };

/**
 * Whether an option is a switch on the command line: `--flag` sets it, `--no-flag` clears it,
 * `--flag true|false` says which. Booleans are; so are tri-state strings (e.g. auto|true|false),
 * whose bare flag means `true`.
 */
export function isSwitch(def: OptionDef): boolean {
  return def.kind === 'bool' || (def.choices?.includes('true') === true && def.choices.includes('false'));
}
type ValueOf<K extends OptionKey> = (typeof OPTIONS)[K]['kind'] extends 'int'
  ? number
  : (typeof OPTIONS)[K]['kind'] extends 'bool'
    ? boolean
    : string;
export type Config = { readonly [K in OptionKey]: ValueOf<K> };

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function coerce(key: OptionKey, raw: unknown, source: string): string | number | boolean {
  const def: OptionDef = OPTIONS[key];
  if (def.kind === 'bool') {
    if (typeof raw === 'boolean') return raw;
    if (raw === 'true' || raw === '1' || raw === 'yes') return true;
    if (raw === 'false' || raw === '0' || raw === 'no') return false;
    throw new ConfigError(`${source}: ${key} must be true or false, got ${JSON.stringify(raw)}`);
  }
  if (def.kind === 'int') {
    const n =
      typeof raw === 'number'
        ? raw
        : typeof raw === 'string' && /^-?\d+$/.test(raw.trim())
          ? Number(raw)
          : NaN;
    if (!Number.isSafeInteger(n))
      throw new ConfigError(`${source}: ${key} must be an integer, got ${JSON.stringify(raw)}`);
    if ((def.min !== undefined && n < def.min) || (def.max !== undefined && n > def.max)) {
      throw new ConfigError(`${source}: ${key} must be between ${def.min} and ${def.max}, got ${n}`);
    }
    return n;
  }
  // A tri-state switch (auto|true|false) takes a JSON boolean or a bare flag's true as its word.
  const text = typeof raw === 'boolean' && isSwitch(def) ? String(raw) : raw;
  if (typeof text !== 'string') throw new ConfigError(`${source}: ${key} must be a string`);
  if (def.choices && !def.choices.includes(text)) {
    throw new ConfigError(
      `${source}: ${key} must be one of ${def.choices.join(', ')}, got ${JSON.stringify(text)}`,
    );
  }
  return text;
}

export interface ConfigSources {
  /** Path of a JSON config file. */
  file?: string | undefined;
  /** Values from command-line flags, by option key. */
  flags?: Partial<Record<OptionKey, unknown>>;
  env?: NodeJS.ProcessEnv;
}

/** Builds the validated configuration from defaults, file, environment and flags. */
export function loadConfig(sources: ConfigSources = {}): Config {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(OPTIONS) as OptionKey[]) out[key] = OPTIONS[key].default;
  if (sources.file) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(sources.file, 'utf8'));
    } catch (err) {
      throw new ConfigError(`config file ${sources.file}: ${(err as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new ConfigError(`config file ${sources.file}: expected a JSON object`);
    }
    for (const [key, value] of Object.entries(parsed)) {
      if (!(key in OPTIONS)) throw new ConfigError(`config file ${sources.file}: unknown option ${key}`);
      out[key] = coerce(key as OptionKey, value, sources.file);
    }
  }
  const env = sources.env ?? {};
  for (const key of Object.keys(OPTIONS) as OptionKey[]) {
    const v = env[OPTIONS[key].env];
    if (v !== undefined && v !== '') out[key] = coerce(key, v, OPTIONS[key].env);
  }
  for (const [key, value] of Object.entries(sources.flags ?? {})) {
    if (value !== undefined) out[key] = coerce(key as OptionKey, value, OPTIONS[key as OptionKey].flag);
  }
  // The pre-CONNECT limit is a tighter bound within the packet limit, never a wider one: clamped
  // here once, so its readers (the parser, the WebSocket listener) take it as it is.
  out.maxConnectPacketSize = Math.min(out.maxConnectPacketSize as number, out.maximumPacketSize as number);
  checkCombinations(out as Config);
  return Object.freeze(out) as Config;
}

/**
 * True when nothing but this machine reaches the server: it binds loopback ('localhost',
 * 127.0.0.0/8, ::1) and no proxy setting (`proxyProtocol`, `wsTrustProxy`) says a proxy on this
 * machine publishes it to others. The `auto` of allowAnonymous and hookAllowLoopback follows it:
 * local development gets anonymous clients and webhooks to localhost, a published server not.
 */
export function servesOnlyThisMachine(c: Pick<Config, 'host' | 'proxyProtocol' | 'wsTrustProxy'>): boolean {
  const host = c.host.toLowerCase();
  const loopback = host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
  return loopback && !c.proxyProtocol && !c.wsTrustProxy;
}

/** Rules between options, checked once every source is applied. */
function checkCombinations(c: Config): void {
  if (c.nodeName !== '' && !isNodeName(c.nodeName))
    throw new ConfigError(
      `nodeName ${JSON.stringify(c.nodeName)}: 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  for (const url of c.cluster === '' ? [] : c.cluster.split(','))
    if (!/^(nats|tls):\/\/[^\s/,]+$/.test(url.trim()))
      throw new ConfigError(
        `cluster: ${JSON.stringify(url.slice(0, 80))} is not a NATS server URL (nats://host:port or tls://host:port)`,
      );
  if (c.cluster === '' && (c.clusterCreds !== '' || c.clusterTlsCa !== ''))
    throw new ConfigError('clusterCreds and clusterTlsCa configure the link to --cluster: set cluster too');
  if (c.quietToken && c.dataDir === ':memory:')
    throw new ConfigError(
      'quietToken with dataDir :memory: would leave the bootstrap admin token nowhere: drop one of them',
    );
  if ((c.tlsCert === '') !== (c.tlsKey === ''))
    throw new ConfigError('tlsCert and tlsKey go together: give both files or neither');
  if (c.tlsSelfSigned && c.tlsCert !== '')
    throw new ConfigError('tlsSelfSigned generates its own certificate: drop it or drop tlsCert/tlsKey');
  const tls = c.tlsCert !== '' || c.tlsSelfSigned;
  if (c.tlsClientAuth !== 'none' && !tls)
    throw new ConfigError(`tlsClientAuth ${c.tlsClientAuth} needs TLS: set tlsCert/tlsKey or tlsSelfSigned`);
  if (c.tlsClientAuth !== 'none' && c.tlsCa === '')
    throw new ConfigError(
      `tlsClientAuth ${c.tlsClientAuth} needs tlsCa, the CA that client certificates chain to`,
    );
  for (const key of ['hookAllowCidrs', 'apiTrustProxy'] as const)
    try {
      parseCidrList(c[key]);
    } catch (err) {
      throw new ConfigError(`${key}: ${(err as Error).message}`);
    }
  if (c.tlsCiphers.trim() === '') throw new ConfigError('tlsCiphers must name at least one cipher suite');
  try {
    createSecureContext({ ciphers: c.tlsCiphers, minVersion: 'TLSv1.2' });
  } catch (err) {
    throw new ConfigError(`tlsCiphers is not a usable OpenSSL cipher list: ${(err as Error).message}`);
  }
  try {
    auditRetentionMs(c);
  } catch (err) {
    throw new ConfigError(`auditRetention: ${(err as Error).message}`);
  }
  if (c.mtlsClientIdPattern !== '') {
    try {
      new RegExp(c.mtlsClientIdPattern, 'u');
    } catch (err) {
      throw new ConfigError(`mtlsClientIdPattern is not a regular expression: ${(err as Error).message}`);
    }
  }
}

/** The audit log's retention in milliseconds; throws when `auditRetention` is not a duration of 1 s or more. */
export function auditRetentionMs(c: Pick<Config, 'auditRetention'>): number {
  const seconds = parseHumanDuration(c.auditRetention);
  if (seconds < 1) throw new Error(`${c.auditRetention} is shorter than 1s`);
  return seconds * 1000;
}

/** Defaults with overrides, for tests and embedding; validated like any other source. */
export function configWith(overrides: Partial<Record<OptionKey, unknown>> = {}): Config {
  return loadConfig({ flags: overrides });
}
