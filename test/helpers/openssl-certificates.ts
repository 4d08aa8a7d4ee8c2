import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A certificate and its key, as PEM text. */
export interface PemPair {
  cert: string;
  key: string;
}

/**
 * A self-signed certificate for `names`, made by the `openssl` command: an RSA 2048 or ECDSA
 * P-256 key, valid from now for a day, or between `from` and `to` (openssl ca dates,
 * YYYYMMDDHHMMSSZ) to make an expired one.
 */
export function opensslCertificate(dir: string, o: { names: string[]; keyType: 'rsa' | 'ecdsa'; from?: string; to?: string }): PemPair {
  const work = mkdtempSync(join(dir, 'openssl-'));
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
  const subject = ['-subj', `/CN=${o.names[0]}`, '-addext', `subjectAltName=${o.names.map((n) => `DNS:${n}`).join(',')}`];
  const newKey = o.keyType === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  try {
    if (o.from === undefined) {
      run(['req', '-x509', ...newKey, '-nodes', '-keyout', 'key.pem', ...subject, '-days', '1', '-out', 'cert.pem']);
    } else {
      // req -x509 takes no dates in the past: openssl ca signs the request with its own key instead.
      writeFileSync(join(work, 'index.txt'), '');
      writeFileSync(join(work, 'serial'), '01\n');
      writeFileSync(join(work, 'ca.cnf'), '[ca]\ndefault_ca = t\n[t]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\ndefault_md = sha256\npolicy = any\ncopy_extensions = copy\nunique_subject = no\n[any]\ncommonName = supplied\n');
      run(['req', '-new', ...newKey, '-nodes', '-keyout', 'key.pem', ...subject, '-out', 'req.csr']);
      run(['ca', '-batch', '-config', 'ca.cnf', '-selfsign', '-keyfile', 'key.pem', '-in', 'req.csr', '-startdate', o.from, '-enddate', o.to ?? o.from, '-notext', '-out', 'cert.pem']);
    }
    return { cert: readFileSync(join(work, 'cert.pem'), 'utf8'), key: readFileSync(join(work, 'key.pem'), 'utf8') };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
