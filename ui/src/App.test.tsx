import { screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { apiClient } from './api/client';
import { AppRoutes } from './App';
import { mockFetch, renderApp, signIn } from './test/helpers';

const state = { counts: [], recent_events: [], consumers: [], dlq_depth: 0, active_jobs: 0, open_drift: 0 };

describe('auth flow', () => {
  it('sends a signed-out visitor to the login page and back after signing in', async () => {
    mockFetch({
      'POST /api/v1/auth/login': { body: { access_token: 'a1', refresh_token: 'r1', token_type: 'bearer', expires_in: 1800 } },
      'GET /api/v1/auth/me': { body: { id: 'u1', email: 'ops@acme.test', tenant_id: 'acme', role: 'viewer' } },
      'GET /api/v1/aam/connections': { body: { data: [] } },
    });
    renderApp(<AppRoutes />, { route: '/connections' });
    expect(await screen.findByRole('heading', { name: 'Sign in' })).toBeInTheDocument();
    await userEvent.type(screen.getByLabelText('Email'), 'ops@acme.test');
    await userEvent.type(screen.getByLabelText('Password'), 'correct horse');
    await userEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(await screen.findByRole('heading', { name: 'Connections' })).toBeInTheDocument();
    expect(apiClient.store.get()).toMatchObject({ accessToken: 'a1', refreshToken: 'r1' });
    expect(JSON.parse(localStorage.getItem('autonomos.auth')!)).toMatchObject({ accessToken: 'a1' });
    // A viewer cannot create connections.
    expect(await screen.findByText(/viewer/)).toBeInTheDocument();
    expect(screen.getByRole('button', { name: '+ New connection' })).toBeDisabled();
  });

  it('shows a wrong password plainly', async () => {
    mockFetch({ 'POST /api/v1/auth/login': { status: 401, body: { error: { code: 'unauthorized', message: 'invalid credentials' } } } });
    renderApp(<AppRoutes />, { route: '/login' });
    await userEvent.type(screen.getByLabelText('Email'), 'a@b.c');
    await userEvent.type(screen.getByLabelText('Password'), 'nope');
    await userEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('Email or password is wrong.');
  });

  it('registers a tenant', async () => {
    let body: unknown = null;
    mockFetch({
      'POST /api/v1/auth/register': (_u, init) => {
        body = JSON.parse(init!.body as string);
        return { status: 201, body: { user: { id: 'u', email: 'a@b.c', tenant_id: 'acme', role: 'admin' }, access_token: 'a', refresh_token: 'r', token_type: 'bearer', expires_in: 60 } };
      },
      'GET /dcl/state': { body: state },
    });
    renderApp(<AppRoutes />, { route: '/register' });
    await userEvent.type(screen.getByLabelText('Tenant'), 'acme');
    await userEvent.type(screen.getByLabelText('Email'), 'a@b.c');
    await userEvent.type(screen.getByLabelText('Password'), 'longenough');
    await userEvent.click(screen.getByRole('button', { name: 'Create tenant' }));
    expect(await screen.findByRole('heading', { name: 'Home' })).toBeInTheDocument();
    expect(body).toEqual({ tenant: 'acme', email: 'a@b.c', password: 'longenough' });
  });

  it('signs out and clears the token', async () => {
    signIn();
    mockFetch({ 'GET /dcl/state': { body: state }, 'POST /api/v1/auth/logout': { status: 204 }, 'GET /api/v1/auth/me': { body: { id: 'u', email: 'a@b.c', tenant_id: 't', role: 'admin' } } });
    renderApp(<AppRoutes />, { route: '/' });
    await userEvent.click(await screen.findByRole('button', { name: 'Sign out' }));
    expect(await screen.findByRole('heading', { name: 'Sign in' })).toBeInTheDocument();
    expect(apiClient.store.get()).toBeNull();
    expect(localStorage.getItem('autonomos.auth')).toBeNull();
  });

  it('ends the session when the token cannot be refreshed', async () => {
    signIn('expired', 'bad-refresh');
    mockFetch({
      'GET /dcl/state': { status: 401, body: { error: { code: 'unauthorized', message: 'expired' } } },
      'GET /api/v1/auth/me': { status: 401 },
      'POST /api/v1/auth/refresh': { status: 401 },
    });
    renderApp(<AppRoutes />, { route: '/' });
    expect(await screen.findByText('Your session ended. Please sign in again.')).toBeInTheDocument();
  });
});
