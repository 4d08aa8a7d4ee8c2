// A CPU burner for the scaler's tests and benchmark. Each GET /work?ms=N burns N ms of CPU
// before answering (load that follows requests); while the file named by BURN_FLAG exists,
// the process also burns BURN_DUTY (0-1, default 0.2) of one core by itself (load that a test
// switches on and off). Any other path answers who it is.
const http = require('node:http');
const fs = require('node:fs');

const flag = process.env.BURN_FLAG || '';
const duty = Math.min(1, Math.max(0, Number(process.env.BURN_DUTY || '0.2')));
const SLICE_MS = 100;

function burn(ms) {
  const until = Date.now() + ms;
  let x = 0;
  while (Date.now() < until) x += Math.sqrt(x + 1);
  return x;
}

// Every slice: burn duty × slice while the flag file exists, then yield to requests.
setInterval(() => {
  if (flag !== '' && fs.existsSync(flag)) burn(duty * SLICE_MS);
}, SLICE_MS);

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname.endsWith('/work')) burn(Math.min(1000, Number(url.searchParams.get('ms') || '20')));
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ instance: process.env.BERTH_INSTANCE || null, pid: process.pid }));
});
server.listen(Number(process.env.PORT || 3000), process.env.HOST || '127.0.0.1', () => console.log('cpu-burner listening on ' + (process.env.PORT || 3000)));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
