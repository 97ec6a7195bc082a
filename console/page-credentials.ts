/**
 * A broker's client credentials: issue tokens (shown once, with Copy), the revocation list
 * (revoke and unrevoke by jti), and the public keys that verify its tokens, with rotation.
 * Routes: docs/api.md (`.../credentials`, `.../revocations`, `.../publickeys`).
 */
import { type ApiRecord, allBrokers, brokerPathOf, call, jwtClaims } from './api.ts';
import { brokerSelect, confirmDialog, copyable, el, field, replace, statusLine } from './dom.ts';

export async function render(section: HTMLElement) {
  const tree = await allBrokers();
  const preferred =
    new URLSearchParams(location.search).get('broker') ??
    tree.flatMap(({ namespace, brokers }) =>
      brokers.filter((b) => b.authType !== 'NONE').map((b) => `${b.name}.${namespace.name}`),
    )[0];
  const choice = brokerSelect(tree, preferred, {});
  const status = statusLine();
  const issued = el('div', { class: 'issued' });
  const revocations = el('div');
  const keys = el('div');

  const path = (rest = '') => brokerPathOf(choice.value, rest);

  async function act(done: string | undefined, work: () => Promise<unknown>) {
    status.clear();
    try {
      await work();
      if (done) status.ok(done);
    } catch (err) {
      status.failed(err);
    }
  }

  async function refresh() {
    await act(undefined, async () => {
      const [revoked, jwks] = await Promise.all([
        call('GET', path('/revocations')),
        call('GET', path('/publickeys')),
      ]);
      replace(revocations, revokedTable(revoked));
      replace(keys, keysTable(jwks.keys));
    });
  }

  function revokedTable(revoked: string[]) {
    if (revoked.length === 0) return el('p', { class: 'muted' }, 'No token of this broker is revoked.');
    return el(
      'table',
      { 'aria-label': 'Revoked tokens' },
      el('thead', {}, el('tr', {}, el('th', {}, 'jti'), el('th', {}, ''))),
      el(
        'tbody',
        {},
        revoked.map((jti) =>
          el(
            'tr',
            {},
            el('td', {}, el('code', {}, jti)),
            el(
              'td',
              {},
              el(
                'button',
                {
                  type: 'button',
                  'aria-label': `Unrevoke ${jti}`,
                  onclick: () =>
                    act(`Token ${jti} is valid again (until it expires).`, async () => {
                      await call('DELETE', path('/revocations'), { query: { jti } });
                      await refresh();
                    }),
                },
                'Unrevoke',
              ),
            ),
          ),
        ),
      ),
    );
  }

  function keysTable(list: ApiRecord[]) {
    return el(
      'table',
      { 'aria-label': 'Public keys' },
      el(
        'thead',
        {},
        el('tr', {}, el('th', {}, 'Key id (kid)'), el('th', {}, 'Algorithm'), el('th', {}, 'Public key (x)')),
      ),
      el(
        'tbody',
        {},
        list.map((key) =>
          el(
            'tr',
            {},
            el('td', {}, el('code', {}, key.kid)),
            el('td', {}, `${key.alg ?? ''} ${key.crv ?? ''}`),
            el('td', {}, copyable(`public key ${key.kid}`, JSON.stringify(key))),
          ),
        ),
      ),
    );
  }

  function revoke(jti: string) {
    return act(`Token ${jti} revoked; its live sessions are disconnected.`, async () => {
      await call('POST', path('/revocations'), { query: { jti } });
      await refresh();
    });
  }

  const count = el('input', { type: 'number', min: 1, max: 100, value: 1 });
  const clientId = el('input', { type: 'text', placeholder: 'generated' });
  const expiration = el('input', { type: 'number', min: -1, placeholder: "the broker's default" });
  const acl = el('textarea', { rows: 2, placeholder: 'sensors/+/temp\ncommands/#' });
  const issueForm = el(
    'form',
    { class: 'card', 'aria-label': 'Issue client tokens' },
    el('h2', {}, 'Issue client tokens'),
    el(
      'div',
      { class: 'row' },
      field('Count', count),
      field('Client id', clientId, 'one token only; empty: generated'),
      field('Expiry (seconds)', expiration, '-1: never'),
      field('Topic ACL', acl, 'one filter a line; empty: every topic'),
    ),
    el('button', { type: 'submit' }, 'Issue'),
    issued,
  );
  issueForm.addEventListener('submit', (event) => {
    event.preventDefault();
    act(undefined, async () => {
      const query = {
        number: count.value,
        type: 'TOKEN',
        clientid: clientId.value.trim() || undefined,
        expiration: expiration.value || undefined,
        topicAcl: acl.value
          .split('\n')
          .map((l) => l.trim())
          .filter(Boolean),
      };
      const tokens = await call('GET', path('/credentials'), { query });
      replace(
        issued,
        el(
          'p',
          { class: 'status ok', role: 'status' },
          'Shown once: copy each token now. The server keeps only its jti.',
        ),
        el(
          'table',
          { 'aria-label': 'Issued tokens' },
          el(
            'thead',
            {},
            el(
              'tr',
              {},
              el('th', {}, 'Client id'),
              el('th', {}, 'jti'),
              el('th', {}, 'Expires'),
              el('th', {}, 'Token'),
              el('th', {}, ''),
            ),
          ),
          el(
            'tbody',
            {},
            Object.entries(tokens as Record<string, string>).map(([id, jwt]) => {
              const claims = jwtClaims(jwt);
              return el(
                'tr',
                {},
                el('td', {}, id),
                el('td', {}, el('code', {}, claims.jti)),
                el('td', {}, claims.exp ? new Date(claims.exp * 1000).toISOString() : 'never'),
                el('td', {}, copyable(`token of ${id}`, String(jwt))),
                el(
                  'td',
                  {},
                  el(
                    'button',
                    {
                      type: 'button',
                      'aria-label': `Revoke ${claims.jti}`,
                      onclick: () => revoke(claims.jti),
                    },
                    'Revoke',
                  ),
                ),
              );
            }),
          ),
        ),
      );
    });
  });

  const jti = el('input', { type: 'text', required: true });
  const revokeForm = el(
    'form',
    { class: 'row' },
    field('jti to revoke', jti),
    el('button', { type: 'submit' }, 'Revoke'),
  );
  revokeForm.addEventListener('submit', (event) => {
    event.preventDefault();
    revoke(jti.value.trim()).then(() => revokeForm.reset());
  });

  const rotate = el(
    'button',
    {
      type: 'button',
      class: 'danger',
      onclick: async () => {
        const lines = [
          `The older of ${choice.value}'s two signing keys is retired and a new one added.`,
          'Tokens it signed stop working and their live sessions are disconnected (reason 0x98).',
        ];
        if (!(await confirmDialog(`Rotate the keys of ${choice.value}?`, lines, 'Rotate keys'))) return;
        await act('Keys rotated.', async () => {
          await call('POST', path('/publickeys/rotate'));
          await refresh();
        });
      },
    },
    'Rotate keys',
  );

  choice.addEventListener('change', () => {
    const url = new URL(location.href);
    url.searchParams.set('broker', choice.value);
    history.replaceState(null, '', url);
    replace(issued);
    refresh();
  });

  if (choice.options.length === 0) {
    section.append(el('p', { class: 'muted' }, 'No broker yet: create one on the Brokers page.'));
    return;
  }
  section.append(
    field('Broker', choice),
    status.node,
    issueForm,
    el(
      'section',
      { class: 'card', 'aria-labelledby': 'revoked-title' },
      el('h2', { id: 'revoked-title' }, 'Revoked tokens'),
      revokeForm,
      revocations,
    ),
    el(
      'section',
      { class: 'card', 'aria-labelledby': 'keys-title' },
      el('h2', { id: 'keys-title' }, 'Public keys'),
      el('p', { class: 'muted' }, "The JWKS that verifies this broker's tokens (two live keys)."),
      rotate,
      keys,
    ),
  );
  await refresh();
}
