// The registry's own suites, run again on a Redis Cluster of three primaries: every multi-key
// script must keep its keys in one hash slot (the `{prefix}:` tag), or Redis refuses it
// (CROSSSLOT). Each suite starts its Redis with startRedisBackend, which reads this variable.
process.env.BERTH_TEST_REDIS = 'cluster';
await import('./claim-leases.test.js');
await import('./reconciler-leadership.test.js');
await import('./registry-api.test.js');
await import('./registry-store-reads.test.js');
