/**
 * Namespaces and brokers: list, create, edit, delete (with a confirmation naming what goes),
 * and each broker's MQTT/WebSocket/TLS endpoints ready to copy. Routes: docs/api.md.
 */
import { type ApiRecord, allBrokers, type BrokerTree, brokerPath, call, ns } from './api.ts';
import { confirmDialog, copyable, el, field, replace, select, statusLine } from './dom.ts';

const AUTH_TYPES: [string][] = [['TOKEN'], ['NONE'], ['MTLS'], ['MTLS_AND_TOKEN']];

export async function render(section: HTMLElement) {
  const status = statusLine();
  const list = el('div', { class: 'broker-list' });
  const namespaceChoice = select([], { name: 'namespace' });

  async function refresh() {
    const tree = await allBrokers();
    replace(
      namespaceChoice,
      tree.map(({ namespace }) => el('option', { value: namespace.name }, namespace.name)),
    );
    replace(
      list,
      tree.length === 0 ? el('p', { class: 'muted' }, 'No namespaces yet.') : tree.map(namespaceCard),
    );
  }

  async function act(doing: string, work: () => Promise<unknown>) {
    status.clear();
    try {
      await work();
      status.ok(doing);
      await refresh();
    } catch (err) {
      status.failed(err);
    }
  }

  function namespaceCard({ namespace, brokers }: BrokerTree[number]) {
    return el(
      'section',
      { class: 'card', 'aria-label': `Namespace ${namespace.name}` },
      el(
        'div',
        { class: 'row spread' },
        el('h2', {}, `Namespace ${namespace.name}`),
        el(
          'button',
          {
            type: 'button',
            class: 'danger',
            'aria-label': `Delete namespace ${namespace.name}`,
            onclick: async () => {
              const lines =
                brokers.length === 0
                  ? [`The namespace ${namespace.name} is deleted. It holds no brokers.`]
                  : [
                      `The namespace ${namespace.name} is deleted with its ${brokers.length} broker(s): ${brokers.map((b) => b.name).join(', ')}.`,
                      'Their clients are disconnected; their keys, client credentials, sessions and retained messages are deleted.',
                    ];
              if (!(await confirmDialog(`Delete namespace ${namespace.name}?`, lines, 'Delete namespace')))
                return;
              await act(`Namespace ${namespace.name} deleted.`, () =>
                call('DELETE', ns(`/${encodeURIComponent(namespace.name)}`), { query: { cascade: true } }),
              );
            },
          },
          'Delete namespace',
        ),
      ),
      namespace.description ? el('p', { class: 'muted' }, namespace.description) : null,
      brokers.length === 0
        ? el('p', { class: 'muted' }, 'No brokers.')
        : brokers.map((broker) => brokerCard(namespace.name, broker)),
    );
  }

  function brokerCard(namespace: string, broker: ApiRecord) {
    const name = `${broker.name}.${namespace}`;
    const editor = el('div');
    return el(
      'article',
      { class: 'broker', 'aria-label': `Broker ${name}` },
      el(
        'div',
        { class: 'row spread' },
        el('h3', {}, name),
        el(
          'span',
          { class: 'row' },
          el(
            'button',
            {
              type: 'button',
              'aria-label': `Edit broker ${name}`,
              onclick: () => replace(editor, editForm(namespace, broker, editor)),
            },
            'Edit',
          ),
          el(
            'button',
            {
              type: 'button',
              class: 'danger',
              'aria-label': `Delete broker ${name}`,
              onclick: async () => {
                const lines = [
                  `The broker ${name} is deleted.`,
                  'Its connected clients are disconnected (reason 0x98); its signing keys, issued client tokens, revocations, sessions, retained messages and on-publish hook are deleted.',
                ];
                if (!(await confirmDialog(`Delete broker ${name}?`, lines, 'Delete broker'))) return;
                await act(`Broker ${name} deleted.`, () =>
                  call('DELETE', brokerPath(namespace, broker.name)),
                );
              },
            },
            'Delete',
          ),
        ),
      ),
      el(
        'dl',
        { class: 'facts' },
        el('dt', {}, 'Authentication'),
        el('dd', {}, broker.authType),
        el('dt', {}, 'Credential lifetime'),
        el('dd', {}, broker.expiration === null ? 'none' : `${broker.expiration} s`),
        el('dt', {}, 'MQTT user name'),
        el('dd', {}, copyable(`MQTT user name of ${name}`, broker.mqtt_username)),
        broker.on_publish?.url
          ? [
              el('dt', {}, 'On-publish webhook'),
              el('dd', {}, `${broker.on_publish.url} (${broker.on_publish.policy})`),
            ]
          : null,
        Object.entries(broker.endpoints).map(([kind, url]) => [
          el('dt', {}, `${kind} endpoint`),
          el('dd', {}, copyable(`${kind} endpoint of ${name}`, String(url))),
        ]),
        broker.description ? [el('dt', {}, 'Description'), el('dd', {}, broker.description)] : null,
      ),
      editor,
    );
  }

  function editForm(namespace: string, broker: ApiRecord, container: HTMLElement) {
    const description = el('input', { type: 'text', value: broker.description });
    const authType = select(AUTH_TYPES, {});
    authType.value = broker.authType;
    const expiration = el('input', { type: 'number', min: 0, value: broker.expiration ?? '' });
    const hookUrl = el('input', {
      type: 'url',
      value: broker.on_publish?.url ?? '',
      placeholder: 'https://hooks.example.com/pubsub',
    });
    const policy = select([['fail-closed'], ['fail-open']], {});
    policy.value = broker.on_publish?.policy ?? 'fail-closed';
    const form = el(
      'form',
      { class: 'edit', 'aria-label': `Edit ${broker.name}.${namespace}` },
      field('Description', description),
      field('Authentication type', authType),
      field('Credential lifetime (seconds)', expiration, 'empty: credentials do not expire by default'),
      field('On-publish webhook URL', hookUrl, 'empty: none'),
      field('Webhook failure policy', policy),
      el(
        'div',
        { class: 'row' },
        el('button', { type: 'submit' }, 'Save'),
        el('button', { type: 'button', onclick: () => container.replaceChildren() }, 'Cancel'),
      ),
    );
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const body: ApiRecord = {
        description: description.value,
        authType: authType.value,
        expiration: expiration.value === '' ? null : Number(expiration.value),
      };
      const url = hookUrl.value === '' ? null : hookUrl.value;
      // Only a change: a PATCH naming on_publish while a function is deployed is refused (409).
      if (
        url !== (broker.on_publish?.url ?? null) ||
        (url !== null && policy.value !== broker.on_publish?.policy)
      )
        body.on_publish = url === null ? { url } : { url, policy: policy.value };
      await act(`Broker ${broker.name}.${namespace} saved.`, () =>
        call('PATCH', brokerPath(namespace, broker.name), { body }),
      );
    });
    return form;
  }

  const nsName = el('input', {
    type: 'text',
    required: true,
    pattern: '[A-Za-z][A-Za-z0-9\\-]*',
    maxlength: 63,
  });
  const nsDescription = el('input', { type: 'text' });
  const createNamespace = el(
    'form',
    { class: 'card', 'aria-label': 'Create namespace' },
    el('h2', {}, 'Create namespace'),
    el(
      'div',
      { class: 'row' },
      field('Namespace name', nsName),
      field('Namespace description', nsDescription),
    ),
    el('button', { type: 'submit' }, 'Create namespace'),
  );
  createNamespace.addEventListener('submit', async (event) => {
    event.preventDefault();
    const name = nsName.value.trim();
    await act(`Namespace ${name} created.`, async () => {
      await call('POST', ns(), { body: { name, description: nsDescription.value } });
      createNamespace.reset();
    });
  });

  const brokerName = el('input', {
    type: 'text',
    required: true,
    pattern: '[A-Za-z][A-Za-z0-9\\-]*',
    maxlength: 63,
  });
  const brokerAuth = select(AUTH_TYPES, {});
  const brokerExpiration = el('input', { type: 'number', min: 0 });
  const brokerDescription = el('input', { type: 'text' });
  const createBroker = el(
    'form',
    { class: 'card', 'aria-label': 'Create broker' },
    el('h2', {}, 'Create broker'),
    el(
      'div',
      { class: 'row' },
      field('Namespace', namespaceChoice),
      field('Broker name', brokerName),
      field('Authentication type', brokerAuth),
      field('Credential lifetime (seconds)', brokerExpiration),
      field('Broker description', brokerDescription),
    ),
    el('button', { type: 'submit' }, 'Create broker'),
  );
  createBroker.addEventListener('submit', async (event) => {
    event.preventDefault();
    const name = brokerName.value.trim();
    const body: ApiRecord = { name, authType: brokerAuth.value, description: brokerDescription.value };
    if (brokerExpiration.value !== '') body.expiration = Number(brokerExpiration.value);
    await act(`Broker ${name}.${namespaceChoice.value} created.`, async () => {
      await call('POST', ns(`/${encodeURIComponent(namespaceChoice.value)}/brokers`), { body });
      createBroker.reset();
    });
  });

  section.append(status.node, createNamespace, createBroker, list);
  await refresh();
}
