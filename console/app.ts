/**
 * The console's shell: sign-in, navigation and URL routing. Each page is a module loaded the
 * first time it is opened (the WebSocket client's MQTT.js and the overview's uPlot with it), and
 * exports `render(main)`, which may return a function that stops what it started (timers,
 * connections) when the user leaves the page. Links change the URL with the History API, so
 * every page has an address and the back button works.
 */
import { ApiFailure, call, forgetToken, signIn, storedToken, storeToken } from './api.ts';
import { el, field, replace } from './dom.ts';

/** A page module: `render` may resolve to the function that stops it (pages with nothing to stop resolve to nothing). */
type Page = { render(main: HTMLElement): Promise<unknown> };

const PAGES: Record<string, { title: string; load: () => Promise<Page> }> = {
  '/console/overview': { title: 'Overview', load: () => import('./page-overview.ts') },
  '/console/brokers': { title: 'Brokers', load: () => import('./page-brokers.ts') },
  '/console/clients': { title: 'Clients and sessions', load: () => import('./page-clients.ts') },
  '/console/retained': { title: 'Retained messages', load: () => import('./page-retained.ts') },
  '/console/credentials': { title: 'Credentials', load: () => import('./page-credentials.ts') },
  '/console/hooks': { title: 'On-publish hook', load: () => import('./page-hooks.ts') },
  '/console/ws-client': { title: 'WebSocket client', load: () => import('./page-ws-client.ts') },
  '/console/nodes': { title: 'Nodes', load: () => import('./page-nodes.ts') },
};
const HOME = '/console/overview';

const main = document.getElementById('main')!;
const nav = document.getElementById('nav')!;
const signOutButton = document.getElementById('sign-out')!;
const nodesLink = document.getElementById('nodes-link')!;
let leave = () => {};
let shown = 0;

function pageOf(pathname: string): string {
  const path = pathname.replace(/\/+$/, '');
  return PAGES[path] ? path : HOME;
}

async function show() {
  leave();
  leave = () => {};
  const turn = ++shown;
  const path = pageOf(location.pathname);
  if (path !== location.pathname) history.replaceState(null, '', path + location.search);
  for (const link of nav.querySelectorAll('a')) {
    if (link.getAttribute('href') === path) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const page = PAGES[path];
  document.title = `${page.title} · pubsub console`;
  replace(main, el('p', { class: 'muted' }, 'Loading…'));
  try {
    const module = await page.load();
    if (turn !== shown) return;
    const section = el(
      'section',
      { 'aria-labelledby': 'page-title' },
      el('h1', { id: 'page-title' }, page.title),
    );
    replace(main, section);
    const stop = await module.render(section);
    leave = typeof stop === 'function' ? (stop as () => void) : () => {};
  } catch (err) {
    if (turn !== shown) return;
    if (err instanceof ApiFailure && err.status === 403 && err.errors[0]?.code === 10000)
      return signedOut(err.message);
    replace(
      main,
      el(
        'p',
        { class: 'status error', role: 'alert' },
        `Could not show ${page.title}: ${(err as Error).message}`,
      ),
    );
  }
}

function signedOut(message?: string): void {
  leave();
  leave = () => {};
  forgetToken();
  nav.hidden = true;
  signOutButton.hidden = true;
  document.title = 'Sign in · pubsub console';
  const token = el('input', {
    type: 'password',
    name: 'token',
    autocomplete: 'current-password',
    required: true,
  });
  const error = el('p', { class: 'status error', role: 'alert' }, message ?? '');
  const form = el(
    'form',
    { class: 'sign-in', 'aria-labelledby': 'sign-in-title' },
    el('h1', { id: 'sign-in-title' }, 'Sign in'),
    el(
      'p',
      {},
      'Paste an admin API token: the server printed one at its first start and keeps it in <data-dir>/admin-token.',
    ),
    field('Admin token', token),
    error,
    el('button', { type: 'submit' }, 'Sign in'),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.textContent = '';
    const value = token.value.trim();
    try {
      await signIn(value);
    } catch (err) {
      error.textContent =
        err instanceof ApiFailure
          ? `Sign-in refused: ${(err as Error).message}`
          : `Sign-in failed: ${(err as Error).message}`;
      token.select();
      return;
    }
    storeToken(value);
    signedIn();
  });
  replace(main, form);
  token.focus();
}

function signedIn() {
  nav.hidden = false;
  signOutButton.hidden = false;
  show();
  // The Nodes link shows when the server is in a cluster and the token may see it (operator).
  call('GET', '/cluster').then(
    (cluster) => (nodesLink.hidden = !cluster.enabled),
    () => (nodesLink.hidden = true),
  );
}

nav.addEventListener('click', (event) => {
  const link = (event.target as Element).closest('a');
  if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  if (link.getAttribute('href') !== location.pathname) history.pushState(null, '', link.getAttribute('href'));
  show();
});
document.querySelector('.brand')!.addEventListener('click', (event) => {
  event.preventDefault();
  history.pushState(null, '', HOME);
  if (storedToken()) show();
});
window.addEventListener('popstate', () => {
  if (storedToken()) show();
});
signOutButton.addEventListener('click', () => signedOut('Signed out.'));

const saved = storedToken();
if (saved === null) signedOut();
else {
  signIn(saved).then(signedIn, (err) =>
    signedOut(err instanceof ApiFailure ? `Sign in again: ${err.message}` : `Sign-in failed: ${err.message}`),
  );
}
