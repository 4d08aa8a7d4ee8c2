// Every event kind and instance reason that the Lua scripts and the TypeScript emit is a member of the SDK's unions (sdk/types.ts).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RELEASE_REASONS } from '../../hoster/start-failure.js';
import { EVENT_KINDS, FAILURE_REASONS, INSTANCE_REASONS } from '../../sdk/types.js';

const root = new URL('../../', import.meta.url).pathname;
const scriptsDir = join(root, 'registry/store/scripts');
const lua = readdirSync(scriptsDir)
  .filter((f) => f.endsWith('.lua'))
  .map((f) => ({ file: f, source: readFileSync(join(scriptsDir, f), 'utf8') }));

function tsFiles(dir: string, recurse: boolean): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return recurse ? tsFiles(p, true) : [];
    return f.endsWith('.ts') ? [p] : [];
  });
}

function all(pattern: RegExp, text: string): string[] {
  return [...text.matchAll(pattern)].flatMap((m) => m.slice(1).filter((g): g is string => g !== undefined));
}

describe('event kinds', () => {
  it('every kind a script appends is in EVENT_KINDS, and every member is appended somewhere', () => {
    const seen = new Set<string>();
    for (const { file, source } of lua) {
      // Each appended kind is a literal, except the two forms handled below; a new form fails here.
      const forms = all(/'kind', ([^,)\n]+)/g, source);
      for (const form of forms) {
        const literal = /^'([a-z-]+)'$/.exec(form);
        if (literal) seen.add(literal[1]!);
        else if (form === "'release-' .. status") for (const status of ['active', 'failed']) seen.add(`release-${status}`);
        else if (form === 'kind') for (const k of all(/event\('([a-z-]+)'\)/g, source)) seen.add(k);
        else throw new Error(`${file} appends an event kind this test cannot read: ${form}`);
      }
    }
    // setReleaseStatus's status is 'active' or 'failed' (AppStore.setReleaseStatus takes only those).
    expect([...seen].sort()).toEqual([...EVENT_KINDS].sort());
  });
});

describe('instance reasons', () => {
  const members = new Set<string>(INSTANCE_REASONS);

  it('every reason a script gives is in INSTANCE_REASONS; releaseInstance counts exactly FAILURE_REASONS as failures', () => {
    const given = lua.flatMap(({ source }) => all(/'reason', '([a-z_]+)'/g, source));
    expect(given.length).toBeGreaterThan(0);
    for (const reason of given) expect(members, reason).toContain(reason);
    const release = lua.find((s) => s.file.startsWith('releaseInstance-'))!.source;
    const table = /local failures = \{([^}]*)\}/.exec(release)![1]!;
    expect(all(/([a-z_]+) = true/g, table).sort()).toEqual([...FAILURE_REASONS].sort());
  });

  it('every reason the hoster and the reconciler give is in INSTANCE_REASONS', () => {
    const files = [...tsFiles(join(root, 'hoster'), true), ...tsFiles(join(root, 'registry'), false)];
    const patterns = [
      /reason: '([a-z_]+)'/g,
      /releaseWith\('([a-z_]+)'/g,
      /releaseWith\(\w+ \? '([a-z_]+)' : '([a-z_]+)'/g,
      /reason: [\w.]+ \? '([a-z_]+)' : '([a-z_]+)'/g,
      /reason \?\? '([a-z_]+)'/g,
      /new InstallFailure\('([a-z_]+)'/g,
      /instanceof \w+ \? '([a-z_]+)'/g,
    ];
    // The hoster's install failures are a table by error code (start-failure.ts), not literals in calls.
    const given = new Set([...files.flatMap((f) => patterns.flatMap((p) => all(p, readFileSync(f, 'utf8')))), ...Object.values(RELEASE_REASONS)]);
    for (const reason of ['crash_loop', 'unhealthy', 'not_listening', 'port_taken', 'hoster_stopped', 'fenced', 'build_failed', 'app_deleted']) {
      expect(given, `the scan finds ${reason}`).toContain(reason);
    }
    for (const reason of given) expect(members, reason).toContain(reason);
  });
});
