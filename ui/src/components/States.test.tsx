import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { ApiError } from '../api/client';
import { QueryView } from './States';
import { StatusBadge } from './StatusBadge';
import { ProgressBar } from './ProgressBar';

const base = { data: undefined, error: null, isPending: false, isError: false, refetch: vi.fn() };

describe('QueryView', () => {
  it('shows loading', () => {
    render(<QueryView query={{ ...base, isPending: true }} what="Metrics">{() => 'data'}</QueryView>);
    expect(screen.getByRole('status')).toHaveTextContent('Loading metrics…');
    expect(screen.getByRole('status')).toHaveAttribute('aria-busy', 'true');
  });

  it('shows "not available" for a 404, never numbers', () => {
    render(
      <QueryView query={{ ...base, isError: true, error: new ApiError(404, 'not_found', 'Not Found') }} what="Metrics">
        {() => '42'}
      </QueryView>,
    );
    expect(screen.getByText('Metrics: not available on this server')).toBeInTheDocument();
    expect(screen.queryByText('42')).toBeNull();
  });

  it('shows the error with code and trace id, and retries', async () => {
    const refetch = vi.fn();
    render(
      <QueryView query={{ ...base, isError: true, error: new ApiError(503, 'store_unavailable', 'Postgres is down', 'trace-9'), refetch }} what="Metrics">
        {() => '42'}
      </QueryView>,
    );
    const alert = screen.getByRole('alert');
    expect(alert).toHaveTextContent('Could not load metrics');
    expect(alert).toHaveTextContent('Postgres is down');
    expect(alert).toHaveTextContent('HTTP 503 · store_unavailable');
    expect(alert).toHaveTextContent('trace-9');
    await userEvent.click(screen.getByRole('button', { name: 'Try again' }));
    expect(refetch).toHaveBeenCalled();
  });

  it('shows the empty state', () => {
    render(
      <QueryView query={{ ...base, data: [] as number[] }} what="Jobs" isEmpty={(d) => d.length === 0} empty="No jobs yet.">
        {() => 'rows'}
      </QueryView>,
    );
    expect(screen.getByText('No jobs yet.')).toBeInTheDocument();
  });

  it('renders the data', () => {
    render(<QueryView query={{ ...base, data: [1] }} what="Jobs">{(d) => `rows: ${d.length}`}</QueryView>);
    expect(screen.getByText('rows: 1')).toBeInTheDocument();
  });
});

describe('StatusBadge and ProgressBar', () => {
  it('puts the status in words next to the icon', () => {
    render(<StatusBadge status="MANUAL_REVIEW_REQUIRED" />);
    expect(screen.getByText('Manual review required')).toBeInTheDocument();
  });

  it('exposes progress to assistive tech, indeterminate without a total', () => {
    const { rerender } = render(<ProgressBar value={0.5} label="Job" detail="5 of 10 rows" />);
    expect(screen.getByRole('progressbar', { name: 'Job' })).toHaveAttribute('aria-valuenow', '50');
    rerender(<ProgressBar value={null} label="Job" detail="5 rows read" />);
    expect(screen.getByRole('progressbar', { name: 'Job' })).not.toHaveAttribute('aria-valuenow');
    expect(screen.getByRole('progressbar', { name: 'Job' })).toHaveAttribute('aria-valuetext', '5 rows read');
  });
});
