/** observability/: logging and the event-loop stall watch (liveness); metrics (prometheus) and $SYS topics in later issues. */
export { EventLoopWatch } from './event-loop-watch.ts';
export { createLogger, silentLogger } from './logger.ts';
