import type { ReactNode } from 'react';

/** A horizontally scrollable, keyboard-focusable region around a wide table. */
export function TableWrap({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div className="table-wrap" role="region" aria-label={label} tabIndex={0}>
      {children}
    </div>
  );
}
