/**
 * Overload shedding on the input side, the last resort: once the process has been overloaded
 * (the overload watch's verdict, observability/overload-watch.ts, heard at every tick) for
 * PAUSE_AFTER_MS, new connections refused (connection-guard.ts: 0x89) and QoS 0 shed to the
 * congested meanwhile, the readers of the heaviest brokers are paused (HOLD_OVERLOAD,
 * session/input-holds.ts): the tenants whose clients pour in the most stop adding to the memory
 * or the lag while the others are still served. A short overload pauses no one.
 *
 * - Heaviest: inbound bytes a second since the previous verdict (the `bytesReceived` every broker
 *   already counts; nothing is added to the hot path). On entering, every broker at or above
 *   half the top rate is paused: one flooding tenant alone, or the few that flood together. A
 *   broker with no inbound traffic is never paused.
 * - While overloaded the choice stands (the paused brokers' rates fall to 0 by design); each
 *   verdict holds their connections again, which catches a connection that joined them since.
 *   Bytes already read when the hold came are still handled (at most one read budget a turn).
 * - Back under: every hold is released. Each transition is logged once (warn pausing, info
 *   resuming) and every pause counts in the broker's `overloadInputHolds`
 *   (`pubsub_overload_input_holds_total`).
 */
import type { Logger } from 'pino';
import { HOLD_OVERLOAD } from '../session/index.ts';
import type { Broker } from './broker.ts';

/** Brokers at or above this share of the top inbound rate are paused with it. */
const HEAVY_SHARE = 0.5;
/** How long the process stays overloaded before readers are paused. */
export const PAUSE_AFTER_MS = 2000;

export class InputShedding {
  readonly #brokers: () => Iterable<Broker>;
  readonly #logger: Logger;
  /** Each broker's bytes received at the previous verdict, and when that was. */
  #last = new Map<Broker, number>();
  #lastAt = performance.now();
  /** The brokers whose readers are paused now. */
  readonly #paused = new Set<Broker>();
  /** When the current overload began (performance.now()); undefined while not overloaded. */
  #overSince: number | undefined;

  constructor(brokers: () => Iterable<Broker>, logger: Logger) {
    this.#brokers = brokers;
    this.#logger = logger;
  }

  /** The brokers paused now (their addresses). */
  get paused(): string[] {
    return [...this.#paused].map((b) => b.address);
  }

  /** The overload watch's verdict: pause the heaviest brokers' readers, or release them. */
  judge(overloaded: boolean): void {
    const rates = this.#rates();
    if (!overloaded) {
      this.#overSince = undefined;
      if (this.#paused.size > 0) this.#resumeAll();
      return;
    }
    this.#overSince ??= this.#lastAt;
    if (this.#paused.size === 0 && this.#lastAt - this.#overSince >= PAUSE_AFTER_MS)
      this.#pauseHeaviest(rates);
    for (const broker of this.#paused) hold(broker);
  }

  /** Inbound bytes a second of every broker since the previous verdict. */
  #rates(): Map<Broker, number> {
    const now = performance.now();
    const seconds = Math.max(now - this.#lastAt, 1) / 1000;
    const rates = new Map<Broker, number>();
    const last = new Map<Broker, number>();
    for (const broker of this.#brokers()) {
      const received = broker.stats.bytesReceived;
      rates.set(broker, (received - (this.#last.get(broker) ?? received)) / seconds);
      last.set(broker, received);
    }
    this.#last = last;
    this.#lastAt = now;
    return rates;
  }

  #pauseHeaviest(rates: Map<Broker, number>): void {
    let top = 0;
    for (const rate of rates.values()) top = Math.max(top, rate);
    if (top <= 0) return;
    const shed: { broker: string; bytesPerSecond: number }[] = [];
    for (const [broker, rate] of rates) {
      if (rate < top * HEAVY_SHARE) continue;
      this.#paused.add(broker);
      broker.stats.overloadInputHolds++;
      shed.push({ broker: broker.address, bytesPerSecond: Math.round(rate) });
    }
    this.#logger.warn({ brokers: shed }, 'process overloaded: pausing the readers of the heaviest brokers');
  }

  #resumeAll(): void {
    const brokers = this.paused;
    for (const broker of this.#paused) {
      for (const session of broker.sessions.values()) session.link?.releaseInput(HOLD_OVERLOAD);
    }
    this.#paused.clear();
    this.#logger.info({ brokers }, 'process recovered: resuming the readers of paused brokers');
  }
}

function hold(broker: Broker): void {
  for (const session of broker.sessions.values()) session.link?.holdInput(HOLD_OVERLOAD);
}
