import { defineConfig } from 'vitest/config';

// Integration suites each start their own redis-server and fork daemons: keep parallelism
// within what a loaded 2-core machine can serve without timing out.
export default defineConfig({
  test: {
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 20_000,
    projects: [
      { extends: true, test: { name: 'berth', include: ['test/**/*.test.ts'], exclude: ['test/cluster/**', '**/node_modules/**'] } },
      // The cluster drills start a dozen processes each in network namespaces: one file at a
      // time, after everything else (a later group).
      { extends: true, test: { name: 'cluster', include: ['test/cluster/**/*.test.ts'], fileParallelism: false, sequence: { groupOrder: 1 }, testTimeout: 120_000, hookTimeout: 90_000 } },
    ],
  },
});
