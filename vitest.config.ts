import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // Root-only suites (netns, UML, interop) manage their own processes; keep files isolated.
    pool: 'forks',
    reporters: ['default'],
  },
});
