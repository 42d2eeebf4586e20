import { memo, useEffect, useMemo, useRef, useState, type KeyboardEvent, type RefObject } from 'react';
import type { Graph } from '../api/types';
import { formatNumber, humanize } from '../lib/format';
import { layoutGraph, suggestedHeight, type LaidLink, type LaidNode, type Layout } from '../lib/sankeyLayout';

const KIND_TITLE: Record<string, string> = {
  system: 'Source systems',
  object: 'Source objects',
  entity: 'Canonical entities',
  table: 'Tables',
  consumer: 'Consumers',
};

const MIN_WIDTH = 640;

interface Props {
  graph: Graph;
  /** Link key → how many times it has grown; a change replays the pulse. */
  pulses: ReadonlyMap<string, number>;
  selectedId: string | null;
  onSelect: (node: { id: string; label: string; kind: string }) => void;
  isSelectable: (node: { id: string; label: string; kind: string }) => boolean;
}

function useWidth<T extends HTMLElement>(): [RefObject<T | null>, number] {
  const ref = useRef<T>(null);
  const [width, setWidth] = useState(960);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const measure = () => setWidth(Math.max(MIN_WIDTH, Math.floor(el.clientWidth)));
    measure();
    if (typeof ResizeObserver === 'undefined') return;
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  return [ref, width];
}

function linkTitle(l: LaidLink): string {
  let t = `${l.source.label} → ${l.target.label}: ${formatNumber(l.value)} record${l.value === 1 ? '' : 's'}`;
  if (l.mapped !== null) t += ` · ${formatNumber(l.mapped)} mapped field${l.mapped === 1 ? '' : 's'}`;
  if (l.extras !== null) t += ` · ${formatNumber(l.extras)} in extras`;
  return t;
}

export const Sankey = memo(function Sankey({ graph, pulses, selectedId, onSelect, isSelectable }: Props) {
  const [ref, width] = useWidth<HTMLDivElement>();
  const height = suggestedHeight(graph);
  const result = useMemo((): { layout: Layout } | { error: string } => {
    try {
      return { layout: layoutGraph(graph, width, height) };
    } catch (e) {
      return { error: e instanceof Error ? e.message : String(e) };
    }
  }, [graph, width, height]);

  if ('error' in result) {
    return (
      <div className="state state-error" role="alert">
        The graph from the server could not be drawn ({result.error}).
      </div>
    );
  }
  const { layout } = result;

  return (
    <div className="sankey-scroll" ref={ref}>
      {layout.structureOnly ? (
        <p className="muted small sankey-note">
          No records have flowed yet: the widths below show the pipeline's structure only; every count is 0.
        </p>
      ) : null}
      <svg
        className="sankey"
        width={layout.width}
        height={layout.height}
        viewBox={`0 0 ${layout.width} ${layout.height}`}
        role="group"
        aria-label="Data flow from source systems to canonical entities and tables"
        data-total-links={layout.links.length}
      >
        <g className="sankey-columns" aria-hidden="true">
          {layout.columns.map((c) => (
            <text key={c.kind} x={c.x} y={12} className="sankey-column-title">
              {KIND_TITLE[c.kind] ?? humanize(c.kind)}
            </text>
          ))}
        </g>
        <g className="sankey-links">
          {layout.links.map((l) => (
            <SankeyLinkPath key={l.key} link={l} pulse={pulses.get(l.key) ?? 0} />
          ))}
        </g>
        <g className="sankey-nodes">
          {layout.nodes.map((n) => (
            <SankeyNodeRect
              key={n.id}
              node={n}
              width={layout.width}
              selected={n.id === selectedId}
              selectable={isSelectable(n)}
              onSelect={onSelect}
            />
          ))}
        </g>
      </svg>
    </div>
  );
});

function SankeyLinkPath({ link, pulse }: { link: LaidLink; pulse: number }) {
  return (
    <g className={`sankey-link kind-${link.source.kind}`} data-link={link.key} data-value={link.value}>
      <path d={link.path} strokeWidth={link.width} className="sankey-link-path">
        <title>{linkTitle(link)}</title>
      </path>
      {pulse > 0 ? <path key={pulse} d={link.path} strokeWidth={link.width} className="sankey-link-pulse" aria-hidden="true" /> : null}
    </g>
  );
}

function SankeyNodeRect({
  node,
  width,
  selected,
  selectable,
  onSelect,
}: {
  node: LaidNode;
  width: number;
  selected: boolean;
  selectable: boolean;
  onSelect: Props['onSelect'];
}) {
  const labelLeft = node.x1 + 130 > width;
  const x = labelLeft ? node.x0 - 6 : node.x1 + 6;
  const y = (node.y0 + node.y1) / 2;
  const text = `${node.label} · ${formatNumber(node.value)}`;
  const interactive = selectable
    ? {
        role: 'button',
        tabIndex: 0,
        'aria-pressed': selected,
        'aria-label': `${node.label}, ${humanize(node.kind)}, ${formatNumber(node.value)} records. Show latest records`,
        onClick: () => onSelect(node),
        onKeyDown: (e: KeyboardEvent) => {
          if (e.key === 'Enter' || e.key === ' ') {
            e.preventDefault();
            onSelect(node);
          }
        },
      }
    : {};
  return (
    <g
      className={`sankey-node kind-${node.kind}${selectable ? ' selectable' : ''}${selected ? ' selected' : ''}`}
      data-node={node.id}
      data-kind={node.kind}
      data-value={node.value}
      {...interactive}
    >
      <title>{`${node.label} (${humanize(node.kind)}): ${formatNumber(node.value)} records`}</title>
      <rect x={node.x0} y={node.y0} width={node.x1 - node.x0} height={node.y1 - node.y0} rx={2} />
      <text x={x} y={y} dy="0.35em" textAnchor={labelLeft ? 'end' : 'start'} className="sankey-label">
        {text}
      </text>
    </g>
  );
}
