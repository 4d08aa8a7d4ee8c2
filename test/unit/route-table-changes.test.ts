// The route table notes which apps changed (trackChanges/takeChanges), so that the haproxy engine applies a change of one app without looking at all of them.
import { describe, expect, it } from 'vitest';
import { RouteTable, type RunningInstance } from '../../forward/index.js';

const instance = (id: string, service: string, machine = 'm1'): RunningInstance => ({ id, service, epoch: 1, machine, host: '127.0.0.1', port: 4000, pid: 1 });
const taken = (t: RouteTable) => {
  const c = t.takeChanges();
  return { all: c.all, apps: [...c.apps].sort(), domains: c.domains };
};

describe('route table changes', () => {
  it('says everything the first time, then each app a change touched, once', () => {
    const t = new RouteTable('m1');
    t.trackChanges();
    t.setApp({ name: 'pay', path: '/pay', stripPrefix: false });
    expect(taken(t)).toEqual({ all: true, apps: ['pay'], domains: true });
    expect(taken(t)).toEqual({ all: false, apps: [], domains: false });
    t.addInstance(instance('i1', 'pay'));
    t.addInstance(instance('i2', 'shop')); // an app not known yet: noted too
    t.setApp({ name: 'pay', path: '/pay', stripPrefix: true });
    expect(taken(t)).toEqual({ all: false, apps: ['pay', 'shop'], domains: false });
    t.removeInstance('i1');
    t.removeInstance('nobody');
    expect(taken(t)).toEqual({ all: false, apps: ['pay'], domains: false });
  });

  it('notes the app whose prefix another takes, domains, removals and full loads', () => {
    const t = new RouteTable('m1');
    t.trackChanges();
    t.setApp({ name: 'a', path: '/x', stripPrefix: false });
    t.takeChanges();
    t.setApp({ name: 'b', path: '/x', stripPrefix: false });
    expect(taken(t)).toEqual({ all: false, apps: ['a', 'b'], domains: false });
    expect(t.routeOf('a')).toBeUndefined();
    expect(t.routeOf('b')?.prefix).toBe('/x');
    expect(t.routeAt('/x')?.app).toBe('b');
    t.setDomain({ domain: 'b.example.com', app: 'b', path: '/' });
    expect(taken(t).domains).toBe(true);
    t.removeApp('b');
    expect(taken(t)).toEqual({ all: false, apps: ['b'], domains: true });
    t.replaceAll([{ name: 'c', path: '/c', stripPrefix: false }], [instance('i9', 'c')]);
    expect(taken(t).all).toBe(true);
    expect(taken(t).all).toBe(false);
  });

  it('says everything, every time, to a reader that never asked to track', () => {
    const t = new RouteTable('m1');
    t.setApp({ name: 'pay', path: '/pay', stripPrefix: false });
    expect(taken(t).all).toBe(true);
    expect(taken(t).all).toBe(true);
  });
});
