/**
 * The web console (docs/console.md), served by the admin HTTP server: the page addresses (`/`
 * and `/console/<page>`, all the same HTML shell, whose script routes by URL) and the built
 * assets (`/console/assets/<name>.<hash>.<ext>`, made from console/*.ts by console-build.ts).
 *
 * Invariants:
 * - Only the paths of CONSOLE_PATHS answer: one route per page address and one for the assets,
 *   whose name must be one of the current build's (anything else is 404). Each is a `public`
 *   row of route-permissions.ts: the files hold no secret; the console signs in to the API
 *   with a bearer token like any client.
 * - Nothing is built or read at start: the first request builds the console in memory, so a
 *   server nobody opens the console on pays nothing (issue 22).
 * - Every response carries a Content-Security-Policy without inline script or eval. The shell
 *   revalidates (`no-cache`, ETag of its bytes); an asset is `immutable`, since a change renames it.
 */
import { resolve } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ASSET_PREFIX, ConsoleBuilder } from '../console-build.ts';

const CONSOLE_DIR = resolve(import.meta.dirname, '../../../console');

/** The console's pages (each an address that serves the shell; its script shows the page). */
const PAGES = [
  'overview',
  'brokers',
  'clients',
  'retained',
  'credentials',
  'hooks',
  'ws-client',
  'nodes',
] as const;

const SHELL_PATHS = ['/', '/console', ...PAGES.map((page) => `/console/${page}`)];
const ASSET_ROUTE = `${ASSET_PREFIX}:name`;

/** Every path the console answers on (GET and HEAD): the public rows of route-permissions.ts. */
export const CONSOLE_PATHS: readonly string[] = [...SHELL_PATHS, ASSET_ROUTE];

/**
 * No inline script, no eval, no plugins, no framing. `connect-src` allows ws:/wss: because the
 * WebSocket client page connects to MQTT listeners on other ports (and host names);
 * `worker-src blob:` because MQTT.js runs its keep-alive timer in a worker made from a blob (a
 * page's timers are throttled in a background tab); making one takes running script already.
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "worker-src 'self' blob:",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self' ws: wss:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const builder = new ConsoleBuilder(CONSOLE_DIR, import.meta.url);

function secure(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', CONSOLE_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer');
}

async function serveShell(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const build = await builder.current();
  secure(reply).header('cache-control', 'no-cache').header('etag', build.indexEtag);
  if (req.headers['if-none-match'] === build.indexEtag) return reply.code(304).send();
  reply.type('text/html; charset=utf-8');
  return reply.send(req.method === 'HEAD' ? undefined : build.index);
}

async function serveAsset(
  req: FastifyRequest<{ Params: { name: string } }>,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const build = await builder.latest();
  const asset = build.assets.get(req.params.name);
  secure(reply);
  if (asset === undefined) {
    const missing = req.params.name.includes('.not-installed.')
      ? 'not installed: run npm install'
      : 'not found';
    return reply
      .code(404)
      .header('cache-control', 'no-cache')
      .type('text/plain; charset=utf-8')
      .send(`${missing}\n`);
  }
  reply
    .header('cache-control', 'public, max-age=31536000, immutable')
    .type(asset.contentType)
    .header('content-length', asset.body.length);
  return reply.send(req.method === 'HEAD' ? undefined : asset.body);
}

export function consoleRoutes(app: FastifyInstance): void {
  for (const path of SHELL_PATHS) app.get(path, { schema: { hide: true } }, serveShell);
  app.get(ASSET_ROUTE, { schema: { hide: true } }, serveAsset);
}
