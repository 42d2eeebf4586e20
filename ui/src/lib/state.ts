import type { DclState } from '../api/types';

/** Record counts per entity, summed over source systems. */
export function entityTotals(state: DclState): { entity: string; count: number; systems: number }[] {
  const by = new Map<string, { count: number; systems: Set<string> }>();
  for (const c of state.counts ?? []) {
    const e = by.get(c.entity) ?? { count: 0, systems: new Set<string>() };
    e.count += c.count;
    e.systems.add(c.source_system);
    by.set(c.entity, e);
  }
  return [...by.entries()].map(([entity, v]) => ({ entity, count: v.count, systems: v.systems.size })).sort((a, b) => a.entity.localeCompare(b.entity));
}
