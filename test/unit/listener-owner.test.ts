// Who listens on a port, read from the kernel's socket tables: only LISTEN rows of that port.
import { describe, expect, it } from 'vitest';
import { parseListeners } from '../../hoster/listener-owner.js';

const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:2710 00000000:0000 0A 00000000:00000000 00:00000000 00000000 1900000002        0 4711 1 0000000000000000 100 0 0 10 0
   1: 0100007F:2710 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 4712 1 0000000000000000 20 4 30 10 -1
   2: 00000000:2711 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4713 1 0000000000000000 100 0 0 10 0
`;
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:2710 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4714 1 0000000000000000 100 0 0 10 0
`;

describe('parseListeners', () => {
  it('gives the uid of each LISTEN row on the port, in IPv4 and IPv6 tables, ignoring connections and other ports', () => {
    expect(parseListeners(TCP, 10000)).toEqual([1900000002]);
    expect(parseListeners(TCP, 10001)).toEqual([0]);
    expect(parseListeners(TCP6, 10000)).toEqual([1000]);
    expect(parseListeners(TCP, 10002)).toEqual([]);
    expect(parseListeners('', 10000)).toEqual([]);
  });
});
