// The smuggling probes (proxy-smuggling.test.ts) again, on the HAProxy engine, through a real haproxy berth supervises.
import { describe, it } from 'vitest';
import { findHaproxy } from '../../proxy/haproxy-engine/index.js';

if (findHaproxy() === undefined) {
  describe.skipIf(true)('the smuggling probes on the haproxy engine (skipped: haproxy is not installed; scripts/setup installs it as root, or apt-get install haproxy)', () => {
    it('runs proxy-smuggling.test.ts through haproxy', () => undefined);
  });
} else {
  process.env.BERTH_TEST_PROXY_ENGINE = 'haproxy';
  await import('./proxy-smuggling.test.js');
}
