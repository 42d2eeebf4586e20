import { useEffect, useRef, useState, type ReactNode } from 'react';
import { NavLink, useLocation, useNavigate } from 'react-router';
import { useAuth } from '../auth/AuthContext';
import { useLive } from '../live/LiveContext';

const NAV = [
  { to: '/', label: 'Home', end: true },
  { to: '/live', label: 'DCL' },
  { to: '/monitor', label: 'AAM Monitor' },
  { to: '/ontology', label: 'Ontology' },
  { to: '/drift', label: 'Drift review' },
  { to: '/connections', label: 'Connections' },
  { to: '/upload', label: 'Upload CSV' },
] as const;

export function LiveIndicator() {
  const { status, failures } = useLive();
  let text: string;
  let tone: string;
  let icon: string;
  switch (status) {
    case 'open':
      text = 'Live';
      tone = 'ok';
      icon = '●';
      break;
    case 'connecting':
      text = 'Connecting…';
      tone = 'info';
      icon = '○';
      break;
    case 'reconnecting':
      text = failures > 3 ? 'Live updates unavailable, retrying' : 'Reconnecting…';
      tone = failures > 3 ? 'bad' : 'warn';
      icon = '↻';
      break;
    default:
      text = 'Offline';
      tone = 'neutral';
      icon = '○';
  }
  return (
    <span className={`live-indicator tone-${tone}`} role="status" title="Live updates from /dcl/ws" data-live={status}>
      <span aria-hidden="true">{icon}</span> {text}
    </span>
  );
}

export function Layout({ children }: { children: ReactNode }) {
  const { user, logout } = useAuth();
  const [menuOpen, setMenuOpen] = useState(false);
  const location = useLocation();
  const navigate = useNavigate();
  const mainRef = useRef<HTMLElement>(null);
  const [lastPath, setLastPath] = useState(location.pathname);

  // Close the phone menu on navigation.
  if (lastPath !== location.pathname) {
    setLastPath(location.pathname);
    setMenuOpen(false);
  }

  // After an in-app navigation, move focus to the new page's content.
  const firstPath = useRef(location.pathname);
  useEffect(() => {
    if (location.pathname === firstPath.current) return;
    firstPath.current = '';
    mainRef.current?.focus();
  }, [location.pathname]);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') setMenuOpen(false);
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);

  return (
    <div className="app">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <div className="topbar-inner">
          <NavLink to="/" className="brand" aria-label="AutonomOS home">
            <span className="brand-mark" aria-hidden="true">
              ◆
            </span>
            AutonomOS
          </NavLink>
          <button
            type="button"
            className="btn btn-ghost menu-toggle"
            aria-expanded={menuOpen}
            aria-controls="primary-nav"
            onClick={() => setMenuOpen((o) => !o)}
          >
            <span aria-hidden="true">{menuOpen ? '✕' : '☰'}</span> Menu
          </button>
          <nav id="primary-nav" className={`nav${menuOpen ? ' open' : ''}`} aria-label="Main">
            <ul>
              {NAV.map((n) => (
                <li key={n.to}>
                  <NavLink to={n.to} end={'end' in n ? n.end : false}>
                    {n.label}
                  </NavLink>
                </li>
              ))}
            </ul>
            <div className="nav-user">
              <LiveIndicator />
              {user ? (
                <span className="user-chip" title={`Tenant ${user.tenant_id}`}>
                  {user.email}
                  {user.role ? <span className="muted"> · {user.role}</span> : null}
                </span>
              ) : null}
              <button
                type="button"
                className="btn btn-ghost"
                onClick={async () => {
                  await logout();
                  navigate('/login', { replace: true });
                }}
              >
                Sign out
              </button>
            </div>
          </nav>
        </div>
      </header>
      <main id="main" ref={mainRef} tabIndex={-1}>
        {children}
      </main>
    </div>
  );
}

export function PageHeader({ title, children }: { title: string; children?: ReactNode }) {
  useEffect(() => {
    document.title = `${title} · AutonomOS`;
  }, [title]);
  return (
    <div className="page-header">
      <h1>{title}</h1>
      {children ? <div className="page-header-extra">{children}</div> : null}
    </div>
  );
}
