// receive-pack's proc-receive hook for berth's git remotes: a relay, nothing more. The
// registry that runs receive-pack hands it two sockets: fd 3 carries the hook's pkt-line
// protocol both ways (receive-pack ⇄ registry), fd 4 the lines to show the pusher, which go
// to stderr (git's sideband: "remote: …"). The deploy itself runs in the registry, so the
// hook holds no credential and knows nothing but these two descriptors.
import { Socket } from 'node:net';

const protocol = new Socket({ fd: 3, readable: true, writable: true });
const lines = new Socket({ fd: 4, readable: true, writable: false });
process.stdin.pipe(protocol, { end: false });
protocol.pipe(process.stdout);
lines.pipe(process.stderr, { end: false });
// The registry ends the protocol once it reported every ref; a registry gone makes the push fail.
protocol.once('error', () => process.exit(1));
lines.once('error', () => undefined);
// The registry writes the lines before the results, and ends both: the hook ends once both did.
let open = 2;
const ended = () => {
  if (--open === 0) process.stdin.destroy();
};
protocol.once('end', ended);
lines.once('end', ended);
