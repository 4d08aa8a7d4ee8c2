import { createHash, timingSafeEqual } from 'node:crypto';
import { ADMIN_TOKEN_NAME, type TokenGrant, type TokenStore } from '../store/index.js';

/**
 * Checks a token the one way every door does (the API's bearer tokens, the dashboard's
 * sign-in and sessions, git's HTTP Basic): one of `adminTokens` (BERTH_TOKEN: may do
 * everything), compared as sha256 digests in constant time so that neither their content nor
 * their length leaks, or a named token of the store, found by its digest.
 */
export class TokenChecker {
  private readonly adminDigests: Buffer[];

  constructor(adminTokens: readonly string[], private readonly tokens: TokenStore) {
    this.adminDigests = adminTokens.map(sha256);
  }

  /** The grant of `token` and its digest, or undefined when it is no token of this platform. */
  async check(token: string): Promise<{ grant: TokenGrant; digest: string } | undefined> {
    if (!/^[\x21-\x7e]{1,512}$/.test(token)) return undefined;
    const given = sha256(token);
    if (this.isAdmin(given)) return { grant: { name: ADMIN_TOKEN_NAME, app: null, readOnly: false }, digest: given.toString('hex') };
    const grant = await this.tokens.lookup(token);
    return grant === undefined ? undefined : { grant, digest: given.toString('hex') };
  }

  /** What `token` may do, or undefined when it is no token of this platform. */
  async grant(token: string): Promise<TokenGrant | undefined> {
    return (await this.check(token))?.grant;
  }

  /** Whether the token a session was opened with (by its digest) still holds: a revoke ends its sessions. */
  async stillValid(session: { name: string; tokenDigest: string }): Promise<boolean> {
    if (session.name === ADMIN_TOKEN_NAME) return this.isAdmin(Buffer.from(session.tokenDigest, 'hex'));
    return this.tokens.hasDigest(session.tokenDigest);
  }

  private isAdmin(given: Buffer): boolean {
    let admin = false;
    for (const d of this.adminDigests) admin = (given.length === d.length && timingSafeEqual(given, d)) || admin;
    return admin;
  }
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}
