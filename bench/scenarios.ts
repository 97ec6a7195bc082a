/**
 * The scenario matrix. Every scenario id names its shape, QoS, payload size and transport,
 * e.g. `fanin-q0-64B`, `fanout100-q1-1KB-ws`, `rate10k-q0-64B-nodelay`, `conn-19900`.
 *
 * - fanin: 10 publishers -> 1 subscriber on one topic, window 1000 in flight in total.
 * - fanout100 / fanout1000: 1 publisher -> N subscribers, window 20 / 10 publishes.
 * - topics: 1000 subscribers each on its own topic dev/<i>/temp (the first 10 % on
 *   dev/<i>/+), 1 monitor on dev/+/temp, 1 publisher round-robin over the topics, window 1000.
 * - rate10k: fan-in at a fixed 10,000 msgs/s, one PUBLISH per write (latency and CPU rows).
 * - persistent: fan-in QoS 1 into a subscriber with a persistent session (clean session 0,
 *   disconnected and resumed before the run).
 * - conn: connection storm, N idle connections.
 *
 * The default run takes the `core` subset (fits in ~20 minutes with 3 repetitions); `--all`
 * takes the whole cross product; `--quick` a smoke subset; `--nodelay` adds the `-nodelay` rows
 * (peers with TCP_NODELAY on).
 */
import type { QoS } from '../src/protocol/index.ts';
import type { LoadParams } from './load.ts';

export type Group = 'fanin' | 'fanout100' | 'fanout1000' | 'topics' | 'rate10k' | 'persistent' | 'conn';

export interface Scenario {
  id: string;
  group: Group;
  label: string;
  transport: 'tcp' | 'ws';
  /** Peers run with TCP_NODELAY on (ours always has it on). */
  noDelay: boolean;
  qos: QoS;
  size: number;
  load?: Omit<LoadParams, 'url' | 'brokerPid' | 'durationS' | 'warmupS'>;
  conns?: number;
  core: boolean;
  quick: boolean;
}

const GROUP_LABEL: Record<Group, string> = {
  fanin: 'fan-in 10→1',
  fanout100: 'fan-out 1→100',
  fanout1000: 'fan-out 1→1000',
  topics: '1000 topics + wildcards',
  rate10k: 'fixed 10k msgs/s',
  persistent: 'persistent QoS 1 fan-in',
  conn: 'connection storm',
};

const sizeTag = (size: number): string => (size >= 1024 ? `${size / 1024}KB` : `${size}B`);
const sizeLabel = (size: number): string => (size >= 1024 ? `${size / 1024} KB` : `${size} B`);

function loadFor(group: Group, qos: QoS, size: number): Scenario['load'] {
  switch (group) {
    case 'fanin':
      return { scenario: 'fanin', pubs: 10, subs: 1, qos, size, window: 1000, batch: 32 };
    case 'persistent':
      return { scenario: 'persistent', pubs: 10, subs: 1, qos, size, window: 1000, batch: 32 };
    case 'fanout100':
      return { scenario: 'fanout', pubs: 1, subs: 100, qos, size, window: 20, batch: 32 };
    case 'fanout1000':
      return { scenario: 'fanout', pubs: 1, subs: 1000, qos, size, window: 10, batch: 32 };
    case 'topics':
      return {
        scenario: 'topics',
        pubs: 1,
        subs: 1000,
        qos,
        size,
        window: 1000,
        batch: 32,
        wildFrac: 0.1,
        monitors: 1,
      };
    case 'rate10k':
      return { scenario: 'fanin', pubs: 10, subs: 1, qos, size, window: 1000, batch: 1, rate: 10_000 };
    case 'conn':
      return undefined;
  }
}

/** Scenario ids in the default (full) run. */
const CORE = new Set([
  'fanin-q0-64B',
  'fanin-q0-1KB',
  'fanin-q1-64B',
  'fanin-q1-1KB',
  'fanin-q0-64B-ws',
  'fanin-q0-1KB-ws',
  'fanin-q1-64B-ws',
  'fanin-q1-1KB-ws',
  'fanout100-q0-64B',
  'fanout100-q0-1KB',
  'fanout100-q1-64B',
  'fanout100-q0-64B-ws',
  'fanout1000-q0-64B',
  'fanout1000-q1-64B',
  'topics-q0-64B',
  'topics-q1-64B',
  'topics-q0-64B-ws',
  'rate10k-q0-64B',
  'rate10k-q1-64B',
  'rate10k-q0-64B-ws',
  'persistent-q1-64B',
  'persistent-q1-1KB',
  'persistent-q1-64B-ws',
  'conn-10000',
  'conn-19900',
  // with --nodelay
  'fanin-q0-64B-nodelay',
  'fanin-q1-64B-nodelay',
  'rate10k-q0-64B-nodelay',
  'rate10k-q1-64B-nodelay',
  'fanout100-q0-64B-nodelay',
  'fanin-q0-64B-ws-nodelay',
]);

const QUICK = new Set([
  'fanin-q0-64B',
  'fanin-q1-64B',
  'fanin-q0-64B-ws',
  'fanout100-q0-64B',
  'topics-q0-64B',
  'rate10k-q0-64B',
  'persistent-q1-64B',
  'conn-2000',
  'fanin-q0-64B-nodelay',
]);

/** Where Nagle matters: rows repeated with TCP_NODELAY on in the peers. */
const NODELAY = new Set([
  'fanin-q0-64B',
  'fanin-q1-64B',
  'rate10k-q0-64B',
  'rate10k-q1-64B',
  'fanout100-q0-64B',
  'fanin-q0-64B-ws',
]);

export function allScenarios(): Scenario[] {
  const out: Scenario[] = [];
  const add = (s: Omit<Scenario, 'core' | 'quick'>): void => {
    out.push({ ...s, core: CORE.has(s.id), quick: QUICK.has(s.id) });
  };
  const groups: Group[] = ['fanin', 'fanout100', 'fanout1000', 'topics', 'rate10k', 'persistent'];
  for (const group of groups) {
    for (const transport of ['tcp', 'ws'] as const) {
      for (const qos of [0, 1] as const) {
        if (group === 'persistent' && qos === 0) continue;
        for (const size of [64, 1024]) {
          const base = `${group}-q${qos}-${sizeTag(size)}${transport === 'ws' ? '-ws' : ''}`;
          const label = `${GROUP_LABEL[group]}, QoS ${qos}, ${sizeLabel(size)}${transport === 'ws' ? ', WS' : ''}`;
          const load = loadFor(group, qos, size);
          add({ id: base, group, label, transport, noDelay: false, qos, size, ...(load ? { load } : {}) });
          if (NODELAY.has(base))
            add({
              id: `${base}-nodelay`,
              group,
              label: `${label}, nodelay`,
              transport,
              noDelay: true,
              qos,
              size,
              ...(load ? { load } : {}),
            });
        }
      }
    }
  }
  for (const conns of [2000, 10_000, 19_900])
    add({
      id: `conn-${conns}`,
      group: 'conn',
      label: `${GROUP_LABEL.conn}, ${conns.toLocaleString('en-US')} connections`,
      transport: 'tcp',
      noDelay: false,
      qos: 0,
      size: 0,
      conns,
    });
  return out;
}

export interface Selection {
  quick: boolean;
  all: boolean;
  nodelay: boolean;
  only?: RegExp;
}

export function selectScenarios(sel: Selection): Scenario[] {
  return allScenarios().filter((s) => {
    if (s.noDelay && !sel.nodelay) return false;
    if (sel.only)
      return sel.only.test(s.id) && (s.id !== 'conn-2000' || sel.quick || /2000/.test(String(sel.only)));
    if (sel.quick) return s.quick;
    if (sel.all) return s.id !== 'conn-2000';
    return s.core;
  });
}
