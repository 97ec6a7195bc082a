/** The decoder's bounds (protocol/reader.ts) as a configuration sets them. */
import type { Config } from '../config.ts';
import type { PacketLimits } from '../protocol/index.ts';

const LIMITS = new WeakMap<Config, PacketLimits>();

/** The decoder's bounds of a configuration, made once and shared by its connections. */
export function packetLimitsOf(config: Config): PacketLimits {
  let limits = LIMITS.get(config);
  if (limits === undefined) {
    limits = {
      maxUserProperties: config.maxUserProperties,
      maxPropertiesBytes: config.maxPropertiesBytes,
      maxWillBytes: config.maxWillBytes,
      maxFiltersPerSubscribe: config.maxFiltersPerSubscribe,
    };
    LIMITS.set(config, limits);
  }
  return limits;
}
