import '@testing-library/jest-dom/vitest';
import { cleanup } from '@testing-library/react';
import { afterEach, vi } from 'vitest';
import { apiClient } from '../api/client';

afterEach(() => {
  cleanup();
  apiClient.store.clear();
  localStorage.clear();
  vi.unstubAllGlobals();
  vi.useRealTimers();
});
