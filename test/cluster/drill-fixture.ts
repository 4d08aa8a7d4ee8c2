// What every drill shares: a cluster, the observer's collector and the claims from the event
// stream, the drill app published through the registry, and bounded load through the balancer.
import { Agent, request } from 'node:https';
import { expect } from 'vitest';
import { uploadApp } from '../helpers/hoster-fixture.js';
import { waitFor } from '../helpers/wait-for.js';
import { clusterUnavailable, startCluster, type Cluster, type ClusterOptions } from './cluster-harness.js';
import { followClaims, monotonicMs, observerApp, startCollector, violations, type Collector, type Run } from './observer.js';

/** Why the drills cannot run here (they then skip saying so), or undefined. */
export const UNAVAILABLE = clusterUnavailable();

/** Longest any load loop runs, whatever the drill does. */
export const LOAD_LIMIT_MS = 45_000;
/** A request through the balancer gets this long before it counts as failed. */
const REQUEST_TIMEOUT_MS = 10_000;

export interface LoadResult {
  total: number;
  failures: string[];
  /** Answers by the machine that served them. */
  byMachine: Map<string, number>;
  /** Answers by the app version that served them. */
  byVersion: Map<string, number>;
}

export interface Load {
  readonly total: number;
  readonly failures: string[];
  stop(): Promise<LoadResult>;
}

export interface Drill {
  cluster: Cluster;
  collector: Collector;
  claims: Set<string>;
  publish(name: string, instances: number, version?: string): Promise<void>;
  update(name: string, version: string): Promise<void>;
  /** Running instances of `name` by machine, as the registry says. */
  placement(name: string): Promise<Map<string, string[]>>;
  /** Copies reporting now, by machine. */
  liveByMachine(): Map<string, Run[]>;
  /** GETs (or POSTs, with a small body) `path` through the balancer with `workers` loops until stopped (or `limitMs`, LOAD_LIMIT_MS by default). */
  load(path: string, workers?: number, method?: 'GET' | 'POST', limitMs?: number): Load;
  /** Asserts the observer's invariants over everything reported so far. */
  check(): void;
  down(): Promise<void>;
}

export async function startDrill(options: ClusterOptions): Promise<Drill> {
  const cluster = await startCluster(options);
  let collector: Collector | undefined;
  let follower: ReturnType<typeof followClaims> | undefined;
  try {
    collector = await startCollector(cluster.hostIp);
    follower = followClaims(cluster.registry.client);
  } catch (err) {
    await cluster.down();
    throw err;
  }
  const client = cluster.registry.client;
  const agent = new Agent({ keepAlive: true, ca: cluster.balancer.ca, maxSockets: 16 });
  const url = new URL(cluster.balancer.url);
  const c = collector;
  const f = follower;

  const POST_BODY = JSON.stringify({ payload: 'x'.repeat(200) });
  const get = (path: string, method: 'GET' | 'POST' = 'GET') =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const headers = method === 'POST' ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(POST_BODY)) } : {};
      const req = request({ host: url.hostname, port: url.port, path, method, headers, agent, servername: 'localhost', timeout: REQUEST_TIMEOUT_MS }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
      req.on('error', reject);
      req.end(method === 'POST' ? POST_BODY : undefined);
    });

  return {
    cluster,
    collector: c,
    claims: f.claims,
    publish: async (name, instances, version = 'v1') => {
      const bundle = await uploadApp(client, observerApp(version));
      await client.publishApp({ name, path: `/${name}`, instances, bundle, env: { COLLECTOR_URL: c.url } });
      await waitFor(async () => (await client.listAppInstances(name)).filter((i) => i.state === 'running').length === instances, {
        deadlineMs: 40_000,
        what: `${instances} instances of ${name} running`,
      }).catch((err) => {
        throw new Error(`${(err as Error).message}\n${cluster.tail()}`);
      });
    },
    update: async (name, version) => {
      await client.updateApp(name, { bundle: await uploadApp(client, observerApp(version)) });
    },
    placement: async (name) => {
      const out = new Map<string, string[]>();
      for (const i of await client.listAppInstances(name)) {
        if (i.state !== 'running' || i.machine === null) continue;
        out.set(i.machine, [...(out.get(i.machine) ?? []), i.id]);
      }
      return out;
    },
    liveByMachine: () => {
      const out = new Map<string, Run[]>();
      for (const r of c.live()) out.set(r.machine, [...(out.get(r.machine) ?? []), r]);
      return out;
    },
    load: (path, workers = 4, method = 'GET', limitMs = LOAD_LIMIT_MS) => {
      const result: LoadResult = { total: 0, failures: [], byMachine: new Map(), byVersion: new Map() };
      let on = true;
      const until = monotonicMs() + limitMs;
      const loop = async () => {
        while (on && monotonicMs() < until) {
          try {
            const res = await get(path, method);
            if (res.status !== 200) result.failures.push(`${res.status} ${res.body.slice(0, 200)}`);
            else {
              const who = JSON.parse(res.body) as { machine: string; version: string };
              result.byMachine.set(who.machine, (result.byMachine.get(who.machine) ?? 0) + 1);
              result.byVersion.set(who.version, (result.byVersion.get(who.version) ?? 0) + 1);
            }
          } catch (err) {
            result.failures.push((err as Error).message);
          }
          result.total++;
        }
      };
      const loops = Array.from({ length: workers }, loop);
      return {
        get total() {
          return result.total;
        },
        failures: result.failures,
        stop: async () => {
          on = false;
          await Promise.all(loops);
          return result;
        },
      };
    },
    check: () => {
      expect(violations(c.runs(), f.claims), 'the observer saw an instance run twice, or without a claim').toEqual([]);
    },
    down: async () => {
      f.stop();
      agent.destroy();
      await c.close();
      await cluster.down();
    },
  };
}
