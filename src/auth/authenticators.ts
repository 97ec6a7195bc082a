/**
 * The enhanced-authentication methods the configuration enables, by Authentication Method
 * name (MQTT 5.0 section 4.12): SCRAM-SHA-256 when `scramUsersFile` is set. The file is read
 * when a Broker is made; one that cannot be read or parsed is a ConfigError there, never a
 * failure at a client's CONNECT.
 */
import { readFileSync } from 'node:fs';
import { type Config, ConfigError } from '../config.ts';
import type { EnhancedAuthenticator } from './enhanced.ts';
import { parseScramUsers, ScramSha256 } from './scram.ts';

/** The authenticators the configuration enables, by method name. */
export function authenticatorsFromConfig(config: Config): Map<string, EnhancedAuthenticator> {
  const out = new Map<string, EnhancedAuthenticator>();
  if (config.scramUsersFile !== '') {
    let text: string;
    try {
      text = readFileSync(config.scramUsersFile, 'utf8');
    } catch (err) {
      throw new ConfigError(`scramUsersFile ${config.scramUsersFile}: ${(err as Error).message}`);
    }
    const users = parseScramUsers(text, config.scramUsersFile);
    const scram = new ScramSha256((name) => users.get(name));
    out.set(scram.method, scram);
  }
  return out;
}
