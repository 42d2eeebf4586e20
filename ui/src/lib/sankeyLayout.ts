// Lays the DCL graph out with d3-sankey. Columns are fixed by node kind and
// nodes keep the order they arrived in, so a graph whose values grow keeps
// its shape: nodes only stretch, they never swap places.

import { sankey, sankeyLinkHorizontal, type SankeyGraph, type SankeyLink, type SankeyNode } from 'd3-sankey';
import type { Graph, GraphLink, GraphNode } from '../api/types';
import { KIND_ORDER, fieldCount, linkKey } from './graph';

export interface LaidNode {
  id: string;
  label: string;
  kind: string;
  /** Records through the node (the larger of what enters and what leaves). */
  value: number;
  column: number;
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}

export interface LaidLink {
  key: string;
  source: LaidNode;
  target: LaidNode;
  value: number;
  width: number;
  path: string;
  mapped: number | null;
  extras: number | null;
}

export interface Layout {
  nodes: LaidNode[];
  links: LaidLink[];
  columns: { kind: string; x: number }[];
  /** True when no link carries a record yet: widths then show structure only. */
  structureOnly: boolean;
  width: number;
  height: number;
}

type N = GraphNode & { order: number };
type L = { source: string; target: string; value: number; original: GraphLink };

export const NODE_WIDTH = 14;

export function layoutGraph(graph: Graph, width: number, height: number, labelRoom = 130): Layout {
  const kinds = [...new Set(graph.nodes.map((n) => n.kind))].sort((a, b) => kindRank(a) - kindRank(b));
  const columnOf = new Map(kinds.map((k, i) => [k, i]));
  const total = graph.links.reduce((s, l) => s + Math.max(0, l.value), 0);
  const structureOnly = total === 0;
  // Links without records still show, thinly, so the structure is visible;
  // labels always carry the true numbers.
  const floor = structureOnly ? 1 : Math.max(total * 0.003, 1e-9);

  const nodes: N[] = graph.nodes.map((n, i) => ({ ...n, order: i }));
  const links: L[] = graph.links.map((l) => ({
    source: l.source,
    target: l.target,
    value: l.value > 0 ? l.value : floor,
    original: l,
  }));

  const gen = sankey<N, L>()
    .nodeId((d) => d.id)
    .nodeWidth(NODE_WIDTH)
    .nodePadding(18)
    .nodeAlign((node, n) => Math.min(n - 1, columnOf.get(node.kind) ?? 0))
    .nodeSort((a, b) => a.order - b.order)
    .linkSort(null)
    .extent([
      [1, 24],
      [Math.max(width - labelRoom, 200), Math.max(height - 6, 80)],
    ]);

  const g: SankeyGraph<N, L> = gen({ nodes: nodes.map((n) => ({ ...n })), links: links.map((l) => ({ ...l })) });

  const inflow = new Map<string, number>();
  const outflow = new Map<string, number>();
  for (const l of graph.links) {
    outflow.set(l.source, (outflow.get(l.source) ?? 0) + l.value);
    inflow.set(l.target, (inflow.get(l.target) ?? 0) + l.value);
  }

  const laid = new Map<string, LaidNode>();
  for (const n of g.nodes as SankeyNode<N, L>[]) {
    const y0 = n.y0 ?? 0;
    let y1 = n.y1 ?? 0;
    if (y1 - y0 < 3) y1 = y0 + 3;
    laid.set(n.id, {
      id: n.id,
      label: n.label,
      kind: n.kind,
      value: Math.max(inflow.get(n.id) ?? 0, outflow.get(n.id) ?? 0),
      column: columnOf.get(n.kind) ?? 0,
      x0: n.x0 ?? 0,
      x1: n.x1 ?? 0,
      y0,
      y1,
    });
  }

  const pathGen = sankeyLinkHorizontal<N, L>();
  const outLinks: LaidLink[] = [];
  for (const l of g.links as SankeyLink<N, L>[]) {
    const s = l.source as SankeyNode<N, L>;
    const t = l.target as SankeyNode<N, L>;
    const source = laid.get(s.id);
    const target = laid.get(t.id);
    if (!source || !target) continue;
    outLinks.push({
      key: linkKey(l.original),
      source,
      target,
      value: l.original.value,
      width: Math.max(1, l.width ?? 1),
      path: pathGen(l) ?? '',
      mapped: fieldCount(l.original.mapped_fields),
      extras: fieldCount(l.original.extras_fields),
    });
  }

  const columns: { kind: string; x: number }[] = [];
  for (const k of kinds) {
    const n = [...laid.values()].find((x) => x.kind === k);
    if (n) columns.push({ kind: k, x: n.x0 });
  }

  return { nodes: [...laid.values()], links: outLinks, columns, structureOnly, width, height };
}

function kindRank(k: string): number {
  const i = KIND_ORDER.indexOf(k);
  return i === -1 ? KIND_ORDER.length : i;
}

/** A height that gives the busiest column room to breathe. */
export function suggestedHeight(graph: Graph): number {
  const perKind = new Map<string, number>();
  for (const n of graph.nodes) perKind.set(n.kind, (perKind.get(n.kind) ?? 0) + 1);
  const busiest = Math.max(1, ...perKind.values());
  return Math.max(280, Math.min(900, busiest * 56 + 40));
}
