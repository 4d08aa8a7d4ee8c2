// The registry's own suites, run again through Redis Sentinel (one primary, one replica, three
// sentinels): the store's claims, leases, fencing and reaping, the reconciler's races and
// leadership hand-over, and every REST call with the registry daemon reaching Redis through the
// sentinels. Each suite starts its Redis with startRedisBackend, which reads this variable.
process.env.BERTH_TEST_REDIS = 'sentinel';
await import('./claim-leases.test.js');
await import('./reconciler-leadership.test.js');
await import('./registry-api.test.js');
