// One function per backend endpoint the UI uses.

import { apiClient, type ApiClient, type UploadOptions } from './client';
import type {
  AamEvent,
  AamMetrics,
  AamStatus,
  Connection,
  ConnectionInput,
  DclState,
  DlqEntry,
  DriftFinding,
  DriftStatus,
  EntityName,
  Graph,
  Job,
  MappingSummary,
  MappingVersion,
  Ontology,
  Page,
  RegisterResponse,
  TestResult,
  TokenResponse,
  User,
  ViewName,
  ViewRow,
} from './types';

const enc = encodeURIComponent;

export function createApi(c: ApiClient) {
  return {
    // auth
    register: (tenant: string, email: string, password: string) =>
      c.post<RegisterResponse>('/api/v1/auth/register', { tenant, email, password }, { anonymous: true }),
    login: (email: string, password: string) =>
      c.post<TokenResponse>('/api/v1/auth/login', { email, password }, { anonymous: true }),
    logout: () => c.post<void>('/api/v1/auth/logout'),
    me: () => c.get<User>('/api/v1/auth/me'),

    // DCL
    state: () => c.get<DclState>('/dcl/state'),
    graph: () => c.get<Graph>('/dcl/graph'),
    view: (view: ViewName, query: Record<string, string | number | undefined> = {}) =>
      c.get<Page<ViewRow>>(`/api/v1/dcl/views/${view}`, { query }),
    dlq: (cursor?: string | null, limit = 50) =>
      c.get<Page<DlqEntry>>('/api/v1/dcl/dlq', { query: { limit, cursor } }),
    redrive: (seqs: number[] | 'all') =>
      c.post<unknown>('/api/v1/dcl/dlq/redrive', seqs === 'all' ? { all: true } : { seqs }),
    ontology: () => c.get<Ontology>('/api/v1/dcl/ontology'),

    // files and jobs
    upload: (file: File, entity: EntityName, system: string | undefined, opts?: UploadOptions) => {
      const form = new FormData();
      form.append('entity', entity);
      if (system) form.append('system', system);
      form.append('file', file, file.name);
      return c.upload<{ job_id: string }>('/api/v1/filesource/upload', form, opts);
    },
    jobs: () => c.get<Page<Job>>('/api/v1/aoa/jobs'),
    job: (id: string) => c.get<Job>(`/api/v1/aoa/jobs/${enc(id)}`),
    cancelJob: (id: string) => c.post<unknown>(`/api/v1/aoa/jobs/${enc(id)}/cancel`),

    // AAM monitoring
    aamStatus: () => c.get<AamStatus>('/api/v1/aam/status'),
    metrics: () => c.get<AamMetrics>('/api/v1/aam/metrics'),
    events: (cursor?: string | null, limit = 25) =>
      c.get<Page<AamEvent>>('/api/v1/aam/events', { query: { limit, cursor } }),

    // connections
    connections: () => c.get<Page<Connection> | Connection[]>('/api/v1/aam/connections'),
    connection: (id: string) => c.get<Connection>(`/api/v1/aam/connections/${enc(id)}`),
    createConnection: (input: ConnectionInput) => c.post<Connection>('/api/v1/aam/connections', input),
    updateConnection: (id: string, input: ConnectionInput) =>
      c.put<Connection>(`/api/v1/aam/connections/${enc(id)}`, input),
    deleteConnection: (id: string) => c.delete<void>(`/api/v1/aam/connections/${enc(id)}`),
    testConnection: (id: string) => c.post<TestResult>(`/api/v1/aam/connections/${enc(id)}/test`),
    syncConnection: (id: string, mode?: 'reconcile') =>
      c.post<{ job_id: string }>(`/api/v1/aam/connections/${enc(id)}/sync${mode ? `?mode=${mode}` : ''}`),
    pauseConnection: (id: string) => c.post<unknown>(`/api/v1/aam/connections/${enc(id)}/pause`),
    resumeConnection: (id: string) => c.post<unknown>(`/api/v1/aam/connections/${enc(id)}/resume`),

    // drift
    drift: (status: DriftStatus) => c.get<Page<DriftFinding>>('/api/v1/aam/drift', { query: { status } }),
    /** choices: canonical field → source field; omitted approves every queued proposal. */
    approveDrift: (id: string, choices?: Record<string, string>) =>
      c.post<unknown>(`/api/v1/aam/drift/${enc(id)}/approve`, choices ? { choices } : {}),
    rejectDrift: (id: string) => c.post<unknown>(`/api/v1/aam/drift/${enc(id)}/reject`, {}),

    // mappings
    mappings: () => c.get<Page<MappingSummary>>('/api/v1/aam/mappings'),
    mappingVersions: (system: string, object: string) =>
      c.get<Page<MappingVersion> | MappingVersion[]>(`/api/v1/aam/mappings/${enc(system)}/${enc(object)}/versions`),
    mappingDiff: (system: string, object: string, from: string, to: string) =>
      c.get<unknown>(`/api/v1/aam/mappings/${enc(system)}/${enc(object)}/diff`, { query: { from, to } }),
    rollbackMapping: (system: string, object: string, version: string | number) =>
      c.post<unknown>(`/api/v1/aam/mappings/${enc(system)}/${enc(object)}/rollback`, { version }),
  };
}

export type Api = ReturnType<typeof createApi>;

export const api = createApi(apiClient);

/** Lists come as `{"data":[...]}`; a bare array is accepted too. */
export function listOf<T>(x: Page<T> | T[] | null | undefined): T[] {
  if (!x) return [];
  if (Array.isArray(x)) return x;
  return Array.isArray(x.data) ? x.data : [];
}

export const VIEW_OF_ENTITY: Record<EntityName, ViewName> = {
  account: 'accounts',
  opportunity: 'opportunities',
  contact: 'contacts',
};

export const ID_FIELD: Record<ViewName, string> = {
  accounts: 'account_id',
  opportunities: 'opportunity_id',
  contacts: 'contact_id',
};

/** Maps a loose entity name (Account, accounts, entity:opportunity) to its view. */
export function viewFor(name: string | undefined | null): ViewName | null {
  if (!name) return null;
  const n = name.toLowerCase().split(/[:/.]/).pop()?.trim() ?? '';
  if (n === 'account' || n === 'accounts') return 'accounts';
  if (n === 'opportunity' || n === 'opportunities') return 'opportunities';
  if (n === 'contact' || n === 'contacts') return 'contacts';
  return null;
}
