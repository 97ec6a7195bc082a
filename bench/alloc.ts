/**
 * Heap allocated by the broker per delivered message at a steady rate (issue 22's row "heap
 * allocated per delivered QoS 0 message").
 *
 * Method: our broker runs under `--trace-gc-nvp`; every GC line carries `allocated=<bytes>`,
 * the bytes allocated since the previous GC, so their sum over a window is what the broker
 * allocated in it (to within one young generation, a few MB, against hundreds of MB summed).
 * A fixed-rate fan-in 10 → 1 (one PUBLISH per write, as bench/load.ts's `rate` mode) runs once
 * to warm up (JIT, connection set-up), then again for the measured window; the GC lines that
 * arrive during the second run are summed and divided by the messages it delivered.
 *
 *   node bench/alloc.ts [--rate 10000] [--duration 6] [--qos 0,1] [--reps 3] [--baseline DIR]
 *
 * `--baseline DIR` also measures the broker of another checkout in the same run (alternating),
 * for a before/after pair.
 */
import { parseArgs } from 'node:util';
import { type BrokerHandle, killAllChildren, startBroker } from './brokers.ts';
import { type LoadParams, runLoad } from './load.ts';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '10000' },
    duration: { type: 'string', default: '6' },
    qos: { type: 'string', default: '0,1' },
    size: { type: 'string', default: '64' },
    reps: { type: 'string', default: '3' },
    baseline: { type: 'string' },
  },
});

const ALLOCATED = /allocated=(\d+)/g;

interface Sample {
  bytesPerMsg: number;
  delivered: number;
  gcs: number;
}

async function measure(qos: 0 | 1, repoDir: string | undefined): Promise<Sample> {
  let counting = false;
  let allocated = 0;
  let gcs = 0;
  let pending = '';
  const onOutput = (chunk: string): void => {
    pending += chunk;
    const end = pending.lastIndexOf('\n');
    if (end < 0) return;
    const lines = pending.slice(0, end);
    pending = pending.slice(end + 1);
    if (!counting) return;
    for (const m of lines.matchAll(ALLOCATED)) {
      allocated += Number(m[1]);
      gcs++;
    }
  };
  const broker: BrokerHandle = await startBroker('pubsub', {
    noDelay: true,
    nodeFlags: ['--trace-gc-nvp'],
    onOutput,
    ...(repoDir === undefined ? {} : { repoDir }),
  });
  try {
    const params: LoadParams = {
      scenario: 'fanin',
      url: broker.tcpUrl,
      pubs: 10,
      subs: 1,
      qos,
      size: Number(values.size),
      window: 1000,
      batch: 1,
      rate: Number(values.rate),
      durationS: 3,
      warmupS: 1,
      brokerPid: broker.pid,
    };
    await runLoad(params);
    counting = true;
    const durationS = Number(values.duration);
    const result = await runLoad({ ...params, durationS, warmupS: 0 });
    counting = false;
    if (!result.ok) throw new Error(`load failed: ${result.error ?? JSON.stringify(result.checks)}`);
    const delivered = result.deliveredPerSec * durationS;
    return { bytesPerMsg: allocated / delivered, delivered, gcs };
  } finally {
    await broker.stop();
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

async function main(): Promise<void> {
  const qosList = values.qos.split(',').map((q) => Number(q) as 0 | 1);
  const sides: [string, string | undefined][] = [['this tree', undefined]];
  if (values.baseline !== undefined) sides.unshift(['baseline', values.baseline]);
  console.log(`fixed ${values.rate} msgs/s fan-in 10 -> 1, ${values.size} B, ${values.duration} s measured`);
  console.log('| broker | QoS | bytes allocated per delivered message (median) | each rep | GCs in window |');
  console.log('|---|---|---|---|---|');
  for (const qos of qosList) {
    const samples = new Map<string, Sample[]>(sides.map(([name]) => [name, []]));
    for (let rep = 0; rep < Number(values.reps); rep++) {
      for (const [name, dir] of sides) samples.get(name)!.push(await measure(qos, dir));
    }
    for (const [name] of sides) {
      const s = samples.get(name)!;
      const per = s.map((x) => x.bytesPerMsg);
      console.log(
        `| ${name} | ${qos} | ${Math.round(median(per))} | ${per.map((x) => Math.round(x)).join(' / ')} | ${s.map((x) => x.gcs).join(' / ')} |`,
      );
    }
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    killAllChildren();
    process.exit(1);
  },
);
