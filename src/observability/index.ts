/**
 * observability/: logging, and the plain-number histogram that timed code observes into (the
 * Prometheus endpoint that reads it sits on the admin floor, src/admin/metrics.ts; $SYS topics
 * are issue 16).
 */
export { DurationHistogram, SECONDS_BUCKETS } from './histogram.ts';
export { createLogger, silentLogger } from './logger.ts';
