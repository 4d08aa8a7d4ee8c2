// When this machine cannot reach Redis, is Redis away for every machine (then stopping the
// apps buys no safety and costs the platform: keep them running, for a bounded grace) or is
// this machine alone cut off (then another machine may soon run its instances: stop them
// before their leases end, as always)? The hoster asks the other machines' proxies when they
// last reached Redis, and judges with the same evidence the reaper uses to hold lease
// expiries (reapExpired-7.lua). The argument for safety is in docs/internals.md ("Claims are
// leases with fencing").
import type { Logger } from 'pino';
import type { Machine, ReaperSettings, RegistryStore } from '../registry/store/index.js';
import { proxyOrigin } from '../forward/index.js';
import type { ControlPlaneReport } from '../proxy/index.js';

/** This machine's presence (markPresent), and so its own test of reaching Redis, this often. */
export const PRESENCE_EVERY_MS = 250;
/** A presence write unanswered this long counts as failed. */
const PRESENCE_TIMEOUT_MS = 1000;
/** Allowance for scheduling and the offset between this machine's clock and Redis's. */
export const MARGIN_MS = 500;
/** Peers are read again on heartbeats, at most this often. */
const PEER_REFRESH_MS = 4000;

/** Another machine as this one knows it, with its proxy's answer of this round. */
export interface PeerView {
  machine: string;
  /** It held claims when last heard of (its heartbeat, or its proxy's table of instances). */
  holding: boolean;
  /**
   * When its proxy last reached Redis, on this machine's monotonic clock (null: not since it
   * started); undefined: no answer this round (or it has no proxy to ask).
   */
  reachedAt?: number | null;
  /** When its proxy's last probe of Redis failed (this machine's clock; null: none did). */
  failedAt?: number | null;
  /** How coarse its proxy's knowledge is (its probe period). */
  probeEveryMs?: number;
  /**
   * How long its answer took: its report describes a moment up to this much before this
   * machine read it (a busy event loop reads late), so `reachedAt` may be this much too late.
   */
  roundTripMs?: number;
}

/** A peer's failed probe this recent says it is failing now (a probe times out within 1 s). */
export const FAILING_WITHIN_MS = 2000;

/**
 * A peer that reaches Redis again, but whose own probes failed since this machine lost it and
 * until this recently, says that Redis is just back, not that this machine is cut off: when a
 * frozen Redis thaws, the proxies' PINGs come through a moment before this hoster's presence
 * write (behind its backlog). Within this long, two of this machine's own writes decide.
 */
export const BACK_WITHIN_MS = 2 * (PRESENCE_TIMEOUT_MS + PRESENCE_EVERY_MS) + MARGIN_MS;

/**
 * A stall of this machine's own (its first unanswered write went out late), or a peer's answer
 * read late, is believed up to this long (an ask's timeout): so a machine cut off, whose
 * others follow it out of Redis a moment later, still learns of the cut.
 */
export const LATE_MS = 1000;

export interface JudgeInput {
  /** Monotonic now (ms). */
  now: number;
  /** When this machine last reached Redis (monotonic); undefined: never since it started. */
  reachedAt: number | undefined;
  /**
   * When this machine's first unanswered presence write was sent (monotonic): Redis did not
   * answer it from then on. Later than `reachedAt` by a presence period, or by as long as its
   * event loop stalled. @default reachedAt + presenceEveryMs
   */
  lostAt?: number;
  /** The reapers' settings, as last read from Redis; undefined: never read. */
  reaper: ReaperSettings | undefined;
  peers: PeerView[];
  /**
   * How many machines held claims (this one included) when this one last wrote its presence:
   * the reapers' count. Those not among `peers` holding claims count against the verdict.
   */
  holders?: number;
  /** This machine's own presence period. @default PRESENCE_EVERY_MS */
  presenceEveryMs?: number;
  /** @default MARGIN_MS */
  marginMs?: number;
}

export type Verdict =
  /** Redis is away for (more than the reaper's fraction of) every machine: keep running, bounded by the grace. */
  | { kind: 'away'; why: string }
  /** Another machine reached Redis after this one lost it: this one is cut off; fence as always. */
  | { kind: 'cut_off'; why: string }
  /** Not enough evidence either way (too early, too few answers): fence as always. */
  | { kind: 'unsure'; why: string; early?: true };

/**
 * The judgement, a pure function of what this machine knows. 'away' only when the reaper,
 * looking at the same moment, would hold lease expiries: this machine and more than the
 * reaper's fraction of the machines holding claims have been silent (not reached Redis) for
 * longer than its silence limit plus one reaper tick, so that a hold has begun; and no machine
 * reached Redis after this one lost it.
 */
export function judgeControlPlane(input: JudgeInput): Verdict {
  const { now, reachedAt, reaper, peers } = input;
  const presenceEvery = input.presenceEveryMs ?? PRESENCE_EVERY_MS;
  const margin = input.marginMs ?? MARGIN_MS;
  if (reachedAt === undefined) return { kind: 'unsure', why: 'this machine has not reached Redis since it started' };
  if (reaper === undefined) return { kind: 'unsure', why: "the reapers' settings were never read (no reaper had run)" };
  const lostAt = Math.min(Math.max(reachedAt, input.lostAt ?? reachedAt + presenceEvery), reachedAt + presenceEvery + LATE_MS);
  const back: string[] = [];
  for (const p of peers) {
    if (p.reachedAt === undefined || p.reachedAt === null) continue;
    const probeEvery = p.probeEveryMs ?? presenceEvery;
    // A peer that failed since this machine lost Redis, and reached it after that, came back
    // (a thaw, or the evidence changing mid-outage): judged from this machine's last contact,
    // as strictly as ever. Any other peer's later contact is proof of a cut only if it came
    // after this machine's first unanswered write, at the earliest its answer allows: a
    // hoster whose event loop stalled across the moment Redis froze wrote last a second or
    // more before the proxies' last PING, and that is no cut.
    const returned = typeof p.failedAt === 'number' && p.failedAt > lostAt && p.reachedAt > p.failedAt;
    const later = returned ? p.reachedAt > reachedAt + probeEvery + presenceEvery + margin : p.reachedAt - Math.min(p.roundTripMs ?? 0, LATE_MS) > lostAt + probeEvery + margin;
    if (later) {
      const justBack = typeof p.failedAt === 'number' && p.failedAt > reachedAt && now - p.failedAt < BACK_WITHIN_MS;
      if (justBack) {
        back.push(p.machine);
        continue;
      }
      return {
        kind: 'cut_off',
        why: `${p.machine} reached Redis ${Math.round(now - p.reachedAt)} ms ago, ${Math.round(p.reachedAt - reachedAt)} ms after this machine last did: this machine is the one cut off`,
      };
    }
  }
  // Not away any more, and not cut off either (yet): the deadline stays where the last 'away' put it.
  if (back.length > 0) return { kind: 'unsure', why: `Redis answers ${back.join(', ')} again, whose probes failed too until less than ${BACK_WITHIN_MS} ms ago: it is likely back, and this machine's own next write decides` };
  const need = reaper.silentMs + reaper.intervalMs + margin;
  const silentFor = now - reachedAt;
  if (silentFor < need) return { kind: 'unsure', early: true, why: `Redis has been out of reach for ${Math.round(silentFor)} ms, under the ${need} ms that tell` };
  let silent = 0;
  let unknown = 0;
  let answered = 0;
  for (const p of peers) {
    if (p.reachedAt === undefined) {
      unknown++;
      continue;
    }
    answered++;
    // Silent: no answer from Redis for long enough, and failing now (a stalled proxy is not).
    const failing = typeof p.failedAt === 'number' && now - p.failedAt <= FAILING_WITHIN_MS && (p.reachedAt === null || p.failedAt > p.reachedAt);
    const quiet = failing && (p.reachedAt === null || p.reachedAt + (p.probeEveryMs ?? presenceEvery) <= now - need);
    // A quiet machine that holds nothing is no more counted by the reaper than by this judgement.
    if (quiet && p.holding) silent++;
    else if (!quiet) unknown++;
  }
  // Machines that hold claims by Redis's last word, but that this one has no address for (it
  // read the machines before they joined): unknown, so against.
  const knownHolders = 1 + peers.filter((p) => p.holding).length;
  unknown += Math.max(0, (input.holders ?? knownHolders) - knownHolders);
  const share = (1 + silent) / (1 + silent + unknown);
  const seen = `${answered} of ${peers.length} other machines answer, none reached Redis since this one lost it; ${1 + silent} of ${1 + silent + unknown} machines holding claims are silent for over ${need} ms`;
  const alone = peers.length === 0 && unknown === 0;
  if (share > reaper.fraction) return { kind: 'away', why: alone ? `no other machine: Redis is away for the whole platform (silent for ${Math.round(silentFor)} ms)` : `Redis is away for every machine that answers (${seen})` };
  return { kind: 'unsure', why: `cannot tell that Redis is away for everyone: ${seen}, not more than ${reaper.fraction * 100} %` };
}

export interface ControlPlaneWatchOptions {
  machine: string;
  store: RegistryStore;
  logger: Logger;
  /** BERTH_CONTROL_PLANE_GRACE_MS: apps run at most this long after this machine last reached Redis; 0: never past the lease. */
  graceMs: number;
  leaseMs: number;
  stopGraceMs: number;
  /** Claims this machine holds now. */
  holding: () => number;
  /** A new verdict (or Redis reached again): the runners push their deadlines to their shims. */
  onChange: () => void;
  /** Redis is reached again after it was not: renew first, then everything else. */
  onBack: (awayMs: number) => void;
  /** Asks a proxy for its report; injectable for tests. */
  ask?: (origin: string, timeoutMs: number) => Promise<ControlPlaneReport>;
}

/**
 * Keeps this machine's presence in Redis (its sign of life for the reaper), knows when it last
 * reached Redis, and while it does not, asks the other machines' proxies and judges. Runners
 * ask it how far past their lease they may keep their apps (`extendedUntil`).
 */
export class ControlPlaneWatch {
  /** When this machine last reached Redis (monotonic). */
  reachedAt: number | undefined;
  /** When the first presence write since then that went unanswered was sent (monotonic). */
  private lostAt: number | undefined;
  private failing = false;
  private presenceTimer: NodeJS.Timeout | undefined;
  private presenceInFlight = false;
  private asking: Promise<void> | undefined;
  private closed = false;
  private peers: { machine: string; origin: string | undefined; holding: boolean }[] = [];
  private peersReadAt = -Infinity;
  /** Machines holding claims (this one included) by the last presence written. */
  private holders: number | undefined;
  private reaper: ReaperSettings | undefined;
  private latest: Verdict | undefined;
  /** The last 'away' verdict's round start: extensions are counted from it. */
  private awayAskedAt: number | undefined;
  private infeasibleLogged = false;
  private readonly log: Logger;
  private readonly ask: (origin: string, timeoutMs: number) => Promise<ControlPlaneReport>;

  constructor(private readonly o: ControlPlaneWatchOptions) {
    this.log = o.logger;
    this.ask = o.ask ?? askProxy;
  }

  /** Round trips to peers may take this long. */
  get askTimeoutMs(): number {
    return Math.min(1000, Math.floor(this.o.leaseMs / 8));
  }

  /** A new round of questions this often while Redis is out of reach. */
  get askEveryMs(): number {
    return Math.min(500, Math.floor(this.o.leaseMs / 8));
  }

  /**
   * How far past the last 'away' round an app may run (its shim's deadline): short enough that
   * the reaper's hold (a lease past the last tick that saw the silence) outlasts it even if
   * this hoster dies at once; undefined when no such step leaves room between rounds.
   */
  stepMs(): number | undefined {
    const reapEvery = this.reaper?.intervalMs ?? 1000;
    // The reapers' hold lasts their lease (theirs, not this hoster's, should the two differ).
    const hold = Math.min(this.o.leaseMs, this.reaper?.leaseMs ?? this.o.leaseMs);
    const step = Math.min(Math.floor(this.o.leaseMs / 2), hold - reapEvery - this.askTimeoutMs - MARGIN_MS);
    return step > this.askEveryMs + this.askTimeoutMs + this.o.stopGraceMs + MARGIN_MS ? step : undefined;
  }

  start(): void {
    this.presenceTimer = setInterval(() => void this.presence(), PRESENCE_EVERY_MS);
    void this.presence();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.presenceTimer);
    await this.asking;
    // Leaving with nothing held: the reaper need not count this machine's silence.
    if (this.o.holding() === 0) await this.o.store.markPresent(this.o.machine, this.o.graceMs, false, this.o.leaseMs).catch(() => undefined);
  }

  /** The latest verdict, for logs. */
  get verdict(): Verdict | undefined {
    return this.latest;
  }

  /**
   * Until when (monotonic) an app whose lease is good until `validUntil` may keep running
   * while Redis is away for everyone, or undefined (stop as the lease says): the last 'away'
   * round plus one step, and never past the grace (counted from when this machine last reached
   * Redis, and from the lease, minus the stop's own grace).
   */
  extendedUntil(validUntil: number): number | undefined {
    if (this.o.graceMs <= 0 || this.awayAskedAt === undefined || this.reachedAt === undefined || this.latest?.kind === 'cut_off') return undefined;
    const step = this.stepMs();
    if (step === undefined) return undefined;
    const graceEnd = Math.min(this.reachedAt + this.o.graceMs, validUntil + this.o.graceMs - this.o.stopGraceMs);
    return Math.min(this.awayAskedAt + step, graceEnd + this.o.stopGraceMs);
  }

  /** When the grace of an app whose lease is good until `validUntil` ends (its stop begins then). */
  graceEnd(validUntil: number): number | undefined {
    if (this.reachedAt === undefined) return undefined;
    return Math.min(this.reachedAt + this.o.graceMs, validUntil + this.o.graceMs - this.o.stopGraceMs);
  }

  /**
   * The other machines and the reapers' settings, read while Redis is reachable: on heartbeats,
   * and every second while the settings are unknown (a claim can come before the first reaper
   * tick) or while Redis counts more machines holding claims than this list has.
   */
  async refresh(): Promise<void> {
    const since = performance.now() - this.peersReadAt;
    if (since < PEER_REFRESH_MS && (!this.incomplete() || since < 1000)) return;
    this.peersReadAt = performance.now();
    const [machines, redisNow, reaper, present] = await Promise.all([
      this.o.store.listMachines(),
      this.o.store.now(),
      this.o.store.reaperSettings(),
      this.o.store.presentMachines(),
    ]);
    this.setPeers(machines, redisNow, present);
    this.reaper = reaper;
    if (this.o.graceMs > 0 && reaper !== undefined && this.stepMs() === undefined && !this.infeasibleLogged) {
      this.infeasibleLogged = true;
      this.log.warn(
        { leaseMs: this.o.leaseMs, graceMs: this.o.graceMs },
        `BERTH_CONTROL_PLANE_GRACE_MS has no effect with a lease of ${this.o.leaseMs} ms: apps stop before their leases end whenever Redis is out of reach (a lease of 8000 ms or more leaves room to tell an outage of Redis from this machine being cut off)`,
      );
    }
  }

  /** The reapers' settings are unknown, or Redis counts machines holding claims this list lacks. */
  private incomplete(): boolean {
    return this.reaper === undefined || (this.holders ?? 0) > 1 + this.peers.filter((p) => p.holding).length;
  }

  /**
   * Machines that heartbeat lately, and those holding claims (present), other than this one.
   * A machine holds claims when it is present (as the reapers count), else when its heartbeat says so.
   */
  setPeers(machines: Machine[], redisNow: number, present?: string[]): void {
    const holding = present === undefined ? undefined : new Set(present);
    const known = new Map(machines.map((m) => [m.name, m]));
    const names = new Set([...machines.filter((m) => redisNow - m.heartbeatAt < 15_000).map((m) => m.name), ...(present ?? [])]);
    names.delete(this.o.machine);
    this.peers = [...names].map((name) => {
      const m = known.get(name);
      return { machine: name, origin: proxyOrigin(m?.facts.proxy), holding: holding?.has(name) ?? Number(m?.facts.instances ?? 1) > 0 };
    });
  }

  private async presence(): Promise<void> {
    if (this.presenceInFlight || this.closed) return;
    this.presenceInFlight = true;
    let timer: NodeJS.Timeout | undefined;
    const sentAt = performance.now();
    try {
      const told = await Promise.race([
        this.o.store.markPresent(this.o.machine, this.o.graceMs, this.o.holding() > 0, this.o.leaseMs),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('presence timed out')), PRESENCE_TIMEOUT_MS);
        }),
      ]);
      const awayMs = this.reachedAt === undefined ? 0 : performance.now() - this.reachedAt;
      this.reachedAt = performance.now();
      this.lostAt = undefined;
      this.holders = told.holders;
      if (this.incomplete()) void this.refresh().catch(() => undefined);
      if (this.failing) {
        this.failing = false;
        this.log.info({ awayMs: Math.round(awayMs) }, `Redis reached again after ${Math.round(awayMs)} ms: renewing every lease first`);
        this.o.onBack(awayMs);
      }
    } catch {
      this.lostAt ??= sentAt;
      if (!this.failing) {
        this.failing = true;
        this.latest = undefined;
        const since = this.reachedAt === undefined ? 'never since this hoster started' : `${Math.round(performance.now() - this.reachedAt)} ms ago`;
        this.log.warn({ peers: this.peers.length }, `Redis is out of reach (last reached ${since}): asking the ${this.peers.length} other machine(s) whether it is away for them too`);
      }
      if (this.asking === undefined && !this.closed) this.asking = this.askWhileFailing().finally(() => (this.asking = undefined));
    } finally {
      clearTimeout(timer);
      this.presenceInFlight = false;
    }
  }

  private async askWhileFailing(): Promise<void> {
    while (this.failing && !this.closed) {
      const askedAt = performance.now();
      const peers = await Promise.all(
        this.peers.map(async (p): Promise<PeerView> => {
          if (p.origin === undefined) return { machine: p.machine, holding: p.holding };
          try {
            const report = await this.ask(p.origin, this.askTimeoutMs);
            if (report.machine !== p.machine) return { machine: p.machine, holding: p.holding };
            const at = performance.now();
            const when = (ago: number | null | undefined) => (typeof ago === 'number' ? at - ago : null);
            return {
              machine: p.machine,
              // Its proxy's table may know of claims made since this machine read the list.
              holding: p.holding || (typeof report.localInstances === 'number' && report.localInstances > 0),
              reachedAt: when(report.redis.reachedAgoMs),
              failedAt: when(report.redis.failedAgoMs),
              probeEveryMs: report.redis.probeEveryMs,
              roundTripMs: at - askedAt,
            };
          } catch {
            return { machine: p.machine, holding: p.holding };
          }
        }),
      );
      if (!this.failing || this.closed) return;
      const verdict = judgeControlPlane({ now: performance.now(), reachedAt: this.reachedAt, lostAt: this.lostAt, reaper: this.reaper, peers, holders: this.holders });
      const key = (v: Verdict | undefined) => (v === undefined ? '' : v.kind === 'unsure' && v.early ? 'early' : v.kind);
      const changed = key(verdict) !== key(this.latest);
      this.latest = verdict;
      if (verdict.kind === 'away') this.awayAskedAt = askedAt;
      if (changed && key(verdict) !== 'early') this.logVerdict(verdict);
      this.o.onChange();
      await new Promise((r) => setTimeout(r, Math.max(0, askedAt + this.askEveryMs - performance.now())));
    }
  }

  private logVerdict(v: Verdict): void {
    const since = this.reachedAt === undefined ? 'never' : `${Math.round(performance.now() - this.reachedAt)} ms ago`;
    if (v.kind === 'away') {
      const step = this.stepMs();
      if (this.o.graceMs > 0 && step !== undefined) {
        this.log.warn({ verdict: v.kind }, `${v.why}: apps keep running, for at most ${this.o.graceMs} ms after Redis was last reached (${since})`);
      } else {
        this.log.warn({ verdict: v.kind }, `${v.why}; but no grace applies here (BERTH_CONTROL_PLANE_GRACE_MS is 0, or the lease too short): apps stop before their leases end`);
      }
    } else if (v.kind === 'cut_off') {
      this.log.error({ verdict: v.kind }, `${v.why}: its apps stop before their leases end, and other machines take them over`);
    } else {
      this.log.warn({ verdict: v.kind }, `Redis out of reach (last reached ${since}); ${v.why}: apps stop before their leases end unless it becomes clear that Redis is away for everyone`);
    }
  }
}

async function askProxy(origin: string, timeoutMs: number): Promise<ControlPlaneReport> {
  const res = await fetch(`${origin}/_berth/control-plane`, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`${origin} answered ${res.status}`);
  const body = (await res.json()) as ControlPlaneReport;
  if (typeof body?.machine !== 'string' || typeof body.redis !== 'object' || body.redis === null) throw new Error(`${origin} sent no report`);
  if (body.redis.reachedAgoMs !== null && typeof body.redis.reachedAgoMs !== 'number') throw new Error(`${origin} sent no report`);
  return body;
}
