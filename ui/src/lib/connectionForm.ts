// The connection form: config keys and write-only secrets per source system.

import type { Connection, ConnectionInput } from '../api/types';

export interface FieldSpec {
  key: string;
  label: string;
  required?: boolean;
  type?: 'url' | 'text' | 'list' | 'select';
  options?: string[];
  placeholder?: string;
  hint?: string;
}

export interface SystemSpec {
  label: string;
  config: FieldSpec[];
  objects: boolean;
  secrets: FieldSpec[];
}

export const OBJECTS = ['account', 'opportunity', 'contact'] as const;

export const SYSTEMS: Record<string, SystemSpec> = {
  salesforce: {
    label: 'Salesforce',
    config: [
      { key: 'instance_url', label: 'Instance URL', type: 'url', required: true, placeholder: 'https://yourorg.my.salesforce.com' },
      { key: 'login_url', label: 'Login URL', type: 'url', placeholder: 'https://login.salesforce.com', hint: 'Where /services/oauth2/token lives.' },
      { key: 'api_version', label: 'API version', placeholder: 'v59.0' },
    ],
    objects: true,
    secrets: [
      { key: 'client_id', label: 'Client ID', required: true },
      { key: 'client_secret', label: 'Client secret', required: true },
      { key: 'refresh_token', label: 'Refresh token', hint: 'Optional.' },
    ],
  },
  hubspot: {
    label: 'HubSpot',
    config: [{ key: 'base_url', label: 'API base URL', type: 'url', placeholder: 'https://api.hubapi.com' }],
    objects: true,
    secrets: [{ key: 'access_token', label: 'Access token', required: true }],
  },
  dynamics: {
    label: 'Dynamics 365',
    config: [
      { key: 'base_url', label: 'Organization URL', type: 'url', required: true, placeholder: 'https://yourorg.crm.dynamics.com' },
      { key: 'token_url', label: 'Token URL', type: 'url', required: true },
      { key: 'scope', label: 'Scope', placeholder: 'https://yourorg.crm.dynamics.com/.default' },
    ],
    objects: true,
    secrets: [
      { key: 'client_id', label: 'Client ID', required: true },
      { key: 'client_secret', label: 'Client secret', required: true },
    ],
  },
  postgres: {
    label: 'Postgres',
    config: [
      { key: 'tables', label: 'Tables', type: 'list', required: true, placeholder: 'public.accounts, public.deals', hint: 'Comma-separated.' },
      { key: 'mode', label: 'Mode', type: 'select', options: ['poll', 'cdc'] },
    ],
    objects: false,
    secrets: [{ key: 'dsn', label: 'DSN', required: true, placeholder: 'postgres://user:pass@host:5432/db' }],
  },
  filesource: {
    label: 'Files (CSV)',
    config: [],
    objects: true,
    secrets: [],
  },
};

export interface FormState {
  name: string;
  system: string;
  interval: string;
  reconcile: string;
  config: Record<string, string>;
  objects: string[];
  secrets: Record<string, string>;
}

export function formFromConnection(c: Connection | null): FormState {
  if (!c) return { name: '', system: 'salesforce', interval: '5m', reconcile: '', config: {}, objects: [...OBJECTS], secrets: {} };
  const config: Record<string, string> = {};
  for (const [k, v] of Object.entries(c.config ?? {})) {
    if (k === 'objects') continue;
    config[k] = Array.isArray(v) ? v.join(', ') : v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  }
  const objs = Array.isArray(c.config?.objects) ? (c.config.objects as string[]) : [...OBJECTS];
  return { name: c.name, system: c.system, interval: c.interval ?? '', reconcile: c.reconcile ?? '', config, objects: objs, secrets: {} };
}

/** The request body: empty optional config left out, secrets only when typed in. */
export function inputFromForm(f: FormState, original: Connection | null): ConnectionInput {
  const spec = SYSTEMS[f.system];
  const config: Record<string, unknown> = {};
  // Keep config keys this form does not know about, so editing never drops them.
  if (original && original.system === f.system) {
    for (const [k, v] of Object.entries(original.config ?? {})) config[k] = v;
  }
  for (const field of spec?.config ?? []) {
    const v = (f.config[field.key] ?? (field.type === 'select' ? (field.options?.[0] ?? '') : '')).trim();
    if (field.type === 'list') {
      const list = v
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean);
      if (list.length) config[field.key] = list;
      else delete config[field.key];
    } else if (v) config[field.key] = v;
    else delete config[field.key];
  }
  if (spec?.objects) config.objects = f.objects;
  const secrets: Record<string, string> = {};
  for (const s of spec?.secrets ?? []) {
    const v = f.secrets[s.key] ?? '';
    if (v) secrets[s.key] = v;
  }
  const out: ConnectionInput = { name: f.name.trim(), system: f.system, config };
  if (Object.keys(secrets).length) out.secrets = secrets;
  if (f.interval.trim()) out.interval = f.interval.trim();
  if (f.reconcile.trim()) out.reconcile = f.reconcile.trim();
  return out;
}
