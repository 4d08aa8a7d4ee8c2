// Parsing of --tls-host / BERTH_TLS_HOSTS entries (name=certfile:keyfile).
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseHostCertificates } from '../../balancer/host-certificates.js';
import { BerthError } from '../../common/errors.js';

describe('parseHostCertificates', () => {
  it('reads name=certfile:keyfile, lower-cases the name and resolves the paths', () => {
    expect(parseHostCertificates(['Shop.Example.com.=certs/shop.pem:/etc/k.pem', '*.apps.test=/a.pem:/b.pem'])).toEqual([
      { name: 'shop.example.com', certPath: resolve('certs/shop.pem'), keyPath: '/etc/k.pem' },
      { name: '*.apps.test', certPath: '/a.pem', keyPath: '/b.pem' },
    ]);
  });

  it.each([['no-equals:/a:/b'], ['=/a.pem:/b.pem'], ['x.test=/a.pem'], ['x.test=/a.pem:'], ['bad name=/a:/b'], ['a.*.test=/a:/b']])('refuses %s with a message saying the form', (entry) => {
    expect(() => parseHostCertificates([entry])).toThrow(BerthError);
    expect(() => parseHostCertificates([entry])).toThrow(/name=certfile:keyfile/);
  });

  it('refuses the same name twice', () => {
    expect(() => parseHostCertificates(['a.test=/1:/2', 'A.test=/3:/4'])).toThrow(/given twice/);
  });
});
