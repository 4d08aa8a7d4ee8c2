import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const AMI = join(import.meta.dirname, '..', '..', 'ami');
const TEMPLATE = join(AMI, 'berth.pkr.hcl');
const hasPacker = spawnSync('packer', ['version']).error === undefined;

/** The options provision.sh documents in its --help. */
function provisionOptions(): Set<string> {
  const help = spawnSync('bash', [join(AMI, 'provision.sh'), '--help'], { encoding: 'utf8' });
  expect(help.status, help.stderr).toBe(0);
  return new Set([...help.stdout.matchAll(/^\s+(--[a-z-]+)/gm)].map((m) => m[1]!));
}

describe('the image template and the user-data call provision.sh as it is', () => {
  it('--help documents each option the script parses', () => {
    const parsed = [...readFileSync(join(AMI, 'provision.sh'), 'utf8').matchAll(/^\s+(--[a-z-]+)\)/gm)].map((m) => m[1]!);
    expect(parsed.length).toBeGreaterThan(5);
    expect([...provisionOptions()].sort()).toEqual(parsed.sort());
  });

  it('uses only options provision.sh has', () => {
    const options = provisionOptions();
    const template = readFileSync(TEMPLATE, 'utf8');
    const call = /provision\.sh (--image [^"]*)"/.exec(template)?.[1];
    expect(call, 'the template runs provision.sh --image').toBeDefined();
    for (const flag of call!.match(/--[a-z-]+/g)!) expect(options, `${flag} in berth.pkr.hcl`).toContain(flag);
    const userData = readdirSync(join(AMI, 'cloud-init')).filter((f) => f.endsWith('.yaml'));
    expect(userData.sort()).toEqual(['app-machine.yaml', 'registry-balancer.yaml']);
    for (const file of userData) {
      const text = readFileSync(join(AMI, 'cloud-init', file), 'utf8');
      expect(text.startsWith('#cloud-config\n'), file).toBe(true);
      expect(text).toContain('- - /usr/local/sbin/berth-provision');
      for (const flag of text.match(/^ {4}- (--[a-z-]+)$/gm)!.map((l) => l.slice(6))) expect(options, `${flag} in ${file}`).toContain(flag);
    }
  });
});

if (!hasPacker) console.warn('skipped: packer validate (packer is not installed; it is not in Debian\'s archive: https://developer.hashicorp.com/packer/install)');

describe.skipIf(!hasPacker)('packer validate', () => {
  it('accepts ami/berth.pkr.hcl', () => {
    // Syntax and variables; the amazon plugin (packer init) is needed for a full validate.
    const run = spawnSync('packer', ['validate', '-syntax-only', TEMPLATE], { encoding: 'utf8' });
    expect(run.status, run.stdout + run.stderr).toBe(0);
  });
});
