/**
 * Clients and sessions: every session of one broker or of all of them (connected clients and
 * offline persistent sessions), with transport, address, protocol version, since, subscriptions,
 * in-flight and queued counts; a client's subscriptions on demand; Disconnect (the kick route:
 * MQTT 5 clients get DISCONNECT 0x98) and End session (`discard_session=true`). Routes:
 * docs/api.md#clients-and-retained-messages. The list is read again every 3 seconds while
 * "Live" is ticked.
 */
import { type ApiRecord, allBrokers, brokerPathOf, call } from './api.ts';
import { brokerSelect, confirmDialog, el, field, replace, statusLine } from './dom.ts';

const REFRESH_MS = 3000;
const ALL = '';
const PROTOCOLS: Record<number, string> = { 3: 'MQTT 3.1', 4: 'MQTT 3.1.1', 5: 'MQTT 5.0' };

export async function render(section: HTMLElement) {
  const tree = await allBrokers();
  const preferred = new URLSearchParams(location.search).get('broker') ?? ALL;
  const choice = brokerSelect(tree, preferred, {});
  choice.prepend(el('option', { value: ALL }, 'All brokers'));
  if (preferred === ALL) choice.value = ALL;
  const prefix = el('input', { type: 'search' });
  const live = el('input', { type: 'checkbox', checked: true });
  const status = statusLine();
  const table = el('div', { class: 'scroll' });
  const details = el('div');
  let turn = 0;

  function chosen() {
    if (choice.value !== ALL) return [choice.value];
    return tree.flatMap(({ namespace, brokers }) => brokers.map((b) => `${b.name}.${namespace.name}`));
  }

  function clientsPath(broker: string, rest = '') {
    return brokerPathOf(broker, `/clients${rest}`);
  }

  async function refresh() {
    const mine = ++turn;
    try {
      const brokers = chosen();
      const lists = await Promise.all(
        brokers.map((broker) =>
          call('GET', clientsPath(broker), { query: { client_id_prefix: prefix.value || undefined } }),
        ),
      );
      if (mine !== turn) return;
      const rows = lists.flatMap((list, i) =>
        list.map((client: ApiRecord) => ({ broker: brokers[i]!, client })),
      );
      replace(table, clientsTable(rows));
    } catch (err) {
      if (mine === turn) status.failed(err);
    }
  }

  async function act(done: string, work: () => Promise<unknown>) {
    status.clear();
    try {
      await work();
      status.ok(done);
    } catch (err) {
      status.failed(err);
    }
    await refresh();
  }

  function clientsTable(rows: { broker: string; client: ApiRecord }[]) {
    if (rows.length === 0)
      return el('p', { class: 'muted' }, 'No client is connected and no session is kept.');
    const head = [
      'Client id',
      'Broker',
      'State',
      'Transport',
      'Address',
      'Protocol',
      'Since',
      'Subscriptions',
      'In flight',
      'Queued',
      'Session expiry',
      '',
    ];
    return el(
      'table',
      { 'aria-label': 'Clients' },
      el(
        'thead',
        {},
        el(
          'tr',
          {},
          head.map((h) => el('th', {}, h)),
        ),
      ),
      el(
        'tbody',
        {},
        rows.map(({ broker, client: c }) =>
          el(
            'tr',
            {},
            el('td', { class: 'id' }, el('code', {}, c.client_id)),
            el('td', {}, broker),
            el('td', {}, c.connected ? 'connected' : 'offline'),
            el('td', {}, c.transport ?? ''),
            el('td', {}, c.remote_address === null ? '' : `${c.remote_address}:${c.remote_port}`),
            el('td', {}, PROTOCOLS[c.protocol_version] ?? String(c.protocol_version ?? '')),
            el('td', {}, c.connected_at ? when(c.connected_at) : ''),
            el('td', { class: 'num' }, String(c.subscription_count)),
            el('td', { class: 'num' }, String(c.inflight)),
            el('td', { class: 'num' }, String(c.queued)),
            el('td', {}, sessionExpiry(c)),
            el('td', { class: 'actions' }, actions(broker, c)),
          ),
        ),
      ),
    );
  }

  /** A time: the clock time alone when it is today. */
  function when(iso: string) {
    const date = new Date(iso);
    return date.toDateString() === new Date().toDateString()
      ? date.toLocaleTimeString()
      : date.toLocaleString();
  }

  function sessionExpiry(c: ApiRecord) {
    if (c.session_expiry_interval === 0) return 'with the connection';
    if (c.session_expiry_interval === 0xffffffff) return 'never';
    if (c.session_expires_at) return `at ${when(c.session_expires_at)}`;
    return `${c.session_expiry_interval} s after disconnect`;
  }

  function actions(broker: string, c: ApiRecord) {
    const id = c.client_id;
    return [
      el(
        'button',
        {
          type: 'button',
          'aria-label': `Subscriptions of ${id}`,
          onclick: () => showDetails(broker, id),
        },
        'Subscriptions',
      ),
      c.connected
        ? el(
            'button',
            {
              type: 'button',
              'aria-label': `Disconnect ${id}`,
              onclick: () =>
                act(`${id} disconnected.`, () =>
                  call('DELETE', clientsPath(broker), { query: { client_id: id } }),
                ),
            },
            'Disconnect',
          )
        : null,
      c.session_expiry_interval === 0
        ? null
        : el(
            'button',
            {
              type: 'button',
              class: 'danger',
              'aria-label': `End session of ${id}`,
              onclick: async () => {
                const lines = [
                  `The session of ${id} on ${broker} ends${c.connected ? ' and its connection is closed' : ''}.`,
                  'Its subscriptions and queued messages are dropped; a will waiting for its delay is published now.',
                ];
                if (!(await confirmDialog(`End the session of ${id}?`, lines, 'End session'))) return;
                await act(`The session of ${id} ended.`, () =>
                  call('DELETE', clientsPath(broker), { query: { client_id: id, discard_session: true } }),
                );
              },
            },
            'End session',
          ),
    ];
  }

  async function showDetails(broker: string, id: string) {
    try {
      // The query form takes any client id (a path segment cannot carry `/`, `..` or 101+ characters).
      const client = await call('GET', brokerPathOf(broker, '/client'), { query: { client_id: id } });
      replace(
        details,
        el(
          'section',
          { class: 'card', 'aria-label': `Subscriptions of ${id}` },
          el('h2', {}, `Subscriptions of ${id} (${broker})`),
          client.subscriptions.length === 0
            ? el('p', { class: 'muted' }, 'None.')
            : el(
                'table',
                { 'aria-label': `Subscription list of ${id}` },
                el(
                  'thead',
                  {},
                  el(
                    'tr',
                    {},
                    [
                      'Filter',
                      'QoS',
                      'No local',
                      'Retain as published',
                      'Retain handling',
                      'Subscription id',
                    ].map((h) => el('th', {}, h)),
                  ),
                ),
                el(
                  'tbody',
                  {},
                  client.subscriptions.map((s: ApiRecord) =>
                    el(
                      'tr',
                      {},
                      el('td', {}, el('code', {}, s.filter)),
                      el('td', {}, String(s.qos)),
                      el('td', {}, s.no_local ? 'yes' : 'no'),
                      el('td', {}, s.retain_as_published ? 'yes' : 'no'),
                      el('td', {}, String(s.retain_handling)),
                      el('td', {}, s.subscription_id === null ? '' : String(s.subscription_id)),
                    ),
                  ),
                ),
              ),
        ),
      );
    } catch (err) {
      status.failed(err);
    }
  }

  choice.addEventListener('change', () => {
    const url = new URL(location.href);
    if (choice.value === ALL) url.searchParams.delete('broker');
    else url.searchParams.set('broker', choice.value);
    history.replaceState(null, '', url);
    details.replaceChildren();
    refresh();
  });
  prefix.addEventListener('input', refresh);

  section.append(
    el(
      'div',
      { class: 'row' },
      field('Broker', choice),
      field('Client id prefix', prefix),
      el('label', { class: 'check' }, live, 'Live'),
      el('button', { type: 'button', onclick: refresh }, 'Refresh'),
    ),
    status.node,
    table,
    details,
  );
  await refresh();
  const timer = setInterval(() => {
    if (live.checked) refresh();
  }, REFRESH_MS);
  return () => clearInterval(timer);
}
