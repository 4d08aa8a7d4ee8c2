import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { APP_UID_BASE, APP_UID_SLOTS } from './app-users.js';

/** Where nft may be; the hoster's PATH under systemd may lack /usr/sbin. */
const NFT = ['/usr/sbin/nft', '/sbin/nft', '/usr/bin/nft'].find((p) => existsSync(p));

/** Every uid the hoster gives apps and builds (two per slot). */
export const APP_UID_RANGE: readonly [number, number] = [APP_UID_BASE, APP_UID_BASE + 2 * APP_UID_SLOTS - 1];

/** One table per hoster (machine name and port range): several hosters on one host keep their own rules. */
export function firewallTable(machine: string, portRange: readonly [number, number]): string {
  const tag = createHash('sha256').update(machine).digest('hex').slice(0, 8);
  return `berth_apps_${tag}_${portRange[0]}_${portRange[1]}`;
}

/**
 * The rule set, as one nft script (applied as one transaction): connections from any app's
 * or build's uid to a local address on this hoster's instance ports are refused with a reset.
 * The proxy and the hoster's health checks run as other users and pass. `fib daddr type local`
 * covers 127.0.0.1, ::1 and the machine's own addresses, which reach an app bound to 0.0.0.0.
 */
export function firewallRules(machine: string, portRange: readonly [number, number], uids: readonly [number, number] = APP_UID_RANGE): string {
  const table = firewallTable(machine, portRange);
  return [
    // Declaring then deleting makes the script work whether or not the table exists yet.
    `table inet ${table}`,
    `delete table inet ${table}`,
    `table inet ${table} {`,
    '  chain output {',
    '    type filter hook output priority 0; policy accept;',
    `    fib daddr type local tcp dport ${portRange[0]}-${portRange[1]} meta skuid ${uids[0]}-${uids[1]} counter reject with tcp reset`,
    '  }',
    '}',
    '',
  ].join('\n');
}

export type FirewallResult = { installed: true } | { installed: false; why: string };

/**
 * Keeps apps off each other's ports: only the proxy (and the hoster) may connect to an
 * instance's port. Needs root and nftables; without them apps stay reachable from other apps on
 * this machine, and the caller says so.
 */
export function installAppFirewall(machine: string, portRange: readonly [number, number]): FirewallResult {
  if (process.getuid?.() !== 0) return { installed: false, why: 'the hoster is not root' };
  if (NFT === undefined) return { installed: false, why: 'nft is not installed (apt-get install nftables)' };
  const run = spawnSync(NFT, ['-f', '-'], { input: firewallRules(machine, portRange), encoding: 'utf8', timeout: 10_000 });
  if (run.status !== 0) return { installed: false, why: `nft failed: ${(run.stderr || run.error?.message || `exit ${run.status}`).trim()}` };
  return { installed: true };
}

/** Removes this hoster's rules (its apps are gone with it). */
export function removeAppFirewall(machine: string, portRange: readonly [number, number]): void {
  if (process.getuid?.() !== 0 || NFT === undefined) return;
  spawnSync(NFT, ['delete', 'table', 'inet', firewallTable(machine, portRange)], { encoding: 'utf8', timeout: 10_000 });
}
