import { BerthError } from '../common/errors.js';

/** What the app's environment is made of, besides the release's own config vars. */
export interface InstanceEnvInput {
  /** The release's config vars (berth config:set). */
  releaseEnv: Readonly<Record<string, string>>;
  app: string;
  /** The app's path prefix ('' when unknown). */
  path: string;
  instance: string;
  epoch: number;
  machine: string;
  /** The release's version; undefined: the instance has no release. */
  version: number | undefined;
  /** 0: a process without a port (a worker, a release task): no PORT is set. */
  port: number;
  /** Its process type. @default 'web' */
  process?: string;
  /** Its own writable directory: HOME and TMPDIR. */
  home: string;
  /** The hoster's PATH, handed on. */
  hostPath: string | undefined;
}

/**
 * The app's environment: PATH and NODE_ENV (which the release may override), the release's
 * config vars, then what berth sets (which it may not): PORT, HOST, the BERTH_* names of the
 * claim it runs under, HOME and TMPDIR. Throws invalid_env when a config var cannot be given to
 * a process: the release is at fault, not this machine.
 */
export function instanceEnv(input: InstanceEnvInput): Record<string, string> {
  for (const [name, value] of Object.entries(input.releaseEnv)) {
    if (value.includes('\0')) throw new BerthError('invalid_env', `config var ${name} contains a NUL byte: set it again without one (berth config:set)`);
  }
  return {
    PATH: input.hostPath ?? '/usr/local/bin:/usr/bin:/bin',
    NODE_ENV: 'production',
    ...input.releaseEnv,
    ...(input.port === 0 ? {} : { PORT: String(input.port) }),
    HOST: '127.0.0.1',
    BERTH_PROCESS: input.process ?? 'web',
    BERTH_APP: input.app,
    BERTH_PATH: input.path,
    BERTH_INSTANCE: input.instance,
    // Which claim this copy runs under: observers tell copies of one instance apart by these.
    BERTH_EPOCH: String(input.epoch),
    BERTH_MACHINE: input.machine,
    BERTH_RELEASE: input.version === undefined ? '' : `v${input.version}`,
    HOME: input.home,
    TMPDIR: input.home,
  };
}
