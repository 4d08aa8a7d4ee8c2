// Page data that stays current: loaded once, then again (at most every 250 ms) after registry
// events, so that a change made anywhere — the CLI, the scaler, another browser — shows
// without a reload.
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api.js';
import type { StreamEvent } from './streams.js';

const listeners = new Set<(e: StreamEvent) => void>();

export function publishEvent(e: StreamEvent): void {
  for (const l of listeners) l(e);
}

export interface Live<T> {
  data: T | undefined;
  error: ApiError | undefined;
  reload: () => void;
}

export interface LiveOptions<T> {
  /**
   * Also load again this long after the last load: a number, or a function of what was loaded
   * (undefined: not until an event), for data whose changes make no event (runs, cron ticks).
   */
  everyMs?: number | ((data: T | undefined) => number | undefined);
  /** Which events concern the page (a `resync` always does). @default every event */
  when?: (e: StreamEvent) => boolean;
}

export function useLive<T>(load: () => Promise<T>, deps: unknown[], options: LiveOptions<T> = {}): Live<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<ApiError | undefined>(undefined);
  const generation = useRef(0);
  const reload = useRef(() => {});

  useEffect(() => {
    const mine = ++generation.current;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let poll: ReturnType<typeof setTimeout> | undefined;
    let latest: T | undefined;
    setData(undefined);
    setError(undefined);
    const again = () => {
      clearTimeout(poll);
      const every = options.everyMs;
      const ms = typeof every === 'function' ? every(latest) : every;
      poll = ms === undefined ? undefined : setTimeout(run, ms);
    };
    const run = () => {
      load().then(
        (d) => {
          if (generation.current !== mine) return;
          latest = d;
          setData(d);
          setError(undefined);
          again();
        },
        (err: unknown) => {
          if (generation.current !== mine) return;
          setError(err instanceof ApiError ? err : new ApiError(0, 'error', String(err)));
          again();
        },
      );
    };
    reload.current = run;
    run();
    const onEvent = (e: StreamEvent) => {
      if (options.when !== undefined && e.kind !== 'resync' && !options.when(e)) return;
      // At most one reload per quarter second, however busy the stream (a debounce would never fire on a busy one).
      timer ??= setTimeout(() => {
        timer = undefined;
        run();
      }, 250);
    };
    listeners.add(onEvent);
    return () => {
      generation.current++;
      listeners.delete(onEvent);
      clearTimeout(timer);
      clearTimeout(poll);
    };
  }, deps);

  return { data, error, reload: () => reload.current() };
}
