import type { ViewName, ViewRow } from '../api/types';

export const VIEW_LABEL: Record<ViewName, string> = {
  accounts: 'Accounts',
  opportunities: 'Opportunities',
  contacts: 'Contacts',
};

/** Newest source version first; rows without a timestamp keep the server's order. */
export function latestFirst(rows: ViewRow[]): ViewRow[] {
  return rows
    .map((r, i) => ({ r, i, t: Date.parse(r.source_updated_at ?? r.updated_at ?? '') }))
    .sort((a, b) => {
      const at = Number.isNaN(a.t) ? -Infinity : a.t;
      const bt = Number.isNaN(b.t) ? -Infinity : b.t;
      return bt === at ? a.i - b.i : bt - at;
    })
    .map((x) => x.r);
}
