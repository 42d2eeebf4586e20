import { screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { mockFetch, renderApp, signIn } from '../test/helpers';
import { UploadPage } from './UploadPage';

class FakeXhr {
  static last: FakeXhr | null = null;
  static reply = { status: 202, body: '{"job_id":"job-1"}' };
  headers: Record<string, string> = {};
  upload = { onprogress: null as ((e: { loaded: number; total: number; lengthComputable: boolean }) => void) | null };
  onload: (() => void) | null = null;
  onerror: (() => void) | null = null;
  onabort: (() => void) | null = null;
  status = 0;
  statusText = '';
  responseText = '';
  body: FormData | null = null;
  url = '';
  open(_m: string, url: string) {
    this.url = url;
  }
  setRequestHeader(k: string, v: string) {
    this.headers[k] = v;
  }
  getResponseHeader() {
    return null;
  }
  abort() {}
  send(body: FormData) {
    this.body = body;
    FakeXhr.last = this;
    setTimeout(() => {
      this.upload.onprogress?.({ loaded: 10, total: 10, lengthComputable: true });
      this.status = FakeXhr.reply.status;
      this.responseText = FakeXhr.reply.body;
      this.onload?.();
    }, 0);
  }
}

describe('UploadPage', () => {
  beforeEach(() => {
    FakeXhr.reply = { status: 202, body: '{"job_id":"job-1"}' };
  });

  it('uploads the file with its entity, then shows the job progress and row errors', async () => {
    signIn('tok');
    vi.stubGlobal('XMLHttpRequest', FakeXhr);
    mockFetch({
      'GET /api/v1/aoa/jobs/job-1': {
        body: { id: 'job-1', kind: 'upload', status: 'succeeded', rows_read: 3, published: 2, rejected: 1, total: 3, errors: [{ line: 3, column: 'name', reason: 'name is required' }] },
      },
    });
    renderApp(<UploadPage />);
    await userEvent.selectOptions(screen.getByLabelText('Entity'), 'contact');
    const file = new File(['contact_id,first_name\nC1,Ann\n'], 'contacts.csv', { type: 'text/csv' });
    await userEvent.upload(screen.getByLabelText('CSV file'), file);
    await userEvent.click(screen.getByRole('button', { name: 'Upload' }));
    expect(await screen.findByText('name is required')).toBeInTheDocument();
    expect(screen.getByText('Succeeded')).toBeInTheDocument();
    expect(screen.getByRole('progressbar', { name: 'Job job-1 progress' })).toHaveAttribute('aria-valuenow', '100');
    const xhr = FakeXhr.last!;
    expect(xhr.url).toBe('/api/v1/filesource/upload');
    expect(xhr.headers.Authorization).toBe('Bearer tok');
    expect(xhr.body!.get('entity')).toBe('contact');
    expect((xhr.body!.get('file') as File).name).toBe('contacts.csv');
    expect(xhr.body!.get('system')).toBeNull();
  });

  it('shows a rejected upload as an error', async () => {
    signIn('tok');
    FakeXhr.reply = { status: 422, body: '{"error":{"code":"invalid_entity","message":"entity must be account, opportunity or contact","trace_id":"t1"}}' };
    vi.stubGlobal('XMLHttpRequest', FakeXhr);
    mockFetch({});
    renderApp(<UploadPage />);
    await userEvent.upload(screen.getByLabelText('CSV file'), new File(['x'], 'x.csv'));
    await userEvent.click(screen.getByRole('button', { name: 'Upload' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('entity must be account, opportunity or contact');
  });
});
