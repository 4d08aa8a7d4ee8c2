// An app's environment: PATH and NODE_ENV it may override, its release's config vars, then what berth sets and it may not (PORT, HOST, BERTH_*, HOME, TMPDIR); a config var with a NUL byte is the release's fault (invalid_env).
import { describe, expect, it } from 'vitest';
import { BerthError } from '../../common/errors.js';
import { instanceEnv, type InstanceEnvInput } from '../../hoster/instance-env.js';
import { startFailureReason } from '../../hoster/start-failure.js';

const input = (over: Partial<InstanceEnvInput> = {}): InstanceEnvInput => ({
  releaseEnv: {},
  app: 'shop',
  path: '/shop',
  instance: 'i-1',
  epoch: 7,
  machine: 'm1',
  version: 3,
  port: 20_001,
  home: '/data/instances/i-1-7/home',
  hostPath: '/usr/bin:/bin',
  ...over,
});

describe('instanceEnv', () => {
  it('gives the app its claim, its port and its own HOME', () => {
    expect(instanceEnv(input({ releaseEnv: { GREETING: 'hi' } }))).toEqual({
      PATH: '/usr/bin:/bin',
      NODE_ENV: 'production',
      GREETING: 'hi',
      PORT: '20001',
      HOST: '127.0.0.1',
      BERTH_APP: 'shop',
      BERTH_PATH: '/shop',
      BERTH_INSTANCE: 'i-1',
      BERTH_EPOCH: '7',
      BERTH_MACHINE: 'm1',
      BERTH_RELEASE: 'v3',
      BERTH_PROCESS: 'web',
      HOME: '/data/instances/i-1-7/home',
      TMPDIR: '/data/instances/i-1-7/home',
    });
  });

  it('lets the release set PATH and NODE_ENV, never what berth sets', () => {
    const env = instanceEnv(input({ releaseEnv: { PATH: '/opt/bin', NODE_ENV: 'staging', PORT: '80', HOME: '/root', BERTH_EPOCH: '1' } }));
    expect(env).toMatchObject({ PATH: '/opt/bin', NODE_ENV: 'staging', PORT: '20001', HOME: '/data/instances/i-1-7/home', BERTH_EPOCH: '7' });
  });

  it('has a PATH without the hoster\'s, and an empty BERTH_RELEASE without a release', () => {
    const env = instanceEnv(input({ hostPath: undefined, version: undefined }));
    expect(env.PATH).toBe('/usr/local/bin:/usr/bin:/bin');
    expect(env.BERTH_RELEASE).toBe('');
  });

  it('refuses a config var with a NUL byte as invalid_env, which releases the instance as the release\'s fault', () => {
    let err: unknown;
    try {
      instanceEnv(input({ releaseEnv: { TOKEN: 'a\0b' } }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BerthError);
    expect(err).toMatchObject({ code: 'invalid_env', message: expect.stringContaining('config var TOKEN contains a NUL byte') });
    expect(startFailureReason(err)).toBe('invalid_env');
  });
});
