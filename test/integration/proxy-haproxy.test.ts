// The proxy's suite (proxy.test.ts) again, on the HAProxy engine: the same cases, through a real haproxy berth supervises.
import { it } from 'vitest';
import { findHaproxy } from '../../proxy/haproxy-engine/index.js';

if (findHaproxy() === undefined) {
  it.skip('haproxy is not installed (scripts/setup installs it as root; or apt-get install haproxy): the haproxy engine is not tested', () => undefined);
} else {
  process.env.BERTH_TEST_PROXY_ENGINE = 'haproxy';
  await import('./proxy.test.js');
}
