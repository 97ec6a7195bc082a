/**
 * Process-wide admission of CONNECTs, before and around authentication: the limits that protect
 * the process, not one broker (per-broker limits are the broker's own).
 *
 * `admit`, before authentication (a refused client costs no token check):
 * - overloaded (observability/overload-watch.ts): SERVER_BUSY, v5 CONNACK 0x89;
 * - `maxConnections` connections already held: MAX_CONNECTIONS, 0x97;
 * - `maxConnectionsPerAddress` held by the client's address: MAX_CONNECTIONS_PER_ADDRESS, 0x97;
 * - more than `maxAddressConnectRate` CONNECTs a second from the client's address (IPv6: its /64;
 *   address-connect-rate.ts): ADDRESS_CONNECTION_RATE_EXCEEDED, 0x9F. Checked last, so only a
 *   CONNECT the caps let through spends the address's budget.
 * A CONNECT let through holds its place from then until its socket closes (`release`), so a
 * burst of CONNECTs being authenticated at once cannot overshoot. Connections still awaiting
 * CONNECT hold none: they are bounded apart, by the connect timeout and the accept pacing.
 * These refusals come before the connection names a broker, so they are counted here, by code.
 *
 * `admitClientId`, after authentication (so a stranger cannot lock a client id out): CONNECTs
 * per client id of a broker, a token bucket of `maxClientConnectRate` a second holding as many;
 * over it: CONNECTION_RATE_EXCEEDED, v5 CONNACK 0x9F, and the id is refused outright for a
 * back-off of 1 s, doubling at each repeat up to 60 s. The repeats are forgotten once the id
 * has been quiet for twice its last back-off. A takeover loop between two clients thus falls
 * from thousands of connects a second to `maxClientConnectRate` per back-off. The table of ids
 * is swept of forgotten entries at most every 10 s, on the CONNECT path.
 */
import type { Config } from '../config.ts';
import type { ErrorCode } from '../errors.ts';
import type { ConnectionInfo } from '../transport/index.ts';
import { AddressConnectRate, refill } from './address-connect-rate.ts';

export interface GuardRefusal {
  code: ErrorCode;
  detail: string;
}

const BACKOFF_START_MS = 1000;
const BACKOFF_MAX_MS = 60_000;
const SWEEP_EVERY_MS = 10_000;

/** One client id's connect budget. */
interface IdRecord {
  tokens: number;
  at: number;
  blockedUntil: number;
  /** Back-offs in a row; 0 when none. */
  strikes: number;
  lastRefusal: number;
}

const backoffMs = (strikes: number): number =>
  strikes === 0 ? 0 : Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** (strikes - 1));

export class ConnectionGuard {
  /** Refusals of `admit` by catalogue code (they name no broker). */
  readonly refused = new Map<ErrorCode, number>();
  readonly #config: Config;
  readonly #overload: { readonly overloaded: boolean };
  /** Connections holding a place, by the address they count against. */
  readonly #holding = new Map<object, string>();
  readonly #byAddress = new Map<string, number>();
  readonly #ids = new Map<string, IdRecord>();
  #sweptAt = 0;
  readonly #addressRate: AddressConnectRate;

  constructor(config: Config, overload: { readonly overloaded: boolean }) {
    this.#config = config;
    this.#overload = overload;
    this.#addressRate = new AddressConnectRate(config.maxAddressConnectRate);
  }

  /** Source addresses (IPv6: /64 prefixes) with a connect budget on record. */
  get trackedAddresses(): number {
    return this.#addressRate.tracked;
  }

  /** Connections holding a place now. */
  get held(): number {
    return this.#holding.size;
  }

  /** Client ids with a connect budget on record (the table's size). */
  get trackedClientIds(): number {
    return this.#ids.size;
  }

  /** Before authentication: why `connection` may not connect, or undefined (it now holds a place). */
  admit(connection: { readonly info: ConnectionInfo }): GuardRefusal | undefined {
    if (this.#holding.has(connection)) return undefined;
    const refusal = this.#refusal(connection.info.remoteAddress);
    if (refusal !== undefined) {
      this.refused.set(refusal.code, (this.refused.get(refusal.code) ?? 0) + 1);
      return refusal;
    }
    const address = connection.info.remoteAddress;
    this.#holding.set(connection, address);
    this.#byAddress.set(address, (this.#byAddress.get(address) ?? 0) + 1);
    return undefined;
  }

  #refusal(address: string): GuardRefusal | undefined {
    if (this.#overload.overloaded)
      return { code: 'SERVER_BUSY', detail: 'server overloaded; try again later' };
    const { maxConnections, maxConnectionsPerAddress } = this.#config;
    if (maxConnections > 0 && this.#holding.size >= maxConnections)
      return { code: 'MAX_CONNECTIONS', detail: `server holds its maximum of ${maxConnections} connections` };
    if (maxConnectionsPerAddress > 0 && (this.#byAddress.get(address) ?? 0) >= maxConnectionsPerAddress)
      return {
        code: 'MAX_CONNECTIONS_PER_ADDRESS',
        detail: `address holds its maximum of ${maxConnectionsPerAddress} connections`,
      };
    if (!this.#addressRate.take(address))
      return {
        code: 'ADDRESS_CONNECTION_RATE_EXCEEDED',
        detail: `address connects more than ${this.#addressRate.rate} times a second`,
      };
    return undefined;
  }

  /** The connection closed: its place, if it held one, is free. */
  release(connection: object): void {
    const address = this.#holding.get(connection);
    if (address === undefined) return;
    this.#holding.delete(connection);
    const n = this.#byAddress.get(address)! - 1;
    if (n === 0) this.#byAddress.delete(address);
    else this.#byAddress.set(address, n);
  }

  /** After authentication: why client `clientId` of `broker` may not connect now, or undefined. */
  admitClientId(broker: string, clientId: string, now: number = Date.now()): GuardRefusal | undefined {
    const rate = this.#config.maxClientConnectRate;
    if (rate === 0) return undefined;
    if (now - this.#sweptAt >= SWEEP_EVERY_MS) this.#sweep(now);
    const key = `${broker}\u0000${clientId}`;
    let record = this.#ids.get(key);
    if (record === undefined) {
      record = { tokens: rate, at: now, blockedUntil: 0, strikes: 0, lastRefusal: 0 };
      this.#ids.set(key, record);
    }
    if (now < record.blockedUntil) return this.#rateRefusal(record);
    refill(record, rate, now);
    if (record.tokens >= 1) {
      record.tokens--;
      if (record.strikes > 0 && now - record.lastRefusal > 2 * backoffMs(record.strikes)) record.strikes = 0;
      return undefined;
    }
    record.strikes++;
    record.lastRefusal = now;
    record.blockedUntil = now + backoffMs(record.strikes);
    return this.#rateRefusal(record);
  }

  #rateRefusal(record: IdRecord): GuardRefusal {
    return {
      code: 'CONNECTION_RATE_EXCEEDED',
      detail: `client id connects more than ${this.#config.maxClientConnectRate} times a second; refused for ${backoffMs(record.strikes)} ms`,
    };
  }

  /** Forgets ids whose budget is full and whose repeats are forgotten. */
  #sweep(now: number): void {
    this.#sweptAt = now;
    const refillMs = 1000;
    for (const [key, r] of this.#ids) {
      const quiet = now - Math.max(r.at, r.lastRefusal);
      if (now >= r.blockedUntil && quiet > Math.max(refillMs, 2 * backoffMs(r.strikes)))
        this.#ids.delete(key);
    }
  }
}
