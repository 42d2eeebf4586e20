import { createContext, useCallback, useContext, useEffect, useMemo, useState, useSyncExternalStore, type ReactNode } from 'react';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { apiClient, tokensFrom, type Tokens } from '../api/client';
import { api } from '../api/endpoints';
import type { User } from '../api/types';

export interface AuthValue {
  tokens: Tokens | null;
  signedIn: boolean;
  user: User | null;
  /** The role, when the server said; null while unknown. */
  role: string | null;
  /** Set when the session ended on its own (token expired and refresh failed). */
  sessionEnded: boolean;
  login: (email: string, password: string) => Promise<void>;
  register: (tenant: string, email: string, password: string) => Promise<void>;
  logout: () => Promise<void>;
}

const AuthContext = createContext<AuthValue | null>(null);

const subscribe = (cb: () => void) => apiClient.store.subscribe(cb);
const snapshot = () => apiClient.store.get();

export function AuthProvider({ children }: { children: ReactNode }) {
  const tokens = useSyncExternalStore(subscribe, snapshot, snapshot);
  const qc = useQueryClient();
  const [registeredUser, setRegisteredUser] = useState<User | null>(null);
  const [sessionEnded, setSessionEnded] = useState(false);

  useEffect(
    () =>
      apiClient.onAuthLost(() => {
        setSessionEnded(true);
        setRegisteredUser(null);
        qc.clear();
      }),
    [qc],
  );

  const me = useQuery({
    queryKey: ['me', tokens?.accessToken ? 'signed-in' : 'anonymous'],
    queryFn: api.me,
    enabled: !!tokens,
    staleTime: 5 * 60_000,
    retry: false,
  });

  const login = useCallback(
    async (email: string, password: string) => {
      const res = await api.login(email, password);
      qc.clear();
      setRegisteredUser(null);
      setSessionEnded(false);
      apiClient.store.set(tokensFrom(res));
    },
    [qc],
  );

  const register = useCallback(
    async (tenant: string, email: string, password: string) => {
      const res = await api.register(tenant, email, password);
      qc.clear();
      setSessionEnded(false);
      setRegisteredUser(res.user ?? null);
      apiClient.store.set(tokensFrom(res));
    },
    [qc],
  );

  const logout = useCallback(async () => {
    try {
      if (apiClient.store.get()) await api.logout();
    } catch {
      // The server may already consider the token gone; sign out locally anyway.
    }
    apiClient.store.clear();
    setRegisteredUser(null);
    setSessionEnded(false);
    qc.clear();
  }, [qc]);

  const user = (tokens ? (me.data ?? registeredUser) : null) ?? null;
  const value = useMemo<AuthValue>(
    () => ({
      tokens,
      signedIn: !!tokens,
      user,
      role: user?.role ?? null,
      sessionEnded,
      login,
      register,
      logout,
    }),
    [tokens, user, sessionEnded, login, register, logout],
  );
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

// eslint-disable-next-line react-refresh/only-export-components
export function useAuth(): AuthValue {
  const v = useContext(AuthContext);
  if (!v) throw new Error('useAuth outside AuthProvider');
  return v;
}

/** Viewers see mutating controls disabled; unknown roles are left to the server. */
// eslint-disable-next-line react-refresh/only-export-components
export function useCanEdit(): boolean {
  const { role } = useAuth();
  return role !== 'viewer';
}
