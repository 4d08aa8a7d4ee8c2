import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * Private keys of certificates are kept in Redis sealed (AES-256-GCM) with a key that only
 * the balancers and the registries read from a file (BERTH_ACME_KEY_FILE; berth up writes
 * `<data dir>/acme-key`, mode 0600): a reader of Redis alone gets certificates, never keys.
 */
export type SealingKey = Buffer & { readonly __sealing: unique symbol };

const VERSION = 'v1';

/** 32 random bytes as hex, what a key file holds. */
export function newSealingKeyText(): string {
  return `${randomBytes(32).toString('hex')}\n`;
}

/** Reads a key file: 64 hex characters (a trailing newline allowed). Throws a sentence saying what to fix. */
export function readSealingKey(path: string): SealingKey {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw new Error(`Cannot read the certificate key file ${path} (BERTH_ACME_KEY_FILE): ${(err as Error).message}.`);
  }
  if (!/^[0-9a-f]{64}$/i.test(text)) throw new Error(`The certificate key file ${path} must hold 64 hex characters (make one: openssl rand -hex 32 > ${path}; chmod 600 ${path}).`);
  return Buffer.from(text, 'hex') as SealingKey;
}

export function seal(plain: string, key: SealingKey): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return `${VERSION}:${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64')}`;
}

/** The plain text, or throws when the text was sealed with another key (or changed). */
export function unseal(sealed: string, key: SealingKey): string {
  if (!sealed.startsWith(`${VERSION}:`)) throw new Error('not a sealed key');
  const raw = Buffer.from(sealed.slice(VERSION.length + 1), 'base64');
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
  decipher.setAuthTag(raw.subarray(12, 28));
  return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
}
