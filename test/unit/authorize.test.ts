// What a token may do, decided from its grant, the method and the path alone.
import { describe, expect, it } from 'vitest';
import { pathSegment, publishRefusal, refusal } from '../../registry/api/authorize.js';

const full = { name: 'ops', app: null, readOnly: false };
const viewer = { name: 'viewer', app: null, readOnly: true };
const shop = { name: 'ci', app: 'shop', readOnly: false };
const shopViewer = { name: 'watch', app: 'shop', readOnly: true };

describe('refusal', () => {
  it('lets a full token do everything', () => {
    for (const [m, p] of [['POST', '/apps'], ['DELETE', '/apps/x'], ['POST', '/tokens'], ['GET', '/audit'], ['POST', '/services/s/claim']]) expect(refusal(full, m!, p!)).toBeUndefined();
  });

  it('lets a read-only token read everything and change nothing', () => {
    expect(refusal(viewer, 'GET', '/apps/x/config')).toBeUndefined();
    expect(refusal(viewer, 'HEAD', '/bundles/abc')).toBeUndefined();
    expect(refusal(viewer, 'GET', '/tokens')).toBeUndefined();
    for (const [m, p] of [['PATCH', '/apps/x/config'], ['PUT', '/bundles/abc'], ['POST', '/tokens'], ['DELETE', '/tokens/a'], ['POST', '/services/s/claim']]) expect(refusal(viewer, m!, p!)).toMatch(/read-only/);
  });

  it("keeps an app's token to its app, its bundles and the machine list", () => {
    expect(refusal(shop, 'PUT', '/apps/shop')).toBeUndefined();
    expect(refusal(shop, 'GET', '/apps/shop/logs')).toBeUndefined();
    expect(refusal(shop, 'POST', '/apps')).toBeUndefined();
    expect(refusal(shop, 'PUT', '/bundles/abc')).toBeUndefined();
    expect(refusal(shop, 'GET', '/machines')).toBeUndefined();
    expect(refusal(shop, 'GET', '/apps/other')).toMatch(/for the app shop only: it cannot reach the app other/);
    expect(refusal(shop, 'GET', '/apps/%73hop')).toBeUndefined();
    expect(refusal(shop, 'GET', '/apps/%E0%A4%A')).toMatch(/cannot reach/);
    for (const p of ['/events', '/services', '/scaler/log', '/audit', '/tokens', '/unclaimed']) expect(refusal(shop, 'GET', p), p).toBeDefined();
    expect(refusal(shopViewer, 'PATCH', '/apps/shop/config')).toMatch(/read-only/);
  });

  it('checks the app a publish names', () => {
    expect(publishRefusal(shop, 'shop')).toBeUndefined();
    expect(publishRefusal(shop, 'other')).toMatch(/cannot publish other/);
    expect(publishRefusal(full, 'other')).toBeUndefined();
  });

  it('decodes path segments, and leaves a malformed one as it is', () => {
    expect(pathSegment('a%2Db')).toBe('a-b');
    expect(pathSegment('%E0%A4%A')).toBe('%E0%A4%A');
  });
});
