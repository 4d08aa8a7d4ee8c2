#!/usr/bin/env node
// The `berth` command: daemons and the platform. Only this entry reads argv and the environment.
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { hosterCommand } from './hoster-command.js';
import { proxyCommand } from './proxy-command.js';
import { registryCommand } from './registry-command.js';
import { upCommand } from './up-command.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command()
  .name('berth')
  .description('A self-hosted Platform as a Service: publish a Node.js web app with one command.')
  .version(pkg.version, '-V, --version')
  .showHelpAfterError('(run berth --help for the commands)')
  .exitOverride();

program.addCommand(upCommand());
program.addCommand(registryCommand());
program.addCommand(hosterCommand());
program.addCommand(proxyCommand());

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  process.stderr.write(`berth: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
