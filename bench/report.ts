/**
 * Turns the runs of one `npm run bench` into medians per (scenario, broker), a markdown report
 * (throughput with our ratio to each peer, latency and CPU, fixed-rate efficiency, connection
 * storm, correctness, notes) and the JSON written next to it.
 */
import type { BrokerInfo, BrokerName } from './brokers.ts';
import type { LoadResult } from './load.ts';
import type { Scenario } from './scenarios.ts';
import { type LatencySummary, median, range } from './stats.ts';

export interface ConnResult {
  requested: number;
  connected: number;
  failed: number;
  errors: string[];
  /** Connections still open after the hold. */
  held: number;
  seconds: number;
  connPerSec: number;
  brokerUsPerConn: number | null;
  brokerPct: number | null;
  generatorPct: number;
  otherPct: number;
  rssBeforeKb: number | null;
  rssAfterKb: number | null;
  rssPerConnKb: number | null;
  connectLatency: LatencySummary;
  workers: number;
}

export interface RunRecord {
  scenario: string;
  broker: BrokerName;
  rep: number;
  status: 'ok' | 'failed' | 'n/a';
  at: string;
  note?: string;
  load?: LoadResult;
  conn?: ConnResult;
  /** Ours, persistent scenario: whether anything was written to the data directory. */
  stored?: boolean;
}

export interface Meta {
  command: string;
  stamp: string;
  partial: boolean;
  reps: number;
  durationS: number;
  warmupS: number;
  generator: { refill: 'turn' | 'delivery'; noDelay: boolean };
  elapsedS: number;
  machine: { cpus: number; cpuModel: string; memGiB: number; kernel: string; node: string };
  brokers: BrokerInfo[];
  scenarios: { id: string; label: string; group: string }[];
}

export interface Summary {
  scenario: string;
  broker: BrokerName;
  runs: number;
  failed: number;
  na?: string;
  notes: string[];
  msgsPerSec: number | null;
  msgsRange: [number, number] | null;
  pubPerSec: number | null;
  p50: number | null;
  p99: number | null;
  max: number | null;
  brokerPct: number | null;
  generatorPct: number | null;
  otherPct: number | null;
  msgsPerRead: number | null;
  framesPerMsg: number | null;
  /** Runs whose generator used > 90 % of a core. */
  genSaturated: number;
  lost: number;
  duplicates: number;
  outOfOrder: number;
  misrouted: number;
  missingPubacks: number;
  stalls: number;
  skipped: number;
  sessionResumed: boolean | null;
  stored: boolean | null;
  conn?: {
    connected: number | null;
    failed: number;
    held: number | null;
    connPerSec: number | null;
    brokerUsPerConn: number | null;
    brokerPct: number | null;
    generatorPct: number | null;
    otherPct: number | null;
    rssBeforeKb: number | null;
    rssAfterKb: number | null;
    rssPerConnKb: number | null;
    p50: number | null;
    p99: number | null;
    errors: string[];
  };
}

const GEN_SATURATED = 90;

function summarize(scenario: string, broker: BrokerName, records: RunRecord[]): Summary {
  const rs = records.filter((r) => r.scenario === scenario && r.broker === broker);
  const na = rs.find((r) => r.status === 'n/a');
  const loads = rs.map((r) => r.load).filter((l): l is LoadResult => l !== undefined);
  const conns = rs.map((r) => r.conn).filter((c): c is ConnResult => c !== undefined);
  const sum = (f: (l: LoadResult) => number): number => loads.reduce((n, l) => n + f(l), 0);
  const notes = [...new Set(rs.filter((r) => r.status === 'failed' && r.note).map((r) => r.note!))];
  const resumed = loads.map((l) => l.checks.sessionResumed).filter((x) => x !== undefined);
  const stored = rs.map((r) => r.stored).filter((x) => x !== undefined);
  const s: Summary = {
    scenario,
    broker,
    runs: loads.length + conns.length,
    failed: rs.filter((r) => r.status === 'failed').length,
    ...(na ? { na: na.note ?? 'n/a' } : {}),
    notes,
    msgsPerSec: median(loads.map((l) => l.deliveredPerSec)),
    msgsRange: range(loads.map((l) => l.deliveredPerSec)),
    pubPerSec: median(loads.map((l) => l.publishedPerSec)),
    p50: median(loads.map((l) => l.latency.p50)),
    p99: median(loads.map((l) => l.latency.p99)),
    max: median(loads.map((l) => l.latency.max)),
    brokerPct: median([...loads.map((l) => l.cpu.brokerPct), ...conns.map((c) => c.brokerPct)]),
    generatorPct: median([...loads.map((l) => l.cpu.generatorPct), ...conns.map((c) => c.generatorPct)]),
    otherPct: median([...loads.map((l) => l.cpu.otherPct), ...conns.map((c) => c.otherPct)]),
    msgsPerRead: median(loads.map((l) => l.msgsPerRead)),
    framesPerMsg: median(loads.map((l) => l.framesPerMsg)),
    genSaturated: loads.filter((l) => l.cpu.generatorPct > GEN_SATURATED).length,
    lost: sum((l) => l.checks.lost),
    duplicates: sum((l) => l.checks.duplicates),
    outOfOrder: sum((l) => l.checks.outOfOrder),
    misrouted: sum((l) => l.checks.misrouted),
    missingPubacks: sum((l) => l.checks.missingPubacks),
    stalls: sum((l) => l.checks.stalls),
    skipped: sum((l) => l.skipped ?? 0),
    sessionResumed: resumed.length === 0 ? null : resumed.every(Boolean),
    stored: stored.length === 0 ? null : stored.some(Boolean),
  };
  if (conns.length > 0) {
    s.conn = {
      connected: median(conns.map((c) => c.connected)),
      failed: conns.reduce((n, c) => n + c.failed, 0),
      held: median(conns.map((c) => c.held)),
      connPerSec: median(conns.map((c) => c.connPerSec)),
      brokerUsPerConn: median(conns.map((c) => c.brokerUsPerConn)),
      brokerPct: median(conns.map((c) => c.brokerPct)),
      generatorPct: median(conns.map((c) => c.generatorPct)),
      otherPct: median(conns.map((c) => c.otherPct)),
      rssBeforeKb: median(conns.map((c) => c.rssBeforeKb)),
      rssAfterKb: median(conns.map((c) => c.rssAfterKb)),
      rssPerConnKb: median(conns.map((c) => c.rssPerConnKb)),
      p50: median(conns.map((c) => c.connectLatency.p50)),
      p99: median(conns.map((c) => c.connectLatency.p99)),
      errors: [...new Set(conns.flatMap((c) => c.errors))],
    };
  }
  return s;
}

// ---- formatting ----

const int = (x: number | null | undefined): string =>
  x == null ? '-' : Math.round(x).toLocaleString('en-US');
const fix = (x: number | null | undefined, d: number): string => (x == null ? '-' : x.toFixed(d));
const kilo = (x: number): string =>
  x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : x >= 1e4 ? `${Math.round(x / 1e3)}k` : `${(x / 1e3).toFixed(1)}k`;
const ms = (x: number | null | undefined): string => (x == null ? '-' : x < 10 ? x.toFixed(2) : x.toFixed(1));

function ratio(a: number | null | undefined, b: number | null | undefined): string {
  if (a == null || b == null || b === 0) return '-';
  return `${(a / b).toFixed(2)}x`;
}

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

function unavailable(s: Summary | undefined): string | undefined {
  if (s === undefined) return 'skipped';
  if (s.na !== undefined) return s.na;
  if (s.runs === 0) return s.failed > 0 ? 'failed' : 'not run';
  return undefined;
}

function throughputCell(s: Summary | undefined, group: string): string {
  const u = unavailable(s);
  if (u !== undefined) return u;
  const r = s!.msgsRange;
  const spread = r && s!.runs > 1 ? ` (${kilo(r[0])}-${kilo(r[1])})` : '';
  const pubs =
    group === 'fanout100' || group === 'fanout1000' || group === 'topics'
      ? `, ${int(s!.pubPerSec)} pub/s`
      : '';
  const sat = s!.genSaturated > s!.runs / 2 ? ' †' : '';
  const failed = s!.failed > 0 ? ` ‼${s!.failed} failed` : '';
  return `${int(s!.msgsPerSec)}${sat}${spread}${pubs}${failed}`;
}

function latencyCell(s: Summary | undefined): string {
  const u = unavailable(s);
  if (u !== undefined) return u;
  return `${ms(s!.p50)} / ${ms(s!.p99)} / ${ms(s!.max)}`;
}

function cpuCell(s: Summary | undefined): string {
  const u = unavailable(s);
  if (u !== undefined) return '-';
  return `${fix(s!.brokerPct, 0)} / ${fix(s!.generatorPct, 0)}`;
}

export function renderReport(
  meta: Meta,
  scenarios: Scenario[],
  records: RunRecord[],
): { markdown: string; json: unknown } {
  const names = meta.brokers.map((b) => b.name);
  const peers = names.filter((n) => n !== 'pubsub');
  const summaries: Summary[] = [];
  const get = (scenario: string, broker: BrokerName): Summary | undefined =>
    summaries.find((s) => s.scenario === scenario && s.broker === broker);
  for (const sc of scenarios)
    for (const b of meta.brokers) if (b.available) summaries.push(summarize(sc.id, b.name, records));

  const ran = scenarios.filter((sc) => records.some((r) => r.scenario === sc.id));
  const closed = ran.filter((sc) => sc.group !== 'rate10k' && sc.group !== 'conn');
  const rate = ran.filter((sc) => sc.group === 'rate10k');
  const conn = ran.filter((sc) => sc.group === 'conn');
  const out: string[] = [];
  const m = meta.machine;

  out.push(`# pubsub benchmark ${meta.stamp}${meta.partial ? ' (PARTIAL: interrupted or out of time)' : ''}`);
  out.push('');
  out.push(`Command: \`${meta.command}\``);
  out.push('');
  out.push(
    `${meta.reps} repetition(s) per scenario and broker, brokers interleaved, fresh broker process per run; ` +
      `${meta.warmupS} s warm-up + ${meta.durationS} s measured; figures are medians (range = min-max). ` +
      `Run took ${(meta.elapsedS / 60).toFixed(1)} min.`,
  );
  out.push('');
  out.push(
    `Machine: ${m.cpus} CPU (${m.cpuModel}), ${m.memGiB} GiB, Linux ${m.kernel}; harness and our broker on Node ${m.node}. ` +
      `Brokers: ${meta.brokers
        .map((b) => `${b.name}${b.version ? ` ${b.version}` : ''}${b.available ? '' : ` (${b.note})`}`)
        .join('; ')}.`,
  );
  out.push('');

  if (closed.length > 0) {
    out.push('## Throughput (closed loop)');
    out.push('');
    out.push(
      'Delivered messages per second (fan-out and topics: deliveries = publishes x receivers). ' +
        'Ratio = ours / peer (> 1: ours faster). † = load generator above 90 % of a core in most runs ' +
        '(the figure is then a lower bound for that broker).',
    );
    out.push('');
    const rows = closed.map((sc) => {
      const ours = get(sc.id, 'pubsub');
      return [
        sc.label,
        ...names.map((n) => throughputCell(get(sc.id, n), sc.group)),
        ...peers.map((p) => ratio(unavailable(ours) ? null : ours?.msgsPerSec, get(sc.id, p)?.msgsPerSec)),
      ];
    });
    out.push(
      table(['scenario', ...names.map((n) => `${n} msgs/s`), ...peers.map((p) => `ours / ${p}`)], rows),
    );
    out.push('');
    out.push('### Latency and CPU (same runs)');
    out.push('');
    out.push(
      'Latency = receive time - send time in the payload (p50 / p99 / max, ms); in a closed loop it is ' +
        'queueing delay (about window / throughput). CPU = broker / load generator, % of one core over the ' +
        'measured window; "other" = the rest of the machine (noise from other processes).',
    );
    out.push('');
    out.push(
      table(
        [
          'scenario',
          ...names.map((n) => `${n} p50/p99/max ms`),
          ...names.map((n) => `${n} CPU b/g %`),
          'other CPU %',
        ],
        closed.map((sc) => [
          sc.label,
          ...names.map((n) => latencyCell(get(sc.id, n))),
          ...names.map((n) => cpuCell(get(sc.id, n))),
          names
            .map((n) => fix(get(sc.id, n)?.otherPct, 0))
            .filter((x) => x !== '-')
            .join(' / ') || '-',
        ]),
      ),
    );
    out.push('');
    const persistent = closed.filter((sc) => sc.group === 'persistent');
    if (persistent.length > 0) {
      out.push('### Persistent QoS 1 vs in-memory QoS 1 (ours)');
      out.push('');
      const rowsP = persistent.map((sc) => {
        const p = get(sc.id, 'pubsub');
        const memId = sc.id.replace(/^persistent-/, 'fanin-');
        const mem = get(memId, 'pubsub');
        const store =
          p?.stored == null
            ? '-'
            : p.stored
              ? 'data dir written'
              : 'nothing stored: no SQLite store yet (in-memory)';
        return [
          sc.label,
          unavailable(p) ?? int(p?.msgsPerSec),
          mem ? int(unavailable(mem) ? null : mem.msgsPerSec) : `not run (${memId})`,
          ratio(unavailable(p) ? null : p?.msgsPerSec, mem?.msgsPerSec),
          p?.sessionResumed == null ? '-' : p.sessionResumed ? 'yes' : 'NO',
          store,
        ];
      });
      out.push(
        table(
          [
            'scenario',
            'ours persistent msgs/s',
            'ours in-memory QoS 1',
            'ratio (target >= 0.5)',
            'session resumed',
            'store',
          ],
          rowsP,
        ),
      );
      out.push('');
    }
  }

  if (rate.length > 0) {
    out.push('## Fixed rate (10,000 msgs/s, 10 publishers, one PUBLISH per write): efficiency and latency');
    out.push('');
    out.push(
      'Broker CPU in % of one core (lower is better; ratio < 1: ours cheaper). Latency p50 / p99 / max in ms.',
    );
    out.push('');
    out.push(
      table(
        [
          'scenario',
          ...names.map((n) => `${n} CPU %`),
          ...peers.map((p) => `CPU ours / ${p}`),
          ...names.map((n) => `${n} p50/p99/max ms`),
          'achieved msgs/s',
        ],
        rate.map((sc) => {
          const ours = get(sc.id, 'pubsub');
          return [
            sc.label,
            ...names.map((n) => {
              const s = get(sc.id, n);
              return unavailable(s) ?? fix(s!.brokerPct, 0);
            }),
            ...peers.map((p) => ratio(unavailable(ours) ? null : ours?.brokerPct, get(sc.id, p)?.brokerPct)),
            ...names.map((n) => latencyCell(get(sc.id, n))),
            names
              .map((n) => get(sc.id, n))
              .filter((s) => s && !unavailable(s))
              .map((s) => int(s!.msgsPerSec))
              .join(' / ') || '-',
          ];
        }),
      ),
    );
    out.push('');
  }

  if (conn.length > 0) {
    out.push('## Connection storm (idle connections)');
    out.push('');
    out.push(
      'MQTT 3.1.1 CONNECT (clean session, keepalive 60 s), no subscription, opened 100 at a time by ' +
        'ceil(N/5000) worker processes from 100 loopback source addresses (127.0.0.2-101), held 3 s. ' +
        'RSS = VmRSS of the broker before and 3 s after (user space only); broker us/conn = broker CPU ' +
        'during the storm / connections; generator CPU = all workers, % of one core.',
    );
    out.push('');
    const rowsC: string[][] = [];
    for (const sc of conn) {
      for (const n of names) {
        const s = get(sc.id, n);
        const u = unavailable(s);
        const c = s?.conn;
        if (u !== undefined || c === undefined) {
          rowsC.push([int(sc.conns), n, u ?? 'failed', '', '', '', '', '', '', '', '']);
          continue;
        }
        rowsC.push([
          int(sc.conns),
          n,
          `${int(c.connected)} (${c.failed} failed${c.errors.length ? `: ${c.errors.slice(0, 3).join(', ')}` : ''})`,
          int(c.held),
          `${fix((c.rssBeforeKb ?? 0) / 1024, 1)} -> ${fix((c.rssAfterKb ?? 0) / 1024, 1)}`,
          fix(c.rssPerConnKb, 2),
          int(c.connPerSec),
          fix(c.brokerUsPerConn, 0),
          fix(c.brokerPct, 0),
          fix(c.generatorPct, 0),
          `${ms(c.p50)} / ${ms(c.p99)}`,
        ]);
      }
      const ours = get(sc.id, 'pubsub')?.conn;
      for (const p of peers) {
        const peer = get(sc.id, p)?.conn;
        if (ours && peer)
          rowsC.push([
            int(sc.conns),
            `ours / ${p}`,
            '',
            '',
            '',
            ratio(ours.rssPerConnKb, peer.rssPerConnKb),
            ratio(ours.connPerSec, peer.connPerSec),
            ratio(ours.brokerUsPerConn, peer.brokerUsPerConn),
            '',
            '',
            '',
          ]);
      }
    }
    out.push(
      table(
        [
          'connections',
          'broker',
          'connected',
          'held after 3 s',
          'RSS before -> after MB',
          'RSS / conn KB',
          'conn/s',
          'broker us / conn',
          'broker CPU %',
          'gen CPU %',
          'connect p50 / p99 ms',
        ],
        rowsC,
      ),
    );
    out.push('');
  }

  // ---- correctness ----
  out.push('## Correctness (checked during every run)');
  out.push('');
  const problems: string[] = [];
  const info: string[] = [];
  for (const s of summaries) {
    const sc = scenarios.find((x) => x.id === s.scenario)!;
    const what = `${s.scenario} / ${s.broker}`;
    if (s.misrouted) problems.push(`${what}: ${s.misrouted} misrouted`);
    if (s.outOfOrder) problems.push(`${what}: ${s.outOfOrder} out of order or duplicated`);
    if (s.lost && sc.qos > 0) problems.push(`${what}: ${s.lost} QoS 1 messages lost`);
    if (s.lost && sc.qos === 0)
      info.push(`${what}: ${s.lost} QoS 0 messages not delivered (allowed at QoS 0)`);
    if (s.missingPubacks) problems.push(`${what}: ${s.missingPubacks} PUBACKs missing`);
    if (s.duplicates && !s.outOfOrder) info.push(`${what}: ${s.duplicates} duplicate deliveries`);
    if (s.sessionResumed === false)
      problems.push(`${what}: persistent session not resumed (sessionPresent 0)`);
    if (s.skipped) info.push(`${what}: ${s.skipped} fixed-rate publishes skipped (publisher backlog)`);
    for (const n of s.notes) problems.push(`${what}: ${n}`);
  }
  if (problems.length === 0)
    out.push(
      'No QoS 1 loss, no misrouted message, no reordering per publisher, no missing PUBACK and no failed run ' +
        '(loss is sent - received per subscriber and stream after a drain; order from per-stream sequence numbers).',
    );
  else for (const p of problems) out.push(`- **${p}**`);
  for (const i of info) out.push(`- ${i}`);
  out.push('');

  // ---- notes ----
  out.push('## Notes');
  out.push('');
  for (const b of meta.brokers) {
    if (!b.available) {
      out.push(`- ${b.name}: ${b.note}`);
      continue;
    }
    out.push(`- ${b.name}: ${b.nagle}${b.ws ? '' : `; WebSocket rows: ${b.wsNote}`}.`);
  }
  out.push(
    '- Our broker runs with its default, TCP_NODELAY on, in every row, so in the default rows it is ' +
      'compared with peers that keep Nagle on; the `-nodelay` rows (`--nodelay`) turn TCP_NODELAY on in the peers too ' +
      '(like for like). Ours with `--tcp-nodelay false` is not benchmarked: see docs/performance.md.',
  );
  out.push(
    '- Load generator (bench/load.ts): raw sockets, our codec, its own WebSocket framing (one masked binary ' +
      `frame per write), TCP_NODELAY ${meta.generator.noDelay ? 'on' : 'off (Nagle)'} in its own sockets; ` +
      'closed loop with a window of messages in flight (fan-in/topics 1000, fan-out 20 for 100 receivers ' +
      `and 10 for 1000), up to 32 PUBLISH per write, freed slots refilled ${
        meta.generator.refill === 'turn' ? 'once per event-loop turn' : 'on every delivery'
      }.`,
  );
  if (ran.some((sc) => sc.group === 'persistent'))
    out.push(
      '- Persistent rows: subscriber with clean session 0, disconnected and reconnected (session resumed) ' +
        'before the run. Ours runs with a fresh --data-dir; mosquitto with persistence false (sessions in ' +
        'memory); aedes with its default in-memory persistence.',
    );
  const sat = summaries.filter((s) => s.genSaturated > 0);
  if (sat.length > 0)
    out.push(
      `- Generator above 90 % of a core in: ${sat.map((s) => `${s.scenario}/${s.broker} (${s.genSaturated}/${s.runs})`).join(', ')}.`,
    );
  const noisy = summaries.filter((s) => (s.otherPct ?? 0) > 25);
  if (noisy.length > 0)
    out.push(
      `- Other processes used > 25 % of a core (median) during: ${noisy
        .map((s) => `${s.scenario}/${s.broker} (${fix(s.otherPct, 0)} %)`)
        .join(', ')}; treat those figures with care.`,
    );
  out.push('');

  return { markdown: out.join('\n'), json: { meta, summaries, records } };
}
