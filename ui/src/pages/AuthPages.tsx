import { useEffect, useState, type FormEvent, type ReactNode } from 'react';
import { Link, Navigate, useLocation, useNavigate } from 'react-router';
import { isApiError } from '../api/client';
import { useAuth } from '../auth/AuthContext';
import { Field } from '../components/Field';
import { ErrorNotice } from '../components/States';

function useNext(): string {
  const loc = useLocation();
  const next = new URLSearchParams(loc.search).get('next');
  // Only same-app paths.
  return next && next.startsWith('/') && !next.startsWith('//') ? next : '/';
}

function AuthShell({ title, children }: { title: string; children: ReactNode }) {
  useEffect(() => {
    document.title = `${title} · AutonomOS`;
  }, [title]);
  return (
    <div className="auth-page">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <main id="main" className="auth-card">
        <div className="brand auth-brand">
          <span className="brand-mark" aria-hidden="true">
            ◆
          </span>
          AutonomOS
        </div>
        <p className="muted auth-tagline">Customer records from every CRM and file, mapped to one model and streamed live.</p>
        <h1>{title}</h1>
        {children}
      </main>
    </div>
  );
}

export function LoginPage() {
  const { login, signedIn, sessionEnded } = useAuth();
  const navigate = useNavigate();
  const next = useNext();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  if (signedIn && !busy) return <Navigate to={next} replace />;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await login(email.trim(), password);
      navigate(next, { replace: true });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <AuthShell title="Sign in">
      {sessionEnded ? (
        <p className="state state-empty" role="status">
          Your session ended. Please sign in again.
        </p>
      ) : null}
      <form className="form" onSubmit={submit} aria-busy={busy}>
        <Field label="Email">
          <input type="email" name="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </Field>
        <Field label="Password">
          <input
            type="password"
            name="password"
            autoComplete="current-password"
            required
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </Field>
        {error ? (
          isApiError(error) && error.status === 401 ? (
            <p className="state state-error" role="alert">
              <span aria-hidden="true">✕ </span>Email or password is wrong.
            </p>
          ) : (
            <ErrorNotice error={error} />
          )
        ) : null}
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      <p className="muted">
        New here? <Link to="/register">Create a tenant</Link>
      </p>
    </AuthShell>
  );
}

export function RegisterPage() {
  const { register, signedIn } = useAuth();
  const navigate = useNavigate();
  const [tenant, setTenant] = useState('');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  if (signedIn && !busy) return <Navigate to="/" replace />;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await register(tenant.trim(), email.trim(), password);
      navigate('/', { replace: true });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <AuthShell title="Create a tenant">
      <form className="form" onSubmit={submit} aria-busy={busy}>
        <Field label="Tenant" hint="Lower-case letters, digits, “-” and “_”. Your data is kept apart from every other tenant's.">
          <input
            name="tenant"
            required
            pattern="[a-z0-9_\-]{1,63}"
            title="Lower-case letters, digits, - and _"
            autoComplete="organization"
            value={tenant}
            onChange={(e) => setTenant(e.target.value)}
          />
        </Field>
        <Field label="Email">
          <input type="email" name="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </Field>
        <Field label="Password" hint="At least 8 characters.">
          <input
            type="password"
            name="password"
            autoComplete="new-password"
            required
            minLength={8}
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </Field>
        {error ? (
          isApiError(error) && error.status === 409 ? (
            <p className="state state-error" role="alert">
              <span aria-hidden="true">✕ </span>That tenant or email already exists. <Link to="/login">Sign in</Link> instead?
            </p>
          ) : (
            <ErrorNotice error={error} />
          )
        ) : null}
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? 'Creating…' : 'Create tenant'}
        </button>
      </form>
      <p className="muted">
        Already have an account? <Link to="/login">Sign in</Link>
      </p>
    </AuthShell>
  );
}
