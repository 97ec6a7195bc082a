/**
 * A broker's retained messages: listed by an MQTT topic filter (as a subscription would match,
 * so `#` does not reach `$` topics), with a tree of the topic levels found (choosing a level
 * lists what is under it), each payload shown as text, pretty-printed JSON or hex (binary), and
 * Delete (which publishes nothing). Routes: docs/api.md#clients-and-retained-messages.
 */
import { type ApiRecord, allBrokers, brokerPathOf, call } from './api.ts';
import { brokerSelect, confirmDialog, el, field, replace, select, statusLine } from './dom.ts';
import { formatPayload, fromBase64 } from './payload.ts';

const PER_PAGE = 1000;
const PAYLOAD_BYTES = 65536;

export async function render(section: HTMLElement) {
  const tree = await allBrokers();
  const params = new URLSearchParams(location.search);
  const choice = brokerSelect(tree, params.get('broker') ?? 'default.local', {});
  const filter = el('input', { type: 'text', required: true, value: params.get('filter') ?? '#' });
  const view = select(
    [
      ['auto', 'Auto'],
      ['text', 'Text'],
      ['json', 'JSON'],
      ['hex', 'Hex'],
    ],
    {},
  );
  const status = statusLine();
  const levels = el('nav', { class: 'topic-tree', 'aria-label': 'Topic tree' });
  const list = el('div', { class: 'retained-list' });
  let shown: ApiRecord[] = [];

  const path = (rest = '') => brokerPathOf(choice.value, rest);

  async function load() {
    status.clear();
    const url = new URL(location.href);
    url.searchParams.set('broker', choice.value);
    url.searchParams.set('filter', filter.value);
    history.replaceState(null, '', url);
    try {
      shown = await call('GET', path('/retained'), {
        query: { filter: filter.value, payload: true, payload_bytes: PAYLOAD_BYTES, per_page: PER_PAGE },
      });
      if (shown.length === PER_PAGE)
        status.ok(`The first ${PER_PAGE} matches: narrow the filter to see others.`);
    } catch (err) {
      shown = [];
      status.failed(err);
    }
    draw();
  }

  function draw() {
    replace(levels, el('h2', {}, 'Topic tree'), topicTree(shown.map((m) => m.topic)));
    replace(
      list,
      shown.length === 0
        ? el('p', { class: 'muted' }, `No retained message matches ${filter.value}.`)
        : el('ol', { class: 'messages', 'aria-label': 'Retained messages' }, shown.map(item)),
    );
  }

  /** Nested lists of topic levels; each level is a button that lists `<level>/#`. */
  type Level = Map<string, Level>;
  function topicTree(topics: string[]) {
    const root: Level = new Map();
    for (const topic of topics) {
      let node = root;
      for (const level of topic.split('/')) {
        if (!node.has(level)) node.set(level, new Map());
        node = node.get(level)!;
      }
    }
    const branch = (node: Level, prefix: string | null): HTMLElement =>
      el(
        'ul',
        {},
        [...node].map(([level, children]): HTMLElement => {
          const name = prefix === null ? level : `${prefix}/${level}`;
          return el(
            'li',
            {},
            el(
              'button',
              {
                type: 'button',
                class: 'link',
                'aria-label': `Topic level ${name}`,
                onclick: () => {
                  filter.value = children.size === 0 ? name : `${name}/#`;
                  load();
                },
              },
              level === '' ? '(empty)' : level,
            ),
            children.size === 0 ? null : branch(children, name),
          );
        }),
      );
    return topics.length === 0 ? el('p', { class: 'muted' }, 'Nothing here.') : branch(root, null);
  }

  function item(m: ApiRecord) {
    const properties = m.properties && Object.keys(m.properties).length > 0 ? m.properties : null;
    return el(
      'li',
      { 'aria-label': m.topic },
      el(
        'div',
        { class: 'row spread' },
        el(
          'div',
          { class: 'meta' },
          el('code', { class: 'topic' }, m.topic),
          ` QoS ${m.qos} ${m.payload_size} B, stored ${new Date(m.stored_at).toLocaleString()}`,
          m.expires_at ? `, expires ${new Date(m.expires_at).toLocaleString()}` : '',
          m.payload_truncated ? ` (first ${PAYLOAD_BYTES} B shown)` : '',
          properties ? el('span', { class: 'props' }, ` ${JSON.stringify(properties)}`) : null,
        ),
        el(
          'button',
          {
            type: 'button',
            class: 'danger',
            'aria-label': `Delete retained ${m.topic}`,
            onclick: async () => {
              const lines = [
                `The retained message of ${m.topic} on ${choice.value} is deleted.`,
                'Nothing is sent to subscribers; new subscribers no longer receive it.',
              ];
              if (!(await confirmDialog(`Delete the retained message of ${m.topic}?`, lines, 'Delete')))
                return;
              try {
                await call('DELETE', path('/retained'), { query: { topic: m.topic } });
                await load();
                status.ok(`Retained message of ${m.topic} deleted.`);
              } catch (err) {
                status.failed(err);
              }
            },
          },
          'Delete',
        ),
      ),
      el('pre', { class: 'payload' }, formatPayload(fromBase64(m.payload ?? ''), view.value)),
    );
  }

  const form = el(
    'form',
    { class: 'card row', 'aria-label': 'Find retained messages' },
    field('Broker', choice),
    field('Topic filter', filter, 'an MQTT filter: # for all, sensors/+/temp'),
    field('Payload view', view),
    el('button', { type: 'submit' }, 'List'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    load();
  });
  choice.addEventListener('change', load);
  view.addEventListener('change', draw);

  section.append(form, status.node, el('div', { class: 'split' }, levels, list));
  await load();
}
