import { readdirSync, readFileSync } from 'node:fs';

/**
 * Processes that belong to a platform started under `dir`: their command line or environment
 * names it (the daemons and Redis inherit `berth up`'s environment, the hoster's shims its data
 * directory). Apps run with an environment of their own: find them with appProcesses(tag).
 */
export function platformProcesses(dir: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))) continue;
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
      if (cmd.includes(dir) || environ.includes(dir)) out.push(`${pid} ${cmd}`);
    } catch {
      // gone
    }
  }
  return out;
}
