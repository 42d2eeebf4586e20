// The DCL graph kept live: record events from the WebSocket grow the links
// they flow through, in place; a fresh /dcl/graph is merged without
// reordering the nodes already on screen.

import type { Graph, GraphLink, GraphNode, RecordEvent } from '../api/types';

export const linkKey = (l: { source: string; target: string }): string => `${l.source}\u2192${l.target}`;

const norm = (s: string | undefined | null) => (s ?? '').trim().toLowerCase();

const SINGULAR: Record<string, string> = {
  accounts: 'account',
  opportunities: 'opportunity',
  contacts: 'contact',
};

function variants(v: string): string[] {
  const n = norm(v);
  const out = new Set([n]);
  if (SINGULAR[n]) out.add(SINGULAR[n]);
  for (const [pl, sg] of Object.entries(SINGULAR)) if (sg === n) out.add(pl);
  return [...out];
}

/** Whether a node stands for `value`: by id, by label, or by the id's last segment. */
export function nodeMatches(node: GraphNode, value: string | undefined | null): boolean {
  if (!value) return false;
  const id = norm(node.id);
  const label = norm(node.label);
  const last = id.split(/[:/.]/).pop() ?? id;
  return variants(value).some((v) => v === id || v === label || v === last);
}

interface Index {
  byId: Map<string, GraphNode>;
  out: Map<string, GraphLink[]>;
}

function index(graph: Graph): Index {
  const byId = new Map<string, GraphNode>();
  for (const n of graph.nodes) byId.set(n.id, n);
  const out = new Map<string, GraphLink[]>();
  for (const l of graph.links) {
    const list = out.get(l.source);
    if (list) list.push(l);
    else out.set(l.source, [l]);
  }
  return { byId, out };
}

/**
 * The links a record event flows through: source system → source object →
 * canonical entity, then everything downstream of the entity (tables, and
 * the consumers that read them). Empty when the event's nodes are not in
 * the graph yet.
 */
export function pathFor(graph: Graph, ev: Pick<RecordEvent, 'entity' | 'source_system' | 'source_object'>, idx = index(graph)): string[] {
  const entity = graph.nodes.find((n) => n.kind === 'entity' && nodeMatches(n, ev.entity));
  if (!entity) return [];
  const keys: string[] = [];

  // Upstream: system → (object →) entity.
  const systems = graph.nodes.filter((n) => n.kind === 'system' && nodeMatches(n, ev.source_system));
  let upstream: string[] | null = null;
  for (const sys of systems) {
    const outs = idx.out.get(sys.id) ?? [];
    const direct = outs.find((l) => l.target === entity.id);
    // Objects of this system that feed the entity.
    const viaObjects = outs.filter((l) => {
      const t = idx.byId.get(l.target);
      return t?.kind === 'object' && (idx.out.get(l.target) ?? []).some((l2) => l2.target === entity.id);
    });
    let chosen = viaObjects.filter((l) => {
      const t = idx.byId.get(l.target);
      return !!t && nodeMatches(t, ev.source_object);
    });
    if (chosen.length === 0 && viaObjects.length === 1) chosen = viaObjects;
    const first = chosen[0];
    if (first) {
      upstream = [linkKey(first), linkKey({ source: first.target, target: entity.id })];
      break;
    }
    if (direct) {
      upstream = [linkKey(direct)];
      break;
    }
  }
  if (!upstream) return [];
  keys.push(...upstream);

  // Downstream: every link reachable from the entity (a DAG; guard anyway).
  const seen = new Set<string>([entity.id]);
  const queue = [entity.id];
  while (queue.length) {
    const id = queue.shift()!;
    for (const l of idx.out.get(id) ?? []) {
      keys.push(linkKey(l));
      if (!seen.has(l.target)) {
        seen.add(l.target);
        queue.push(l.target);
      }
    }
  }
  return keys;
}

export interface ApplyResult {
  graph: Graph;
  /** How much each link grew, by link key. */
  grown: Map<string, number>;
  /** Events whose path is not in the graph: a refetch will bring their nodes. */
  unmatched: number;
}

/**
 * Applies a batch of record events: each upsert adds one to every link on
 * its path. Link objects that do not change are kept as they are, so the
 * view updates them in place; nodes are never reordered.
 */
export function applyRecordEvents(graph: Graph, events: readonly RecordEvent[]): ApplyResult {
  const grown = new Map<string, number>();
  let unmatched = 0;
  const idx = index(graph);
  const pathCache = new Map<string, string[]>();
  for (const ev of events) {
    if (ev.type !== 'record.upserted') continue;
    const ck = `${norm(ev.source_system)}|${norm(ev.source_object)}|${norm(ev.entity)}`;
    let path = pathCache.get(ck);
    if (!path) {
      path = pathFor(graph, ev, idx);
      pathCache.set(ck, path);
    }
    if (path.length === 0) {
      unmatched++;
      continue;
    }
    for (const k of path) grown.set(k, (grown.get(k) ?? 0) + 1);
  }
  if (grown.size === 0) return { graph, grown, unmatched };
  const links = graph.links.map((l) => {
    const d = grown.get(linkKey(l));
    return d ? { ...l, value: l.value + d } : l;
  });
  return { graph: { nodes: graph.nodes, links }, grown, unmatched };
}

/**
 * Merges a freshly fetched graph into the one on screen: the server's values
 * win, nodes already shown keep their order, new nodes and links are
 * appended, and ones the server no longer reports are dropped.
 */
export function mergeGraph(prev: Graph | null, fresh: Graph): Graph {
  if (!prev) return fresh;
  const freshNodes = new Map(fresh.nodes.map((n) => [n.id, n]));
  const nodes: GraphNode[] = [];
  const kept = new Set<string>();
  for (const n of prev.nodes) {
    const f = freshNodes.get(n.id);
    if (f) {
      nodes.push(f.label === n.label && f.kind === n.kind ? n : f);
      kept.add(n.id);
    }
  }
  for (const n of fresh.nodes) if (!kept.has(n.id)) nodes.push(n);

  const freshLinks = new Map(fresh.links.map((l) => [linkKey(l), l]));
  const links: GraphLink[] = [];
  const keptLinks = new Set<string>();
  for (const l of prev.links) {
    const k = linkKey(l);
    const f = freshLinks.get(k);
    if (f) {
      links.push(sameLink(l, f) ? l : f);
      keptLinks.add(k);
    }
  }
  for (const l of fresh.links) if (!keptLinks.has(linkKey(l))) links.push(l);
  return { nodes, links };
}

function sameLink(a: GraphLink, b: GraphLink): boolean {
  return (
    a.value === b.value &&
    JSON.stringify(a.mapped_fields ?? null) === JSON.stringify(b.mapped_fields ?? null) &&
    JSON.stringify(a.extras_fields ?? null) === JSON.stringify(b.extras_fields ?? null)
  );
}

/** Drops links whose ends are missing (d3-sankey throws on them). */
export function sanitizeGraph(g: Graph): Graph {
  const ids = new Set(g.nodes.map((n) => n.id));
  return {
    nodes: g.nodes,
    links: g.links.filter((l) => ids.has(l.source) && ids.has(l.target) && l.source !== l.target),
  };
}

export const KIND_ORDER = ['system', 'object', 'entity', 'table', 'consumer'];

export function fieldCount(v: number | string[] | null | undefined): number | null {
  if (v === null || v === undefined) return null;
  return Array.isArray(v) ? v.length : v;
}

export function totalFlow(g: Graph): number {
  // Records entering the graph: the sum of the links leaving system nodes.
  const systems = new Set(g.nodes.filter((n) => n.kind === 'system').map((n) => n.id));
  let t = 0;
  for (const l of g.links) if (systems.has(l.source)) t += l.value;
  return t;
}

export interface LiveGraphState {
  graph: Graph | null;
  /** Link key → number of times it grew from live events (drives the pulse). */
  pulses: ReadonlyMap<string, number>;
  /** Record events applied in place since the page opened. */
  applied: number;
  /** Record events whose nodes were not on the graph (a refetch is due). */
  unmatched: number;
}

export type LiveGraphAction = { type: 'fresh'; graph: Graph } | { type: 'events'; events: readonly RecordEvent[] };

export const initialLiveGraph: LiveGraphState = { graph: null, pulses: new Map(), applied: 0, unmatched: 0 };

export function liveGraphReducer(state: LiveGraphState, action: LiveGraphAction): LiveGraphState {
  if (action.type === 'fresh') {
    return { ...state, graph: mergeGraph(state.graph, sanitizeGraph(action.graph)), unmatched: 0 };
  }
  const upserts = action.events.filter((e) => e.type === 'record.upserted');
  if (upserts.length === 0) return state;
  if (!state.graph) return { ...state, unmatched: state.unmatched + upserts.length };
  const r = applyRecordEvents(state.graph, upserts);
  let pulses = state.pulses;
  if (r.grown.size > 0) {
    const next = new Map(state.pulses);
    for (const k of r.grown.keys()) next.set(k, (next.get(k) ?? 0) + 1);
    pulses = next;
  }
  return {
    graph: r.graph,
    pulses,
    applied: state.applied + (upserts.length - r.unmatched),
    unmatched: state.unmatched + r.unmatched,
  };
}
