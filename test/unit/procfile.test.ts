// The Procfile: every "name: command" line is a process type; a line without a name or command is refused, naming the line; the registry reads it from a stored .tar.gz bundle.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseProcfile } from '../../common/procfile.js';
import { packFolder } from '../../sdk/bundle-packer.js';
import { readBundleProcfile } from '../../registry/bundle-procfile.js';
import { releaseProcesses } from '../../registry/release-processes.js';
import { DEFAULT_HEALTH_CHECK, type Release } from '../../registry/store/app.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

describe('parseProcfile', () => {
  it('reads every name: command line, skipping blanks and comments', () => {
    const text = '# processes\nweb: node server.js\r\n\nworker:   node worker.js --queue a  \nrelease: node migrate.js\n';
    expect(parseProcfile(text)).toEqual({ web: 'node server.js', worker: 'node worker.js --queue a', release: 'node migrate.js' });
  });

  it('keeps colons inside the command', () => {
    expect(parseProcfile('clock: node -e "console.log(1)" --at 12:00')).toEqual({ clock: 'node -e "console.log(1)" --at 12:00' });
  });

  it.each([
    ['a line without a name', ': node x.js', /line 1.*no process name/],
    ['a line without a command', 'web: node s.js\nworker:', /line 2.*no command after "worker:"/],
    ['a line without a colon', 'node server.js', /line 1.*no "name:"/],
    ['a bad name', 'Web Server: node s.js', /not a process type name/],
    ['a repeated name', 'web: a\nweb: b', /a second time/],
  ])('refuses %s with invalid_procfile, naming the line', (_what, text, message) => {
    expect(codeOf(() => parseProcfile(text))).toBe('invalid_procfile');
    expect(() => parseProcfile(text)).toThrow(message);
  });
});

describe('readBundleProcfile', () => {
  it("reads the Procfile out of a packed bundle, and {} when there is none", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-procfile-'));
    writeFileSync(join(dir, 'server.js'), '');
    const without = await packFolder(dir);
    expect(await readBundleProcfile(chunks(without.bytes))).toEqual({});
    writeFileSync(join(dir, 'Procfile'), 'web: node server.js\nworker: node worker.js\n');
    const withIt = await packFolder(dir);
    expect(await readBundleProcfile(chunks(withIt.bytes))).toEqual({ web: 'node server.js', worker: 'node worker.js' });
    writeFileSync(join(dir, 'Procfile'), 'worker:\n');
    await expect(readBundleProcfile(chunks((await packFolder(dir)).bytes))).rejects.toMatchObject({ code: 'invalid_procfile' });
  });
});

/** The bytes in small pieces, as the bundle store yields its chunks. */
async function* chunks(bytes: Buffer): AsyncGenerator<Buffer> {
  for (let i = 0; i < bytes.length; i += 100) yield bytes.subarray(i, i + 100);
}

describe('releaseProcesses', () => {
  const base: Release = {
    version: 1, bundle: 'b', env: {}, command: null, requirements: {}, healthCheck: DEFAULT_HEALTH_CHECK, description: '', createdBy: 't', createdAt: 0, status: 'active',
    processes: { worker: 'node w.js', clock: 'node c.js' }, releaseCommand: 'node m.js',
  };

  it('takes new code\'s types from its Procfile, web and release apart, given ones winning', () => {
    const out = releaseProcesses({ procfile: { web: 'node s.js', worker: 'node w2.js', release: 'node m2.js' }, base, given: { processes: { mailer: 'node mail.js', worker: 'node w3.js' } } });
    expect(out).toEqual({ processes: { worker: 'node w3.js', mailer: 'node mail.js' }, releaseCommand: 'node m2.js' });
  });

  it('keeps the types of code that stays, and lets a given release command win or go back', () => {
    expect(releaseProcesses({ procfile: undefined, base, given: {} })).toEqual({ processes: base.processes, releaseCommand: 'node m.js' });
    expect(releaseProcesses({ procfile: undefined, base, given: { releaseCommand: 'node other.js', releaseTimeoutMs: 5000 } })).toEqual({ processes: base.processes, releaseCommand: 'node other.js', releaseTimeoutMs: 5000 });
    expect(releaseProcesses({ procfile: undefined, keptProcfile: { release: 'node m0.js' }, base, given: { releaseCommand: null } }).releaseCommand).toBe('node m0.js');
  });

  it('refuses a given type without a command', () => {
    expect(codeOf(() => releaseProcesses({ procfile: {}, given: { processes: { worker: '  ' } } }))).toBe('invalid_procfile');
  });
});
