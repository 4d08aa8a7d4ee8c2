import { defineConfig } from 'vitest/config';

// Integration suites each start their own redis-server and fork daemons: keep parallelism
// within what a loaded 2-core machine can serve without timing out.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 20_000,
  },
});
