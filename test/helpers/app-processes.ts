import { readdirSync, readFileSync } from 'node:fs';

/**
 * The app processes alive on this machine, found the way an operator would: every process
 * whose environment carries BERTH_INSTANCE (read from /proc). Keyed by instance id; more
 * than one pid for an id means the instance runs twice.
 */
export function appProcesses(tag?: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    let environ: string;
    try {
      environ = readFileSync(`/proc/${entry}/environ`, 'latin1');
    } catch {
      continue;
    }
    const vars = environ.split('\0');
    const instance = vars.find((v) => v.startsWith('BERTH_INSTANCE='))?.slice('BERTH_INSTANCE='.length);
    if (!instance) continue;
    // Tests tag their apps (TEST_TAG in the app's environment) to count only their own.
    if (tag !== undefined && !vars.includes(`TEST_TAG=${tag}`)) continue;
    // A zombie has no environment worth counting; skip exited ones.
    try {
      if (/^State:\s+Z/m.test(readFileSync(`/proc/${entry}/status`, 'utf8'))) continue;
    } catch {
      continue;
    }
    const list = out.get(instance) ?? [];
    list.push(Number(entry));
    out.set(instance, list);
  }
  return out;
}
