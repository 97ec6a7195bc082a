/**
 * Timers for session expiry and will delay, which may be set for up to 2^32-1 seconds while
 * setTimeout holds at most 2^31-1 ms (about 24.8 days): longer delays are chained. Unref'd, so
 * a pending expiry never keeps the process alive.
 */
const MAX_DELAY = 2_147_483_647;

export interface LongTimer {
  cancel(): void;
}

export function setLongTimeout(fn: () => void, ms: number): LongTimer {
  let handle: NodeJS.Timeout;
  const deadline = Date.now() + ms;
  const arm = (): void => {
    const left = deadline - Date.now();
    if (left <= 0) {
      fn();
      return;
    }
    handle = setTimeout(arm, Math.min(left, MAX_DELAY));
    handle.unref();
  };
  handle = setTimeout(arm, Math.min(ms, MAX_DELAY));
  handle.unref();
  return { cancel: () => clearTimeout(handle) };
}
