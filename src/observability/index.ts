/**
 * observability/: logging (and the sampler that rate-limits client event lines), the event-loop
 * stall watch (liveness), the overload watch (memory, heap, lag: new connections refused while
 * over), and the plain-number histogram
 * that timed code observes into (the Prometheus endpoint that reads it sits on the admin floor,
 * src/admin/metrics.ts; each broker's $SYS statistics topics are src/broker/sys-tree.ts), and the packet
 * traces each broker holds (packet-trace.ts: what `GET .../brokers/{broker}/trace` streams).
 */
export { EventLoopWatch } from './event-loop-watch.ts';
export { DurationHistogram, SECONDS_BUCKETS } from './histogram.ts';
export { LogSampler, withSuppressed } from './log-sampler.ts';
export { createLogger, silentLogger } from './logger.ts';
export {
  DEFAULT_MEMORY_SHARE,
  defaultMemoryLimit,
  type MemoryProbe,
  OverloadWatch,
  processMemory,
} from './overload-watch.ts';
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
