/**
 * A broker's on-publish hook (docs/hooks.md): which hook runs, its metrics and last errors;
 * deploy a function from an editor (a textarea with line numbers: a refused deployment's error
 * is shown and its line marked, read from the API's message `... hook.js:<line>:<column>: ...`),
 * remove it; or set the webhook (`on_publish.url` and failure policy, a PATCH of the broker).
 * Routes: docs/api.md (`.../hook`, `.../hook/function`, the broker's PATCH). The figures are
 * read again every 2 seconds while the page is open.
 */
import { ApiFailure, type ApiRecord, allBrokers, brokerPathOf, call } from './api.ts';
import { brokerSelect, confirmDialog, el, field, replace, select, statusLine } from './dom.ts';

const REFRESH_MS = 2000;
const EXAMPLE = `// Runs for every batch of messages published to the broker.
// Return the messages to deliver (changed or not); leave one out to drop it.
export function onPublish(messages, ctx) {
  return messages;
}
`;

export async function render(section: HTMLElement) {
  const tree = await allBrokers();
  const choice = brokerSelect(
    tree,
    new URLSearchParams(location.search).get('broker') ?? 'default.local',
    {},
  );
  const status = statusLine();
  const summary = el('div');
  const figures = el('div');

  const path = (rest = '') => brokerPathOf(choice.value, rest);

  async function act(done: string, work: () => Promise<unknown>) {
    status.clear();
    try {
      await work();
      status.ok(done);
      return true;
    } catch (err) {
      status.failed(err);
      return false;
    } finally {
      await refresh();
    }
  }

  async function refresh() {
    try {
      const hook = await call('GET', path('/hook'));
      replace(summary, describe(hook));
      replace(figures, metricsTable(hook.metrics), errorsList(hook.metrics?.lastErrors ?? []));
      // The webhook form shows the broker's settings until the user edits it.
      if (!webhookEdited) {
        webhookUrl.value = hook.on_publish?.url ?? '';
        policy.value = hook.on_publish?.policy ?? 'fail-closed';
      }
    } catch (err) {
      status.failed(err);
    }
  }

  function describe(hook: ApiRecord) {
    const facts = [el('dt', {}, 'Hook'), el('dd', {}, hook.kind)];
    if (hook.kind === 'function' && hook.function)
      facts.push(
        el('dt', {}, 'Function version'),
        el(
          'dd',
          {},
          `${hook.function.version}, ${hook.function.bytes} B, deployed ${new Date(hook.function.deployedOn).toLocaleString()}`,
        ),
        el('dt', {}, 'SHA-256'),
        el('dd', {}, el('code', {}, hook.function.sha256)),
      );
    if (hook.kind === 'webhook')
      facts.push(el('dt', {}, 'Webhook'), el('dd', {}, `${hook.on_publish.url} (${hook.on_publish.policy})`));
    facts.push(el('dt', {}, 'Acknowledgements'), el('dd', {}, hook.ack));
    return el('dl', { class: 'facts', 'aria-label': 'Hook in force' }, facts);
  }

  function metricsTable(metrics: ApiRecord) {
    if (!metrics) return null;
    const rows = Object.entries(metrics).filter(([, value]) => typeof value === 'number');
    const latency = metrics.latencyMs;
    return el(
      'table',
      { 'aria-label': 'Hook metrics', class: 'figures' },
      el(
        'tbody',
        {},
        rows.map(([name, value]) =>
          el('tr', {}, el('th', { scope: 'row' }, name), el('td', { class: 'num' }, String(value))),
        ),
        latency
          ? el(
              'tr',
              {},
              el('th', { scope: 'row' }, 'latencyMs'),
              el(
                'td',
                {},
                `p50 ${latency.p50}, p99 ${latency.p99}, max ${latency.max} (${latency.samples} calls)`,
              ),
            )
          : null,
      ),
    );
  }

  function errorsList(errors: ApiRecord[]) {
    return el(
      'section',
      { 'aria-label': 'Last errors' },
      el('h3', {}, 'Last errors'),
      errors.length === 0
        ? el('p', { class: 'muted' }, 'None.')
        : el(
            'ol',
            { class: 'hook-errors' },
            errors
              .slice()
              .reverse()
              .map((e) =>
                el('li', {}, el('time', {}, new Date(e.at).toLocaleString()), ` ${e.kind}: `, e.message),
              ),
          ),
    );
  }

  // The editor: a textarea beside a gutter of line numbers that scrolls with it.
  const code = el('textarea', { rows: 16, spellcheck: 'false', wrap: 'off', class: 'code', value: EXAMPLE });
  const gutter = el('ol', { class: 'gutter', 'aria-hidden': 'true' });
  let errorLine: number | undefined;
  function numberLines() {
    const count = code.value.split('\n').length;
    replace(
      gutter,
      Array.from({ length: count }, (_, i) =>
        el('li', { class: i + 1 === errorLine ? 'error-line' : null }, String(i + 1)),
      ),
    );
    gutter.scrollTop = code.scrollTop;
  }
  code.addEventListener('input', () => {
    errorLine = undefined;
    numberLines();
  });
  code.addEventListener('scroll', () => (gutter.scrollTop = code.scrollTop));
  const errorAt = el('p', { class: 'status error', role: 'alert' });

  function markError(err: Error) {
    const line = Number(/hook\.js:(\d+)/.exec(err.message)?.[1]);
    errorLine = Number.isInteger(line) && line > 0 ? line : undefined;
    numberLines();
    errorAt.textContent = errorLine ? `Line ${errorLine}: ${err.message}` : err.message;
    if (errorLine) {
      const lines = code.value.split('\n');
      const start = lines.slice(0, errorLine - 1).reduce((n, l) => n + l.length + 1, 0);
      code.focus();
      code.setSelectionRange(start, start + (lines[errorLine - 1]?.length ?? 0));
    }
  }

  const deployForm = el(
    'form',
    { class: 'card', 'aria-label': 'Deploy a function' },
    el('h2', {}, 'Function'),
    el(
      'p',
      { class: 'muted' },
      'A JavaScript module exporting onPublish(messages, ctx), run in a sandbox (docs/hooks.md). The server keeps the deployed version; this editor starts from an example.',
    ),
    el(
      'div',
      { class: 'editor' },
      gutter,
      el('label', { class: 'sr-only', for: 'hook-code' }, 'Function code'),
      code,
    ),
    errorAt,
    el(
      'div',
      { class: 'row' },
      el('button', { type: 'submit' }, 'Deploy'),
      el(
        'button',
        {
          type: 'button',
          class: 'danger',
          onclick: async () => {
            const lines = [
              `The function of ${choice.value} and its state are removed; messages are no longer hooked.`,
            ];
            if (!(await confirmDialog(`Remove the function of ${choice.value}?`, lines, 'Remove function')))
              return;
            await act('Function removed.', () => call('DELETE', path('/hook/function')));
          },
        },
        'Remove function',
      ),
    ),
  );
  code.id = 'hook-code';
  deployForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    errorAt.textContent = '';
    errorLine = undefined;
    numberLines();
    status.clear();
    try {
      const deployed = await call('PUT', path('/hook/function'), { body: { code: code.value } });
      status.ok(`Function version ${deployed.version} deployed.`);
    } catch (err) {
      if (err instanceof ApiFailure && err.errors[0]?.code === 14010) markError(err);
      else status.failed(err);
    }
    await refresh();
  });

  const webhookUrl = el('input', { type: 'url', placeholder: 'https://hooks.example.com/pubsub' });
  const policy = select([['fail-closed'], ['fail-open']], {});
  let webhookEdited = false;
  for (const control of [webhookUrl, policy]) control.addEventListener('input', () => (webhookEdited = true));
  const webhookForm = el(
    'form',
    { class: 'card', 'aria-label': 'Webhook' },
    el('h2', {}, 'Webhook'),
    el(
      'p',
      { class: 'muted' },
      'Or call a URL for every batch instead (a broker has a function or a webhook).',
    ),
    el(
      'div',
      { class: 'row' },
      field('Webhook URL', webhookUrl, 'empty: none'),
      field('Failure policy', policy),
    ),
    el('button', { type: 'submit' }, 'Set webhook'),
  );
  webhookForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const url = webhookUrl.value.trim();
    const on_publish = url === '' ? { url: null } : { url, policy: policy.value };
    webhookEdited = false;
    await act(url === '' ? 'Webhook cleared.' : `Webhook set to ${url}.`, () =>
      call('PATCH', path(), { body: { on_publish } }),
    );
  });

  choice.addEventListener('change', () => {
    const address = new URL(location.href);
    address.searchParams.set('broker', choice.value);
    history.replaceState(null, '', address);
    webhookEdited = false;
    status.clear();
    refresh();
  });

  section.append(
    el('div', { class: 'row' }, field('Broker', choice)),
    status.node,
    el('section', { class: 'card', 'aria-label': 'Hook figures' }, summary, figures),
    deployForm,
    webhookForm,
  );
  numberLines();
  await refresh();
  const timer = setInterval(refresh, REFRESH_MS);
  return () => clearInterval(timer);
}
