// The drain suite (proxy-drain.test.ts) again, on the HAProxy engine: the same cases, through a real haproxy berth supervises.
import { describe, it } from 'vitest';
import { findHaproxy } from '../../proxy/haproxy-engine/index.js';

if (findHaproxy() === undefined) {
  describe.skipIf(true)('the drain suite on the haproxy engine (skipped: haproxy is not installed; scripts/setup installs it as root, or apt-get install haproxy)', () => {
    it('runs proxy-drain.test.ts through haproxy', () => undefined);
  });
} else {
  process.env.BERTH_TEST_PROXY_ENGINE = 'haproxy';
  await import('./proxy-drain.test.js');
}
