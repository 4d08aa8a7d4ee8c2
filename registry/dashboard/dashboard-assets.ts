import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

/** The bundle's entry files, written by scripts/build-dashboard.mjs beside the assets. */
interface Manifest {
  script: string;
  style: string;
}

export interface Asset {
  body: Buffer;
  gzip: Buffer;
  type: string;
  etag: string;
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** The built dashboard: its page and its hashed assets, read and compressed once at start. */
export interface DashboardAssets {
  page: Asset;
  byName: ReadonlyMap<string, Asset>;
}

/**
 * Finds the bundle built by `npm run build`: dist/dashboard/ beside the compiled registry, or,
 * when the registry runs from its TypeScript source (tests), the checkout's dist/dashboard/.
 * Returns undefined when it was never built.
 */
export function loadDashboardAssets(dir: string | undefined = findBuilt()): DashboardAssets | undefined {
  if (dir === undefined) return undefined;
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
  const byName = new Map<string, Asset>();
  for (const name of readdirSync(join(dir, 'assets'))) {
    const type = TYPES[extname(name)];
    if (type !== undefined) byName.set(name, asset(readFileSync(join(dir, 'assets', name)), type));
  }
  return { page: asset(Buffer.from(pageHtml(manifest)), 'text/html; charset=utf-8'), byName };
}

function findBuilt(): string | undefined {
  for (const candidate of ['../../dashboard/', '../../dist/dashboard/']) {
    const dir = fileURLToPath(new URL(candidate, import.meta.url));
    if (existsSync(join(dir, 'manifest.json'))) return dir;
  }
  return undefined;
}

function asset(body: Buffer, type: string): Asset {
  return { body, gzip: gzipSync(body, { level: 9 }), type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
}

/** The one page: no inline script or style, so the Content-Security-Policy can forbid both. */
function pageHtml(m: Manifest): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>berth dashboard</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/dashboard/assets/${m.style}">
<script type="module" src="/dashboard/assets/${m.script}"></script>
</head>
<body>
<div id="root"><noscript>The berth dashboard needs JavaScript. The CLI (berth --help) does everything it does.</noscript></div>
</body>
</html>
`;
}
