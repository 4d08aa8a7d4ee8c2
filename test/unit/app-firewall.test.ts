import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { APP_UID_RANGE, firewallRules, firewallTable } from '../../hoster/app-firewall.js';
import { APP_UID_BASE } from '../../hoster/app-users.js';

describe('the app firewall', () => {
  it('names one table per hoster, from its machine and port range', () => {
    expect(firewallTable('m1', [20_000, 29_999])).toMatch(/^berth_apps_[0-9a-f]{8}_20000_29999$/);
    expect(firewallTable('m1', [20_000, 29_999])).not.toBe(firewallTable('m2', [20_000, 29_999]));
    expect(firewallTable('m1', [20_000, 29_999])).not.toBe(firewallTable('m1', [20_000, 20_999]));
  });

  it('refuses app and build uids on local addresses of the port range, and nothing else', () => {
    const rules = firewallRules('m1', [20_000, 29_999]);
    expect(APP_UID_RANGE[0]).toBe(APP_UID_BASE);
    expect(rules).toContain(`fib daddr type local tcp dport 20000-29999 meta skuid ${APP_UID_RANGE[0]}-${APP_UID_RANGE[1]} counter reject with tcp reset`);
    // One rule, accept by default: the machine's other traffic is left alone.
    expect(rules.match(/reject/g)).toHaveLength(1);
    expect(rules).toContain('policy accept');
  });

  // nft parses the script without applying it (--check): the syntax is the kernel's, not ours.
  it.skipIf(!existsSync('/usr/sbin/nft') || process.getuid?.() !== 0)('is a script nft accepts, again and again (it replaces the table)', () => {
    const run = spawnSync('/usr/sbin/nft', ['--check', '-f', '-'], { input: firewallRules('m1', [20_000, 29_999]), encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });
});
