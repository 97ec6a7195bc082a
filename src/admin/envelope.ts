/**
 * The Cloudflare API envelope: `{result, success, errors, messages}` on every response, plus
 * `result_info` on lists. Lists are paged with `page` (from 1) and `per_page` (default and
 * maximum 1000, so a client that never pages, like wrangler, still sees every item). A list
 * too large to count on every request (retained messages) says `has_more` instead of totals.
 */
import type { ApiError } from '../errors.ts';

export const MAX_PER_PAGE = 1000;

export interface Envelope {
  result: unknown;
  success: boolean;
  errors: { code: number; message: string }[];
  messages: unknown[];
  result_info?: ResultInfo;
}

export interface ResultInfo {
  page: number;
  per_page: number;
  count: number;
  total_count?: number;
  total_pages?: number;
  /** Lists whose total is not counted (retained messages): whether a next page has items. */
  has_more?: boolean;
}

export const ok = (result: unknown): Envelope => ({ result, success: true, errors: [], messages: [] });

export const failure = (error: ApiError): Envelope => ({
  result: null,
  success: false,
  errors: [error.toJSON()],
  messages: [],
});

export function okList(items: unknown[], total: number, page: number, perPage: number): Envelope {
  return {
    ...ok(items),
    result_info: {
      page,
      per_page: perPage,
      count: items.length,
      total_count: total,
      total_pages: Math.max(1, Math.ceil(total / perPage)),
    },
  };
}

/** A page of a list that is not counted: `has_more` in place of `total_count`/`total_pages`. */
export function okPage(items: unknown[], page: number, perPage: number, hasMore: boolean): Envelope {
  return { ...ok(items), result_info: { page, per_page: perPage, count: items.length, has_more: hasMore } };
}
