/**
 * Overview: connections and messages per second (in, out, dropped), in total or for one broker,
 * as live uPlot charts, and each broker's figures now. Polls `GET .../pubsub/stats` every
 * POLL_MS (counters since start; rates are differences between two answers); keeps the last
 * KEPT_SAMPLES. uPlot is loaded with this page, the first time it is opened. The figures are
 * the answering node's; in a cluster (`GET /cluster`, operator tokens) a table gives each
 * node's connections and link too.
 */
import type uPlot from 'uplot';
import { type ApiRecord, accountId, call } from './api.ts';
import { el, field, loadUPlot, replace, statusLine } from './dom.ts';

const POLL_MS = 2000;
const KEPT_SAMPLES = 150;
const ALL = '';

export async function render(section: HTMLElement) {
  const uPlot = await loadUPlot();

  const choice = el('select', {}, el('option', { value: ALL }, 'All brokers'));
  const status = statusLine();
  const messagesBox = el('div', { class: 'chart' });
  const connectionsBox = el('div', { class: 'chart' });
  const table = el('tbody');
  const nodesTable = el('tbody');
  const nodesCard = el(
    'section',
    { class: 'card', 'aria-labelledby': 'nodes-now-title', hidden: true },
    el('h2', { id: 'nodes-now-title' }, 'Nodes now'),
    el(
      'table',
      { 'aria-label': 'Nodes now' },
      el(
        'thead',
        {},
        el(
          'tr',
          {},
          ['Node', 'Connections', 'Link'].map((h) => el('th', {}, h)),
        ),
      ),
      nodesTable,
    ),
  );
  let clustered = true; // until GET /cluster says otherwise (or refuses this token)
  section.append(
    status.node,
    field('Chart', choice),
    el(
      'div',
      { class: 'charts' },
      el('figure', { class: 'card' }, el('figcaption', {}, 'Messages per second'), messagesBox),
      el('figure', { class: 'card' }, el('figcaption', {}, 'Connections'), connectionsBox),
    ),
    el(
      'section',
      { class: 'card', 'aria-labelledby': 'now-title' },
      el('h2', { id: 'now-title' }, 'Brokers now'),
      el(
        'table',
        { 'aria-label': 'Brokers now' },
        el(
          'thead',
          {},
          el(
            'tr',
            {},
            ['Broker', 'Connections', 'In /s', 'Out /s', 'Dropped /s'].map((h) => el('th', {}, h)),
          ),
        ),
        table,
      ),
    ),
    nodesCard,
  );

  /** Per broker (and ALL): time (s), in/s, out/s, dropped/s, connections. */
  const series = new Map();
  let previous: { t: number; brokers: Map<string, ApiRecord> } | undefined;
  let charts: uPlot[] = [];

  function seriesOf(name: string): number[][] {
    if (!series.has(name)) series.set(name, [[], [], [], [], []]);
    return series.get(name);
  }

  function colours() {
    const style = getComputedStyle(document.documentElement);
    return { text: style.getPropertyValue('--text').trim(), line: style.getPropertyValue('--line').trim() };
  }

  function draw() {
    for (const chart of charts) chart.destroy();
    const { text, line } = colours();
    const axes = [
      { stroke: text, grid: { stroke: line }, ticks: { stroke: line } },
      { stroke: text, grid: { stroke: line }, ticks: { stroke: line } },
    ];
    const width = Math.max(280, messagesBox.clientWidth);
    const data = seriesOf(choice.value);
    charts = [
      new uPlot(
        {
          width,
          height: 220,
          axes,
          series: [
            {},
            { label: 'In', stroke: '#3b82f6', width: 2 },
            { label: 'Out', stroke: '#22a06b', width: 2 },
            { label: 'Dropped', stroke: '#e5484d', width: 2 },
          ],
        },
        [data[0], data[1], data[2], data[3]],
        messagesBox,
      ),
      new uPlot(
        {
          width,
          height: 220,
          axes,
          series: [{}, { label: 'Connections', stroke: '#a855f7', width: 2 }],
        },
        [data[0], data[4]],
        connectionsBox,
      ),
    ];
  }

  function update() {
    const data = seriesOf(choice.value);
    charts[0]?.setData([data[0], data[1], data[2], data[3]]);
    charts[1]?.setData([data[0], data[4]]);
  }

  async function poll() {
    let now: ApiRecord;
    try {
      now = await call('GET', `/client/v4/accounts/${accountId()}/pubsub/stats`);
      status.clear();
    } catch (err) {
      status.error(`Could not read the figures: ${(err as Error).message}`);
      return;
    }
    const t = Date.parse(now.time) / 1000;
    const total = { connections: 0, in: 0, out: 0, dropped: 0 };
    const rows: [string, typeof total][] = [];
    for (const b of now.brokers) {
      const name = `${b.broker}.${b.namespace}`;
      const before = previous?.brokers.get(name);
      const dt = previous ? t - previous.t : 0;
      const rate = (counter: string) =>
        before && dt > 0 ? Math.max(0, (b[counter] - before[counter]) / dt) : 0;
      const figures = {
        connections: b.connections,
        in: rate('messages_received'),
        out: rate('messages_sent'),
        dropped: rate('messages_dropped'),
      };
      for (const key of Object.keys(total) as (keyof typeof total)[]) total[key] += figures[key];
      if (previous) push(name, t, figures);
      rows.push([name, figures]);
      if (![...choice.options].some((o) => o.value === name))
        choice.append(el('option', { value: name }, name));
    }
    if (previous) push(ALL, t, total);
    previous = { t, brokers: new Map(now.brokers.map((b: ApiRecord) => [`${b.broker}.${b.namespace}`, b])) };
    replace(
      table,
      rows.map(([name, f]) =>
        el(
          'tr',
          {},
          el('td', {}, name),
          el('td', {}, String(f.connections)),
          el('td', {}, f.in.toFixed(1)),
          el('td', {}, f.out.toFixed(1)),
          el('td', {}, f.dropped.toFixed(1)),
        ),
      ),
    );
    update();
    if (clustered) await pollNodes();
  }

  async function pollNodes() {
    let cluster: ApiRecord;
    try {
      cluster = await call('GET', '/cluster');
    } catch {
      clustered = false; // not an operator token: the page shows this node's figures only
      return;
    }
    clustered = cluster.enabled;
    nodesCard.hidden = !clustered;
    replace(
      nodesTable,
      cluster.nodes.map((n: ApiRecord) =>
        el(
          'tr',
          {},
          el('td', {}, n.self ? `${n.name} (this node)` : n.name),
          el('td', {}, n.connections === null ? '—' : String(n.connections)),
          el('td', { class: `link-${n.link}` }, n.link),
        ),
      ),
    );
  }

  function push(
    name: string,
    t: number,
    f: { connections: number; in: number; out: number; dropped: number },
  ) {
    const data = seriesOf(name);
    const values = [t, f.in, f.out, f.dropped, f.connections];
    for (let i = 0; i < values.length; i++) {
      data[i].push(values[i]);
      if (data[i].length > KEPT_SAMPLES) data[i].shift();
    }
  }

  choice.addEventListener('change', draw);
  const scheme = matchMedia('(prefers-color-scheme: dark)');
  scheme.addEventListener('change', draw);
  const resized = () => {
    const width = Math.max(280, messagesBox.clientWidth);
    for (const chart of charts) chart.setSize({ width, height: 220 });
  };
  window.addEventListener('resize', resized);
  draw();
  await poll();
  const timer = setInterval(poll, POLL_MS);
  return () => {
    clearInterval(timer);
    scheme.removeEventListener('change', draw);
    window.removeEventListener('resize', resized);
    for (const chart of charts) chart.destroy();
  };
}
