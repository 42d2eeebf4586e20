// Types of the AutonomOS HTTP/WebSocket contract, as the UI reads it.
// Fields the backend may omit are optional; the UI never fills them in.

export type Role = 'admin' | 'viewer';

export interface User {
  id: string;
  email: string;
  tenant_id: string;
  role: Role | string;
}

export interface TokenResponse {
  access_token: string;
  refresh_token?: string;
  token_type: string;
  expires_in?: number;
}

export interface RegisterResponse extends TokenResponse {
  user: User;
}

export interface Page<T> {
  data: T[];
  next_cursor?: string | null;
}

export type EntityName = 'account' | 'opportunity' | 'contact';
export type ViewName = 'accounts' | 'opportunities' | 'contacts';

export interface RowMeta {
  tenant_id?: string;
  source_system?: string;
  source_updated_at?: string;
  event_id?: string;
  created_at?: string;
  updated_at?: string;
  extras?: Record<string, unknown> | null;
}

export interface AccountRow extends RowMeta {
  account_id: string;
  name: string;
  industry?: string | null;
  annual_revenue?: string | null;
  employee_count?: number | null;
  website?: string | null;
}

export interface OpportunityRow extends RowMeta {
  opportunity_id: string;
  account_id?: string | null;
  name: string;
  stage?: string | null;
  amount?: string | null;
  currency?: string | null;
  close_date?: string | null;
  owner_id?: string | null;
  probability?: number | null;
}

export interface ContactRow extends RowMeta {
  contact_id: string;
  account_id?: string | null;
  first_name?: string | null;
  last_name?: string | null;
  email?: string | null;
  phone?: string | null;
  title?: string | null;
}

export type ViewRow = AccountRow | OpportunityRow | ContactRow;

export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface RowError {
  line: number;
  column?: string | null;
  reason: string;
}

export interface Job {
  id: string;
  kind?: string;
  status: JobStatus | string;
  connection_id?: string | null;
  entity?: string | null;
  system?: string | null;
  trace_id?: string | null;
  rows_read?: number;
  published?: number;
  rejected?: number;
  /** Work done so far in the unit of `total` (bytes of an uploaded file, for example). */
  done?: number | null;
  /** Size of the whole job when known, in the unit of `done` (rows when `done` is absent). */
  total?: number | null;
  errors?: RowError[] | null;
  created_at?: string | null;
  started_at?: string | null;
  finished_at?: string | null;
}

export interface EntityCount {
  entity: string;
  source_system: string;
  count: number;
}

export interface RecentEvent {
  type: string;
  entity?: string;
  id?: string;
  source_system?: string;
  trace_id?: string;
  time?: string;
}

export interface ConsumerState {
  name: string;
  pending: number;
  ack_pending: number;
  redelivered: number;
  stalled: boolean;
}

export interface DclState {
  counts: EntityCount[];
  recent_events: RecentEvent[];
  consumers: ConsumerState[];
  dlq_depth: number;
  active_jobs: number;
  open_drift: number;
}

export type GraphNodeKind = 'system' | 'object' | 'entity' | 'table' | 'consumer';

export interface GraphNode {
  id: string;
  label: string;
  kind: GraphNodeKind | string;
}

export interface GraphLink {
  source: string;
  target: string;
  value: number;
  mapped_fields?: number | string[] | null;
  extras_fields?: number | string[] | null;
}

export interface Graph {
  nodes: GraphNode[];
  links: GraphLink[];
}

export interface ComponentStatus {
  name: string;
  status: string;
  detail?: string | null;
}

export interface AamStatus {
  status: 'ok' | 'degraded' | string;
  components: ComponentStatus[];
}

export interface AamMetrics {
  total_connections: number;
  active_connections: number;
  drift_detections_24h: number;
  successful_repairs_24h: number;
  manual_reviews_pending: number;
  average_confidence: number | null;
  average_repair_time_ms: number | null;
}

export interface AamEvent {
  id: string;
  type: string;
  connection_id?: string | null;
  message: string;
  time: string;
}

export type SystemName = 'salesforce' | 'hubspot' | 'dynamics' | 'postgres' | 'filesource';

export type ConnectionStatus =
  | 'ACTIVE'
  | 'PAUSED'
  | 'DRIFTED'
  | 'HEALING'
  | 'MANUAL_REVIEW_REQUIRED'
  | 'FAILED';

export interface Connection {
  id: string;
  name: string;
  system: SystemName | string;
  config: Record<string, unknown>;
  interval?: string | null;
  /** How often a scheduled sync is a full reconciliation pass ("" or absent: never). */
  reconcile?: string | null;
  status: ConnectionStatus | string;
  last_sync_at?: string | null;
  last_reconcile_at?: string | null;
  last_error?: string | null;
  created_at?: string | null;
}

export interface ConnectionInput {
  name: string;
  system: string;
  config: Record<string, unknown>;
  secrets?: Record<string, string>;
  interval?: string;
  reconcile?: string;
}

export interface TestResult {
  ok: boolean;
  message: string;
}

export interface DlqEntry {
  seq: number;
  stage: string;
  reason: string;
  subject: string;
  attempts: number;
  trace_id?: string | null;
  time: string;
}

export type DriftStatus = 'open' | 'applied' | 'rejected' | 'queued';

/** One repair proposal: which source field should feed a canonical field. */
export interface Proposal {
  /** The canonical field that needs a source (unique within a finding). */
  target: string;
  /** The chosen source field; absent when the matcher found none. */
  source?: string;
  confidence: number;
  reasons: string[];
  /** queued, applied or rejected */
  status: string;
  decision?: string;
  proposer?: string;
}

export interface Rename {
  from: string;
  to: string;
  score?: number;
}

/** A source field as the schema observer saw it. */
export interface DriftField {
  name: string;
  samples?: string[];
  added?: boolean;
}

export interface DriftFinding {
  id: string;
  connection_id?: string | null;
  system: string;
  object: string;
  severity: string;
  added: (string | DriftField)[];
  removed: (string | DriftField)[];
  type_changed: (string | { field: string; from?: string; to?: string })[];
  renames: Rename[];
  status: string;
  detected_at?: string;
  created_at?: string;
  proposals: Proposal[];
}

/** The name of a field whether the server sent a name or a field object. */
export function fieldName(f: string | DriftField): string {
  return typeof f === 'string' ? f : f.name;
}

export interface OntologyField {
  name: string;
  type: string;
  required: boolean;
  description?: string | null;
}

export interface SourceFieldMapping {
  target: string;
  source: string | string[] | null;
  transforms?: (string | Record<string, unknown>)[] | null;
}

export interface OntologySource {
  system: string;
  object: string;
  mapping_version?: number | string | null;
  fields: SourceFieldMapping[];
}

export interface OntologyEntity {
  name: string;
  fields: OntologyField[];
  sources: OntologySource[];
}

export interface Ontology {
  entities: OntologyEntity[];
}

export interface MappingSummary {
  system: string;
  object: string;
  entity: string;
  version: number | string;
  author?: string | null;
  created_at?: string | null;
}

export type MappingVersion = MappingSummary;

// WebSocket messages.
export interface RecordEvent {
  type: 'record.upserted' | 'record.deleted';
  seq?: number;
  entity: string;
  id: string;
  source_system?: string;
  source_object?: string;
  trace_id?: string;
  time?: string;
  changed_fields?: string[] | null;
}

export interface StatsMessage {
  type: 'stats';
  seq?: number;
  counts?: EntityCount[] | Record<string, number>;
  [key: string]: unknown;
}

export interface JobMessage {
  type: 'job.updated';
  seq?: number;
  job: Job;
}

export interface GenericMessage {
  type: string;
  seq?: number;
  [key: string]: unknown;
}

export type LiveMessage = RecordEvent | StatsMessage | JobMessage | GenericMessage;
