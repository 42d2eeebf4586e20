import { describe, expect, it } from 'vitest';
import type { Graph, RecordEvent } from '../api/types';
import { applyRecordEvents, initialLiveGraph, linkKey, liveGraphReducer, mergeGraph, nodeMatches, pathFor, sanitizeGraph, totalFlow } from './graph';
import { layoutGraph } from './sankeyLayout';

const graph: Graph = {
  nodes: [
    { id: 'system:salesforce', label: 'salesforce', kind: 'system' },
    { id: 'system:filesource', label: 'filesource', kind: 'system' },
    { id: 'object:salesforce/Opportunity', label: 'Opportunity', kind: 'object' },
    { id: 'object:salesforce/Account', label: 'Account', kind: 'object' },
    { id: 'object:filesource/opportunity', label: 'opportunity', kind: 'object' },
    { id: 'entity:opportunity', label: 'Opportunity', kind: 'entity' },
    { id: 'entity:account', label: 'Account', kind: 'entity' },
    { id: 'table:opportunities', label: 'opportunities', kind: 'table' },
    { id: 'table:accounts', label: 'accounts', kind: 'table' },
    { id: 'consumer:dcl-postgres', label: 'dcl-postgres', kind: 'consumer' },
  ],
  links: [
    { source: 'system:salesforce', target: 'object:salesforce/Opportunity', value: 10 },
    { source: 'system:salesforce', target: 'object:salesforce/Account', value: 4 },
    { source: 'system:filesource', target: 'object:filesource/opportunity', value: 3 },
    { source: 'object:salesforce/Opportunity', target: 'entity:opportunity', value: 10, mapped_fields: 8, extras_fields: 2 },
    { source: 'object:salesforce/Account', target: 'entity:account', value: 4 },
    { source: 'object:filesource/opportunity', target: 'entity:opportunity', value: 3 },
    { source: 'entity:opportunity', target: 'table:opportunities', value: 13 },
    { source: 'entity:account', target: 'table:accounts', value: 4 },
    { source: 'table:opportunities', target: 'consumer:dcl-postgres', value: 13 },
  ],
};

const ev = (over: Partial<RecordEvent> = {}): RecordEvent => ({
  type: 'record.upserted',
  entity: 'opportunity',
  id: 'OPP-1',
  source_system: 'filesource',
  source_object: 'opportunity',
  ...over,
});

const value = (g: Graph, s: string, t: string) => g.links.find((l) => l.source === s && l.target === t)?.value;

describe('nodeMatches', () => {
  it('matches by id, label, last id segment and plural', () => {
    expect(nodeMatches(graph.nodes[5]!, 'opportunity')).toBe(true);
    expect(nodeMatches(graph.nodes[5]!, 'Opportunities')).toBe(true);
    expect(nodeMatches(graph.nodes[0]!, 'salesforce')).toBe(true);
    expect(nodeMatches(graph.nodes[0]!, 'hubspot')).toBe(false);
    expect(nodeMatches(graph.nodes[0]!, undefined)).toBe(false);
  });
});

describe('pathFor', () => {
  it('follows system → object → entity → tables → consumers', () => {
    expect(pathFor(graph, ev())).toEqual([
      'system:filesource\u2192object:filesource/opportunity',
      'object:filesource/opportunity\u2192entity:opportunity',
      'entity:opportunity\u2192table:opportunities',
      'table:opportunities\u2192consumer:dcl-postgres',
    ]);
  });

  it('picks the right object of a system by source_object', () => {
    const p = pathFor(graph, ev({ source_system: 'salesforce', source_object: 'Opportunity' }));
    expect(p[0]).toBe(linkKey({ source: 'system:salesforce', target: 'object:salesforce/Opportunity' }));
  });

  it('uses the only object feeding the entity when source_object is missing', () => {
    const p = pathFor(graph, ev({ source_system: 'salesforce', source_object: undefined }));
    expect(p[1]).toBe(linkKey({ source: 'object:salesforce/Opportunity', target: 'entity:opportunity' }));
  });

  it('handles graphs without object nodes', () => {
    const g: Graph = {
      nodes: [
        { id: 's', label: 'hubspot', kind: 'system' },
        { id: 'e', label: 'contact', kind: 'entity' },
        { id: 't', label: 'contacts', kind: 'table' },
      ],
      links: [
        { source: 's', target: 'e', value: 1 },
        { source: 'e', target: 't', value: 1 },
      ],
    };
    expect(pathFor(g, ev({ entity: 'contact', source_system: 'hubspot' }))).toEqual(['s\u2192e', 'e\u2192t']);
  });

  it('is empty for a system the graph does not have', () => {
    expect(pathFor(graph, ev({ source_system: 'dynamics' }))).toEqual([]);
  });
});

describe('applyRecordEvents', () => {
  it('adds one per upsert to every link on the path, in place', () => {
    const r = applyRecordEvents(graph, [ev(), ev({ id: 'OPP-2' }), ev({ type: 'record.deleted' })]);
    expect(value(r.graph, 'system:filesource', 'object:filesource/opportunity')).toBe(5);
    expect(value(r.graph, 'object:filesource/opportunity', 'entity:opportunity')).toBe(5);
    expect(value(r.graph, 'entity:opportunity', 'table:opportunities')).toBe(15);
    expect(value(r.graph, 'table:opportunities', 'consumer:dcl-postgres')).toBe(15);
    // Untouched links keep their identity; nodes are the same array.
    expect(r.graph.nodes).toBe(graph.nodes);
    expect(r.graph.links[1]).toBe(graph.links[1]);
    expect(r.graph.links[0]).toBe(graph.links[0]);
    expect(r.grown.get('system:filesource\u2192object:filesource/opportunity')).toBe(2);
    expect(r.unmatched).toBe(0);
    // The input is not mutated.
    expect(value(graph, 'system:filesource', 'object:filesource/opportunity')).toBe(3);
  });

  it('keeps mapped/extras coverage on grown links', () => {
    const r = applyRecordEvents(graph, [ev({ source_system: 'salesforce', source_object: 'Opportunity' })]);
    const l = r.graph.links.find((x) => x.source === 'object:salesforce/Opportunity');
    expect(l).toMatchObject({ value: 11, mapped_fields: 8, extras_fields: 2 });
  });

  it('counts events whose nodes are missing', () => {
    const r = applyRecordEvents(graph, [ev({ source_system: 'hubspot' }), ev({ entity: 'contact' })]);
    expect(r.unmatched).toBe(2);
    expect(r.graph).toBe(graph);
  });
});

describe('mergeGraph', () => {
  it('keeps the on-screen node order, takes server values, appends and drops', () => {
    const prev = applyRecordEvents(graph, [ev()]).graph;
    const fresh: Graph = {
      nodes: [
        { id: 'system:hubspot', label: 'hubspot', kind: 'system' },
        ...[...graph.nodes].reverse().filter((n) => n.id !== 'consumer:dcl-postgres'),
      ],
      links: graph.links.filter((l) => l.target !== 'consumer:dcl-postgres').map((l) => ({ ...l, value: l.value + 100 })),
    };
    const m = mergeGraph(prev, fresh);
    expect(m.nodes.map((n) => n.id)).toEqual([...graph.nodes.filter((n) => n.id !== 'consumer:dcl-postgres').map((n) => n.id), 'system:hubspot']);
    expect(value(m, 'system:filesource', 'object:filesource/opportunity')).toBe(103);
    expect(m.links.some((l) => l.target === 'consumer:dcl-postgres')).toBe(false);
  });

  it('reuses unchanged link objects', () => {
    const m = mergeGraph(graph, JSON.parse(JSON.stringify(graph)) as Graph);
    expect(m.links[0]).toBe(graph.links[0]);
    expect(m.nodes[0]).toBe(graph.nodes[0]);
  });
});

describe('liveGraphReducer', () => {
  it('merges fresh graphs, applies events and pulses grown links', () => {
    let s = liveGraphReducer(initialLiveGraph, { type: 'events', events: [ev()] });
    expect(s.unmatched).toBe(1);
    s = liveGraphReducer(s, { type: 'fresh', graph });
    expect(s.unmatched).toBe(0);
    s = liveGraphReducer(s, { type: 'events', events: [ev(), ev()] });
    expect(s.applied).toBe(2);
    expect(s.pulses.get('system:filesource\u2192object:filesource/opportunity')).toBe(1);
    s = liveGraphReducer(s, { type: 'events', events: [ev()] });
    expect(s.pulses.get('system:filesource\u2192object:filesource/opportunity')).toBe(2);
    expect(totalFlow(s.graph!)).toBe(17 + 3);
  });

  it('ignores batches without upserts', () => {
    const s = liveGraphReducer({ ...initialLiveGraph, graph }, { type: 'events', events: [ev({ type: 'record.deleted' })] });
    expect(s.graph).toBe(graph);
  });
});

describe('sanitizeGraph and layout', () => {
  it('drops dangling and self links', () => {
    const g = sanitizeGraph({ nodes: graph.nodes, links: [...graph.links, { source: 'x', target: 'entity:account', value: 1 }, { source: 'entity:account', target: 'entity:account', value: 1 }] });
    expect(g.links).toHaveLength(graph.links.length);
  });

  it('keeps node positions ordered and columns by kind as values grow', () => {
    const a = layoutGraph(graph, 1000, 500);
    const b = layoutGraph(applyRecordEvents(graph, Array.from({ length: 20 }, () => ev())).graph, 1000, 500);
    const col = (l: typeof a, kind: string) => l.nodes.filter((n) => n.kind === kind).map((n) => n.id);
    for (const kind of ['system', 'object', 'entity', 'table', 'consumer']) {
      expect(col(b, kind)).toEqual(col(a, kind));
      // Same vertical order within each column.
      const order = (l: typeof a) => l.nodes.filter((n) => n.kind === kind).sort((x, y) => x.y0 - y.y0).map((n) => n.id);
      expect(order(b)).toEqual(order(a));
    }
    const sys = a.nodes.find((n) => n.kind === 'system')!;
    const ent = a.nodes.find((n) => n.kind === 'entity')!;
    expect(sys.x0).toBeLessThan(ent.x0);
    expect(b.links.find((l) => l.key.startsWith('system:filesource'))!.value).toBe(23);
  });

  it('lays out a graph with no records as structure only', () => {
    const zero = { nodes: graph.nodes, links: graph.links.map((l) => ({ ...l, value: 0 })) };
    const l = layoutGraph(zero, 800, 400);
    expect(l.structureOnly).toBe(true);
    expect(l.nodes.every((n) => Number.isFinite(n.y0) && n.y1 > n.y0)).toBe(true);
  });
});
