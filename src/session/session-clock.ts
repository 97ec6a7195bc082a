/**
 * The clocks of a session no connection serves: its expiry, after which the broker ends it
 * [MQTT-4.1.0-2], and a will waiting out its v5 Will Delay Interval [MQTT-3.1.3-9]. A
 * connection that attaches cancels both; a will still waiting when the session ends is
 * published then [MQTT-3.1.2-8] (Session.end takes it). Timers are long timers (setLongTimeout),
 * so intervals beyond setTimeout's 24.8 days hold.
 */
import type { Message } from '../router/index.ts';
import { type LongTimer, setLongTimeout } from './timers.ts';

/** A will waiting for its delay to pass, as the session's stored record holds it. */
export interface PendingWill {
  readonly message: Message;
  /** Epoch ms at which it is published. */
  readonly publishAt: number;
}

/** Session Expiry Interval meaning never [MQTT-3.1.2-11]. */
const NEVER = 0xffffffff;

export class SessionClock {
  #expiryTimer: LongTimer | undefined;
  /** Epoch ms the disconnected session expires (meaningful while detached). */
  #expiresAt: number | undefined;
  #will: { message: Message; publishAt: number; timer: LongTimer } | undefined;

  get expiresAt(): number | undefined {
    return this.#expiresAt;
  }

  get will(): PendingWill | undefined {
    return this.#will;
  }

  /** Arms the expiry clock: `onExpire` runs in `ms` unless cancelled first. */
  expireIn(ms: number, onExpire: () => void): void {
    this.#expiresAt = Date.now() + ms;
    this.#expiryTimer = setLongTimeout(onExpire, ms);
  }

  /**
   * Arms the expiry clock of a detached session with `intervalSeconds` (0xFFFFFFFF: never, true
   * without arming): at `expiresAt` when given (a deadline stored earlier), else a whole interval
   * from `now`. False, unarmed, when that time has passed (or the interval is 0).
   */
  expireAfter(
    intervalSeconds: number,
    expiresAt: number | undefined,
    now: number,
    onExpire: () => void,
  ): boolean {
    if (intervalSeconds >= NEVER) return true;
    const left = expiresAt === undefined ? intervalSeconds * 1000 : expiresAt - now;
    if (left <= 0) return false;
    this.expireIn(left, onExpire);
    return true;
  }

  cancelExpiry(): void {
    this.#expiryTimer?.cancel();
    this.#expiryTimer = undefined;
    this.#expiresAt = undefined;
  }

  /** Holds a will for `delaySeconds`; then forgets it and calls `publish` (unless cancelled or taken). */
  delayWill(message: Message, delaySeconds: number, publish: () => void): void {
    const timer = setLongTimeout(() => {
      this.#will = undefined;
      publish();
    }, delaySeconds * 1000);
    this.#will = { message, publishAt: Date.now() + delaySeconds * 1000, timer };
  }

  /** Drops a waiting will unpublished (the session resumed in time). */
  cancelWill(): void {
    this.#will?.timer.cancel();
    this.#will = undefined;
  }

  /** Stops a waiting will's timer and hands the will over (the session ends: publish it now). */
  takeWill(): Message | undefined {
    const will = this.#will;
    if (will === undefined) return undefined;
    this.cancelWill();
    return will.message;
  }
}
