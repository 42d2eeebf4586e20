import { lazy, Suspense, type ReactNode } from 'react';
import { QueryClientProvider, type QueryClient } from '@tanstack/react-query';
import { BrowserRouter, Link, Navigate, Outlet, Route, Routes, useLocation } from 'react-router';
import { AuthProvider, useAuth } from './auth/AuthContext';
import { Layout, PageHeader } from './components/Layout';
import { Loading } from './components/States';
import { makeQueryClient } from './lib/queryClient';
import { LiveProvider } from './live/LiveContext';
import { LoginPage, RegisterPage } from './pages/AuthPages';
import { HomePage } from './pages/HomePage';

// Pages past the first paint load on demand; the DCL page carries d3.
const DclPage = lazy(() => import('./pages/DclPage').then((m) => ({ default: m.DclPage })));
const MonitorPage = lazy(() => import('./pages/MonitorPage').then((m) => ({ default: m.MonitorPage })));
const OntologyPage = lazy(() => import('./pages/OntologyPage').then((m) => ({ default: m.OntologyPage })));
const DriftPage = lazy(() => import('./pages/DriftPage').then((m) => ({ default: m.DriftPage })));
const ConnectionsPage = lazy(() => import('./pages/ConnectionsPage').then((m) => ({ default: m.ConnectionsPage })));
const UploadPage = lazy(() => import('./pages/UploadPage').then((m) => ({ default: m.UploadPage })));

function RequireAuth({ children }: { children: ReactNode }) {
  const { signedIn } = useAuth();
  const loc = useLocation();
  if (!signedIn) {
    const next = loc.pathname + loc.search;
    return <Navigate to={next === '/' ? '/login' : `/login?next=${encodeURIComponent(next)}`} replace />;
  }
  return (
    <Layout>
      <Suspense fallback={<Loading label="Loading page…" />}>{children}</Suspense>
    </Layout>
  );
}

function NotFoundPage() {
  return (
    <>
      <PageHeader title="Page not found" />
      <p>
        There is no page here. <Link to="/">Go home</Link>.
      </p>
    </>
  );
}

function Protected() {
  return (
    <RequireAuth>
      <Outlet />
    </RequireAuth>
  );
}

export function AppRoutes() {
  return (
    <Routes>
      <Route path="/login" element={<LoginPage />} />
      <Route path="/register" element={<RegisterPage />} />
      <Route element={<Protected />}>
        <Route path="/" element={<HomePage />} />
        <Route path="/live" element={<DclPage />} />
        <Route path="/monitor" element={<MonitorPage />} />
        <Route path="/ontology" element={<OntologyPage />} />
        <Route path="/drift" element={<DriftPage />} />
        <Route path="/connections" element={<ConnectionsPage />} />
        <Route path="/upload" element={<UploadPage />} />
        <Route path="*" element={<NotFoundPage />} />
      </Route>
    </Routes>
  );
}

const defaultClient = makeQueryClient();

export function App({ client }: { client?: QueryClient }) {
  const qc = client ?? defaultClient;
  return (
    <QueryClientProvider client={qc}>
      <AuthProvider>
        <LiveProvider>
          <BrowserRouter>
            <AppRoutes />
          </BrowserRouter>
        </LiveProvider>
      </AuthProvider>
    </QueryClientProvider>
  );
}
