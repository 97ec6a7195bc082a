/**
 * observability/: logging, the event-loop stall watch (liveness), and the plain-number histogram
 * that timed code observes into (the Prometheus endpoint that reads it sits on the admin floor,
 * src/admin/metrics.ts; each broker's $SYS statistics topics are src/broker/sys-tree.ts), and the packet
 * traces each broker holds (packet-trace.ts: what `GET .../brokers/{broker}/trace` streams).
 */
export { EventLoopWatch } from './event-loop-watch.ts';
export { DurationHistogram, SECONDS_BUCKETS } from './histogram.ts';
export { createLogger, silentLogger } from './logger.ts';
export {
  describePacket,
  filterMatches,
  NO_TRACES,
  PacketTrace,
  PacketTraces,
  type TraceDirection,
  type TraceEvent,
  type TraceSelector,
  type TraceSink,
} from './packet-trace.ts';
