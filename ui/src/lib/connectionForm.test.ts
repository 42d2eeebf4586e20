import { describe, expect, it } from 'vitest';
import type { Connection } from '../api/types';
import { formFromConnection, inputFromForm } from './connectionForm';

const existing: Connection = {
  id: 'c1',
  name: 'Prod SF',
  system: 'salesforce',
  config: { instance_url: 'https://x.my.salesforce.com', api_version: 'v59.0', objects: ['account'], custom_flag: true },
  interval: '5m',
  status: 'ACTIVE',
};

describe('connection form', () => {
  it('never prefills secrets and keeps config on edit', () => {
    const f = formFromConnection(existing);
    expect(f.secrets).toEqual({});
    expect(f.config.instance_url).toBe('https://x.my.salesforce.com');
    expect(f.objects).toEqual(['account']);
  });

  it('sends only secrets that were typed in, and keeps unknown config keys', () => {
    const f = formFromConnection(existing);
    f.secrets = { client_id: '', client_secret: 'new-secret' };
    f.config.login_url = '';
    const input = inputFromForm(f, existing);
    expect(input.secrets).toEqual({ client_secret: 'new-secret' });
    expect(input.config).toEqual({ instance_url: 'https://x.my.salesforce.com', api_version: 'v59.0', objects: ['account'], custom_flag: true });
    expect(input.interval).toBe('5m');
  });

  it('keeps the reconcile period on edit, and leaves it out when empty', () => {
    const withReconcile = { ...existing, reconcile: '24h' };
    expect(inputFromForm(formFromConnection(withReconcile), withReconcile).reconcile).toBe('24h');
    const f = formFromConnection(withReconcile);
    f.reconcile = ' ';
    expect(inputFromForm(f, withReconcile).reconcile).toBeUndefined();
  });

  it('omits secrets entirely when none changed', () => {
    expect(inputFromForm(formFromConnection(existing), existing).secrets).toBeUndefined();
  });

  it('builds postgres config with a table list and the shown mode', () => {
    const f = formFromConnection(null);
    f.name = ' pg ';
    f.system = 'postgres';
    f.config = { tables: 'public.accounts, public.deals ,' };
    f.secrets = { dsn: 'postgres://u:p@h/db' };
    expect(inputFromForm(f, null)).toEqual({
      name: 'pg',
      system: 'postgres',
      config: { tables: ['public.accounts', 'public.deals'], mode: 'poll' },
      secrets: { dsn: 'postgres://u:p@h/db' },
      interval: '5m',
    });
  });
});
