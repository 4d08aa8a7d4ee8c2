// An app's start command comes from, in order: the release, the Procfile's web line, package.json's start script (run by sh with node_modules/.bin on PATH), server.js, index.js; an app with none of them gets an error saying what to add.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NoStartCommandError, startCommand } from '../../hoster/start-command.js';

let dir: string;

beforeEach(() => {
  // A quote and a space in the name: the command must still find the app's files.
  dir = mkdtempSync(join(tmpdir(), "berth start's app-"));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function files(entries: Record<string, string>): void {
  for (const [name, content] of Object.entries(entries)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
}

const pkg = (scripts?: Record<string, string>) => JSON.stringify({ name: 'app', version: '1.0.0', ...(scripts ? { scripts } : {}) });

describe('startCommand', () => {
  it("runs the release's command through the shell, before anything in the app", () => {
    files({ Procfile: 'web: node procfile.js\n', 'package.json': pkg({ start: 'node start.js' }), 'server.js': '' });
    expect(startCommand(dir, 'node release.js --port $PORT')).toEqual({ shell: 'node release.js --port $PORT' });
  });

  it('ignores a blank release command', () => {
    files({ 'server.js': '' });
    expect(startCommand(dir, '   ')).toEqual({ file: process.execPath, args: [join(dir, 'server.js')] });
  });

  it("takes the Procfile's web line, skipping comments and other process types (CRLF too)", () => {
    files({ Procfile: '# processes\r\nworker: node worker.js\r\n  web:   node web.js --port $PORT  \r\n', 'package.json': pkg({ start: 'node start.js' }) });
    expect(startCommand(dir, null)).toEqual({ shell: 'node web.js --port $PORT' });
  });

  it('passes over a Procfile without a web line', () => {
    files({ Procfile: 'worker: node worker.js\n', 'index.js': '' });
    expect(startCommand(dir, null)).toEqual({ file: process.execPath, args: [join(dir, 'index.js')] });
  });

  it('refuses a Procfile whose web line is empty', () => {
    files({ Procfile: 'web:\n' });
    expect(() => startCommand(dir, null)).toThrow(NoStartCommandError);
    expect(() => startCommand(dir, null)).toThrow(/"web:" line has no command/);
  });

  it("runs package.json's start script in sh, with node_modules/.bin first on PATH for every command of it", () => {
    files({
      'package.json': pkg({ start: 'hello && hello again' }),
      'node_modules/.bin/hello': '#!/bin/sh\necho "hello $*"\n',
      'server.js': '',
    });
    chmodSync(join(dir, 'node_modules/.bin/hello'), 0o755);
    const command = startCommand(dir, null);
    expect(command).toHaveProperty('shell');
    const { shell } = command as { shell: string };
    expect(shell.endsWith('\nhello && hello again')).toBe(true);
    const out = execFileSync('/bin/sh', ['-c', shell], { cwd: tmpdir(), env: { PATH: '/usr/bin:/bin' }, encoding: 'utf8' });
    expect(out).toBe('hello \nhello again\n');
  });

  it('prefers server.js to index.js, as npm start does', () => {
    files({ 'package.json': pkg(), 'server.js': '', 'index.js': '' });
    expect(startCommand(dir, null)).toEqual({ file: process.execPath, args: [join(dir, 'server.js')] });
  });

  it('says what to add when nothing starts the app', () => {
    files({ 'package.json': pkg({ test: 'vitest' }), 'README.md': '' });
    const err = (() => {
      try {
        startCommand(dir, null);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(NoStartCommandError);
    expect((err as Error).message).toMatch(/add a Procfile with a line "web: node server\.js", or a "start" script in package\.json/);
  });

  it('says so when package.json is not valid JSON', () => {
    files({ 'package.json': '{ nope' });
    expect(() => startCommand(dir, null)).toThrow(/package\.json is not valid JSON/);
  });
});
