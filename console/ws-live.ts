/**
 * Live views of what a WebSocket client connection received:
 * - topicTree(): the topic levels seen, each with how many messages arrived at or below it and
 *   the last payload of a topic; choosing a topic charts it.
 * - liveChart(): a uPlot line chart of one topic whose payloads are numbers, or JSON objects with
 *   a numeric field the user names (a dotted path: `temp` or `sensor.value`). uPlot is loaded the
 *   first time a value is charted. The last KEPT_POINTS values are kept.
 * Both record on every message and draw only when asked (the connection batches redraws).
 */
import type uPlot from 'uplot';
import { el, field, loadUPlot, replace } from './dom.ts';
import { text } from './payload.ts';

const KEPT_POINTS = 600;
const SHOWN_CHILDREN = 200;
const PREVIEW_CHARS = 60;
/** Most topic levels the tree holds: a busy `#` subscription must not grow the page without end. */
const MAX_NODES = 10_000;

interface TopicNode {
  children: Map<string, TopicNode>;
  count: number;
  last: Uint8Array | undefined;
}

export function topicTree(onPick: (topic: string) => void) {
  const root: TopicNode = { children: new Map(), count: 0, last: undefined };
  const list = el('div');
  const node = el(
    'section',
    { class: 'card live-tree', role: 'region', 'aria-label': 'Topic tree' },
    el('h3', {}, 'Topic tree'),
    list,
  );
  let changed = false;
  let nodes = 0;

  function record(topic: string, bytes: Uint8Array) {
    let at = root;
    at.count++;
    for (const level of topic.split('/')) {
      let next = at.children.get(level);
      if (!next) {
        if (nodes >= MAX_NODES) return; // full: new topics are counted at their known parent only
        nodes++;
        next = { children: new Map(), count: 0, last: undefined };
        at.children.set(level, next);
      }
      next.count++;
      at = next;
    }
    at.last = bytes;
    changed = true;
  }

  function branch(at: TopicNode, prefix: string | null): HTMLElement {
    const entries = [...at.children];
    return el(
      'ul',
      {},
      entries.slice(0, SHOWN_CHILDREN).map(([level, child]): HTMLElement => {
        const topic = prefix === null ? level : `${prefix}/${level}`;
        const preview = child.last === undefined ? '' : text(child.last).slice(0, PREVIEW_CHARS);
        return el(
          'li',
          { 'aria-label': `${topic}: ${child.count}` },
          child.last === undefined
            ? el('code', {}, level === '' ? '(empty)' : level)
            : el(
                'button',
                { type: 'button', class: 'link', title: `Chart ${topic}`, onclick: () => onPick?.(topic) },
                level === '' ? '(empty)' : level,
              ),
          el('span', { class: 'muted' }, ` ${child.count}`),
          preview === '' ? null : el('span', { class: 'preview' }, ` ${preview}`),
          child.children.size === 0 ? null : branch(child, topic),
        );
      }),
      entries.length > SHOWN_CHILDREN
        ? el('li', { class: 'muted' }, `… ${entries.length - SHOWN_CHILDREN} more`)
        : null,
    );
  }

  function draw() {
    if (!changed) return;
    changed = false;
    replace(
      list,
      branch(root, null),
      nodes >= MAX_NODES
        ? el('p', { class: 'muted' }, `The tree is full (${MAX_NODES} levels): Clear tree to start again.`)
        : null,
    );
  }

  function clear() {
    root.children.clear();
    root.count = 0;
    nodes = 0;
    changed = true;
    draw();
  }

  replace(list, el('p', { class: 'muted' }, 'Nothing arrived yet.'));
  node.append(el('button', { type: 'button', onclick: clear }, 'Clear tree'));
  return { node, record, draw };
}

/** The number in a payload: the payload itself, or the field at `path` of its JSON. */
export function numberIn(bytes: Uint8Array, path: string): number | undefined {
  const payload = text(bytes).trim();
  if (path === '') return payload === '' ? undefined : finite(Number(payload));
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return undefined;
  }
  for (const key of path.split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  if (typeof value === 'number') return finite(value);
  if (typeof value === 'string' && value.trim() !== '') return finite(Number(value));
  return undefined;
}

function finite(n: number): number | undefined {
  return Number.isFinite(n) ? n : undefined;
}

export function liveChart() {
  const topic = el('input', { type: 'text', placeholder: 'sensors/kitchen/temp' });
  const path = el('input', { type: 'text', placeholder: 'empty: the payload is a number' });
  const summary = el('p', { class: 'muted', 'aria-live': 'polite' }, 'Name a topic to chart its values.');
  const box = el('div', { class: 'chart' });
  const node = el(
    'section',
    { class: 'card', role: 'region', 'aria-label': 'Chart' },
    el('h3', {}, 'Chart'),
    el(
      'div',
      { class: 'row' },
      field('Chart topic', topic, 'one topic, as it arrives'),
      field('Numeric field', path, 'JSON: a dotted path, such as temp or sensor.value'),
    ),
    summary,
    box,
  );
  const times: number[] = [];
  const values: number[] = [];
  let skipped = 0;
  let changed = false;
  let plot: uPlot | undefined;
  let loading: Promise<void> | undefined;

  function reset() {
    times.length = 0;
    values.length = 0;
    skipped = 0;
    changed = true;
    draw();
  }
  topic.addEventListener('change', reset);
  path.addEventListener('change', reset);

  function record(name: string, bytes: Uint8Array) {
    if (name !== topic.value || topic.value === '') return;
    const value = numberIn(bytes, path.value.trim());
    changed = true;
    if (value === undefined) {
      skipped++;
      return;
    }
    times.push(Date.now() / 1000);
    values.push(value);
    if (times.length > KEPT_POINTS) {
      times.shift();
      values.shift();
    }
  }

  function draw() {
    if (!changed) return;
    changed = false;
    if (topic.value === '') {
      summary.textContent = 'Name a topic to chart its values.';
      return;
    }
    summary.textContent =
      values.length === 0
        ? `No number from ${topic.value} yet${skipped > 0 ? ` (${skipped} payloads without one)` : ''}.`
        : `${values.length} points from ${topic.value}, last ${values.at(-1)}${skipped > 0 ? `; ${skipped} payloads without a number skipped` : ''}.`;
    if (plot) plot.setData([times.slice(), values.slice()]);
    else if (values.length > 0) create();
  }

  function create() {
    if (loading) return;
    loading = loadUPlot().then((uPlot) => {
      const axis = { stroke: getComputedStyle(document.body).color };
      plot = new uPlot(
        {
          width: Math.max(280, box.clientWidth),
          height: 220,
          axes: [axis, axis],
          series: [{}, { label: 'value', stroke: '#2f9e6e', width: 2, points: { show: true, size: 4 } }],
        },
        [times.slice(), values.slice()],
        box,
      );
    });
  }

  return {
    node,
    record,
    draw,
    /** Charts `name` from now on (the tree's choice). */
    show(name: string) {
      topic.value = name;
      reset();
      topic.focus();
    },
    close() {
      plot?.destroy();
    },
  };
}
