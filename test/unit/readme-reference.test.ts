// The reference's error table (docs/api.md) lists exactly the catalogue's codes, and its configuration page (docs/configuration.md) every environment variable a daemon reads; the README stays a door.
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE } from '../../common/errors.js';
import { BALANCER_OPTIONS } from '../../balancer/balancer-daemon.js';
import { HOSTER_OPTIONS } from '../../hoster/hoster-daemon.js';
import { PROXY_OPTIONS } from '../../proxy/proxy-daemon.js';
import { REGISTRY_OPTIONS } from '../../registry/registry-daemon.js';
import { SCALER_OPTIONS } from '../../scaler/scaler-daemon.js';

const api = readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8');
const configuration = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

function section(title: string, page = configuration): string {
  const start = page.indexOf(`\n${title}\n`);
  expect(start, `section ${title}`).toBeGreaterThanOrEqual(0);
  const rest = page.slice(start + title.length + 2);
  const level = title.split(' ')[0]!;
  const end = rest.search(new RegExp(`\\n#{1,${level.length}} `));
  return end < 0 ? rest : rest.slice(0, end);
}

describe('README', () => {
  it('documents every error code with its status, and no stale one', () => {
    const rows = [...section('### Errors', api).matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1]!, Number(m[2])]);
    const documented = Object.fromEntries(rows);
    const catalogue = Object.fromEntries(Object.entries(ERROR_CATALOGUE).map(([code, e]) => [code, e.status]));
    expect(documented).toEqual(catalogue);
  });

  it('documents every environment variable of berth registry with its default', () => {
    const table = section('### `berth registry`');
    for (const [key, spec] of Object.entries(REGISTRY_OPTIONS)) {
      expect(table, key).toContain(`\`${spec.env}\``);
      const row = table.split('\n').find((line) => line.includes(`\`${spec.env}\``))!;
      const shown = Array.isArray(spec.default) ? '' : String(spec.default);
      if (shown !== '') expect(row, `${spec.env} default`).toContain(`\`${shown}\``);
    }
  });
});

describe('README hoster reference', () => {
  it('documents every environment variable of berth hoster', () => {
    const table = section('### `berth hoster`');
    for (const [key, spec] of Object.entries(HOSTER_OPTIONS)) {
      if (spec.env?.startsWith('BERTH_REDIS_') || spec.env === 'REDIS_URL') continue;
      expect(table, key).toContain(`\`${spec.env}\``);
    }
  });
});

describe('README proxy reference', () => {
  it('documents every environment variable of berth proxy', () => {
    const table = section('### `berth proxy`');
    for (const [key, spec] of Object.entries(PROXY_OPTIONS)) {
      if (spec.env?.startsWith('BERTH_REDIS_') || spec.env === 'REDIS_URL') continue;
      expect(table, key).toContain(`\`${spec.env}\``);
    }
  });
});

describe('README balancer reference', () => {
  it('documents every environment variable of berth balancer', () => {
    const table = section('### `berth balancer`');
    for (const [key, spec] of Object.entries(BALANCER_OPTIONS)) {
      if (spec.env?.startsWith('BERTH_REDIS_') || spec.env === 'REDIS_URL') continue;
      expect(table, key).toContain(`\`${spec.env}\``);
    }
  });
});

describe('README scaler reference', () => {
  it('documents every environment variable of berth scaler with its default', () => {
    const table = section('### `berth scaler`');
    for (const [key, spec] of Object.entries(SCALER_OPTIONS)) {
      if (spec.env?.startsWith('BERTH_REDIS_') || spec.env === 'REDIS_URL') continue;
      expect(table, key).toContain(`\`${spec.env}\``);
      const row = table.split('\n').find((line) => line.includes(`\`${spec.env}\``))!;
      expect(row, `${spec.env} default`).toContain(`\`${String(spec.default)}\``);
    }
  });
});

describe('README', () => {
  it('is a door of a few hundred lines, with the reference in docs/', () => {
    expect(readme.split('\n').length).toBeLessThan(400);
    for (const [, link] of readme.matchAll(/\]\((docs\/[a-z-]+\.md)/g)) expect(existsSync(new URL(`../../${link}`, import.meta.url)), link).toBe(true);
  });
});
