import { readFileSync } from 'node:fs';

/** The files of examples/cpu-burner: burns CPU per request (/work?ms=N) or while its BURN_FLAG file exists. */
export function burnerApp(): Record<string, string> {
  const dir = new URL('../../examples/cpu-burner/', import.meta.url);
  return {
    'server.js': readFileSync(new URL('server.js', dir), 'utf8'),
    'package.json': readFileSync(new URL('package.json', dir), 'utf8'),
  };
}
