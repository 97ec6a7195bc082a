/**
 * The admin API as the console uses it: the same routes and bearer token as curl or the CLI
 * (docs/api.md). The token lives in sessionStorage (gone when the tab closes, never in a URL);
 * a failure throws ApiFailure carrying the envelope's own words.
 */
import { splitBroker } from './dom.ts';

const TOKEN_KEY = 'pubsub.adminToken';

export interface ApiError {
  code: number;
  message: string;
}

/** What allBrokers() gives: each namespace with its brokers, as the API returns them. */
export type BrokerTree = { namespace: ApiRecord; brokers: ApiRecord[] }[];

/** A record of the API's JSON (docs/api.md gives its fields). */
// biome-ignore lint/suspicious/noExplicitAny: the API's JSON, read field by field as docs/api.md describes it
export type ApiRecord = Record<string, any>;

export class ApiFailure extends Error {
  readonly status: number;
  readonly errors: ApiError[];

  constructor(status: number, errors: ApiError[]) {
    super(
      errors.length > 0 ? errors.map((e) => `${e.message} (code ${e.code})`).join('; ') : `HTTP ${status}`,
    );
    this.status = status;
    this.errors = errors;
  }
}

export function storedToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function storeToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

export interface CallOptions {
  query?: Record<string, string | number | boolean | string[] | undefined>;
  body?: unknown;
  token?: string;
}

/** One API call; resolves to the envelope's `result` (with `result_info` as `info` for lists). */
// biome-ignore lint/suspicious/noExplicitAny: the API's JSON, read field by field as docs/api.md describes it
export async function call(method: string, path: string, options: CallOptions = {}): Promise<any> {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(options.query ?? {})) {
    if (value === undefined || value === '') continue;
    for (const one of Array.isArray(value) ? value : [value]) url.searchParams.append(key, String(one));
  }
  const headers: Record<string, string> = { authorization: `Bearer ${options.token ?? storedToken() ?? ''}` };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(url, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  let envelope: ApiRecord;
  try {
    envelope = await response.json();
  } catch {
    throw new ApiFailure(response.status, []);
  }
  if (!response.ok || envelope.success === false)
    throw new ApiFailure(response.status, envelope.errors ?? []);
  return envelope.result;
}

/** The account the console works in: the first the token may use. */
let account: string | undefined;

export function accountId() {
  return account;
}

/** Checks a token by listing its accounts; throws ApiFailure when it is refused. */
export async function signIn(token: string): Promise<ApiRecord> {
  const accounts = await call('GET', '/client/v4/accounts', { token });
  if (accounts.length === 0)
    throw new ApiFailure(403, [{ code: 0, message: 'this token may use no account' }]);
  account = accounts[0].id;
  return accounts[0];
}

/** `/client/v4/accounts/<id>/pubsub/namespaces` plus `rest`. */
export function ns(rest = '') {
  return `/client/v4/accounts/${account}/pubsub/namespaces${rest}`;
}

/** The path of a broker (and `rest` below it). */
export function brokerPath(namespace: string, broker: string, rest = ''): string {
  return ns(`/${encodeURIComponent(namespace)}/brokers/${encodeURIComponent(broker)}${rest}`);
}

/** The path of the broker a `brokerSelect` names (`<broker>.<namespace>`), and `rest` below it. */
export function brokerPathOf(choice: string, rest = ''): string {
  const [namespace, broker] = splitBroker(choice);
  return brokerPath(namespace, broker, rest);
}

/** Every broker of every namespace: `[{namespace, broker}]`, in the API's order. */
export async function allBrokers(): Promise<BrokerTree> {
  const namespaces: ApiRecord[] = await call('GET', ns());
  const lists = await Promise.all(
    namespaces.map((n) => call('GET', ns(`/${encodeURIComponent(n.name)}/brokers`))),
  );
  return namespaces.map((n, i) => ({ namespace: n, brokers: lists[i] }));
}

/** The payload (claims) of a JWT, for showing a client token's jti and expiry. */
export function jwtClaims(jwt: string): ApiRecord {
  const part = jwt.split('.')[1] ?? '';
  const base64 = part.replaceAll('-', '+').replaceAll('_', '/');
  return JSON.parse(atob(base64.padEnd(base64.length + ((4 - (base64.length % 4)) % 4), '=')));
}
