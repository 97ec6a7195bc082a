/**
 * Query-string values, read strictly: the schemas admit digit strings only, and these turn them
 * into numbers within range (out of range: 400 code 14009 naming the parameter).
 */
import { ApiError } from '../errors.ts';
import type { Page } from '../tenancy/tenancy.ts';
import { MAX_PER_PAGE } from './envelope.ts';

export function pageOf(query: unknown): Page {
  const q = (query ?? {}) as { page?: string; per_page?: string };
  const page = q.page === undefined ? 1 : Number(q.page);
  const perPage = q.per_page === undefined ? MAX_PER_PAGE : Number(q.per_page);
  if (page < 1) throw new ApiError('INVALID_PARAMETER', 'page must be 1 or more');
  if (perPage < 1 || perPage > MAX_PER_PAGE)
    throw new ApiError('INVALID_PARAMETER', `per_page must be between 1 and ${MAX_PER_PAGE}`);
  return { page, perPage };
}

/** Every item of a list in one page (a list filtered by the token's scope is paged after). */
export const EVERYTHING: Page = { page: 1, perPage: Number.MAX_SAFE_INTEGER };

/** The items of page `page` (from 1) of an in-memory list. */
export function pageSlice<T>(items: readonly T[], page: number, perPage: number): T[] {
  return items.slice((page - 1) * perPage, page * perPage);
}
