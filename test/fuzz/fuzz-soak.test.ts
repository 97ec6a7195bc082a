/**
 * The short form of the hostile-input soak (issue 20; the long one is `npm run soak`,
 * docs/limits.md#hostile-input-soak): a few thousand mutated, truncated, oversized and random
 * MQTT 3.1/3.1.1/5 cases against a live `pubsub serve` while well-behaved MQTT.js clients carry a
 * numbered QoS 1/2 stream. Afterwards the server still serves all three versions, its RSS is back
 * within RSS_MARGIN_KB of the warmed-up figure (heap capped at HEAP_MB), no connection is still
 * counted once every client has left, every QoS 1/2 subscriber got every message
 * (QoS 2 exactly once, in order), and nothing was logged at error/fatal or as uncaught.
 *
 * FUZZ_SEED=<n> replays another run; a failing case prints its seed, index and bytes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { until } from '../helpers/child-process.ts';
import {
  isProblemLogLine,
  procRssKb,
  roundTrip,
  runFuzz,
  stateGauges,
  WellBehavedClients,
} from '../helpers/fuzz-soak.ts';
import { startServe } from '../helpers/pubsub-process.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20_2026);
const WARMUP_CASES = 300;
const CASES = 5000;
/** The server's V8 old-space cap (as `npm run soak`'s --heap-mb): garbage cannot pass for growth. */
const HEAP_MB = 128;
/**
 * RSS may stay this far above the warmed-up figure: up to the heap cap, as V8 keeps garbage
 * between full collections (measured: +42 MB after these 5,000 cases, +96 MB after 100,000 in `npm run soak`).
 */
const RSS_MARGIN_KB = HEAP_MB * 1024;

describe('hostile input soak (short form)', () => {
  it(`${CASES} fuzz cases (seed ${SEED}) leave the server serving, its RSS bounded, and every well-behaved client whole`, async (t) => {
    const served = await startServe(t, {
      // The brute-force limiter would ban the fuzzer's addresses and end its cases at CONNECT.
      args: ['--ws-port', '-1', '--auth-failure-limit', '0'],
      // A capped heap: V8 collects instead of growing, so RSS measures what is held.
      env: { NODE_OPTIONS: `--max-old-space-size=${HEAP_MB}` },
    });
    const url = served.urls.mqtt!;
    const port = served.port('mqtt');
    const pid = served.child.process.pid!;
    const clients = await WellBehavedClients.start(url, `soak/${SEED}`);
    t.after(() => clients.stop(0));
    clients.publish(100);

    const healthy = (): string | undefined =>
      served.child.exit !== undefined
        ? `the server exited (${served.child.exit.code ?? served.child.exit.signal})`
        : clients.unwell();
    const warm = await runFuzz({ port, seed: SEED, count: WARMUP_CASES, concurrency: 16, healthy });
    assert.deepEqual(warm.failures, [], warm.failures.join('\n\n'));
    const rssWarm = procRssKb(pid)!;

    const started = Date.now();
    const stats = await runFuzz({
      port,
      seed: SEED,
      from: WARMUP_CASES,
      count: CASES - WARMUP_CASES,
      concurrency: 16,
      healthy,
    });
    const seconds = (Date.now() - started) / 1000;
    t.diagnostic(
      `${stats.cases} cases in ${seconds.toFixed(1)} s (${(stats.cases / seconds).toFixed(0)}/s); closed by the server ${stats.closedByServer}, refused at CONNECT ${stats.refusedAtConnect}; RSS after warm-up ${rssWarm} kB`,
    );
    assert.equal(stats.stopped, undefined, `${stats.stopped}\n\n${stats.failures.join('\n\n')}`);
    assert.deepEqual(stats.failures, [], stats.failures.join('\n\n'));

    const stream = await clients.stop();
    assert.deepEqual(stream.problems, [], `after ${stream.sent} messages per stream`);
    assert.ok(stream.sent > 100, `the stream ran the whole time (${stream.sent} per stream)`);

    for (const version of [3, 4, 5] as const) await roundTrip(url, version);

    let rss = 0;
    await until(() => {
      rss = procRssKb(pid)!;
      return rss <= rssWarm + RSS_MARGIN_KB;
    }, `RSS back within ${RSS_MARGIN_KB} kB of ${rssWarm} kB (now ${rss} kB)`);
    t.diagnostic(`RSS after ${rss} kB`);

    let gauges = await stateGauges(served.apiUrl);
    await until(async () => {
      gauges = await stateGauges(served.apiUrl);
      return gauges.pubsub_connections === 0;
    }, 'no connection counted once every client has left');
    t.diagnostic(`state after: ${JSON.stringify(gauges)}`);

    const logged = served.child.lines.filter(isProblemLogLine);
    assert.deepEqual(logged, [], 'error, fatal or uncaught lines in the server log');
    assert.equal(served.child.stderr.match(/uncaught|Error:/gi), null, served.child.stderr);
    await served.stop();
  });
});
