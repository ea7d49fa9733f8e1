// ws_bench's client: the real jsxapi over wss:// doing N sequential xGet round trips of one path
// (after a warm-up), each timed; prints one `RESULT {...}` line with the latencies (µs) and this
// process's own CPU time, and `START` just before the timed loop so the bench can read the
// agent's CPU clock around it.
'use strict';
const path = require('path');
const jsxapi = require(path.join(process.env.JSXAPI_NODE, 'node_modules', 'jsxapi'));

const n = Number(process.env.N || 2000);
const warm = Number(process.env.WARM || 200);
const xpath = JSON.parse(process.env.XPATH);
const guard = setTimeout(() => {
  console.error('ws_bench client: guard time passed');
  process.exit(3);
}, Number(process.env.GUARD_MS || 600000));

const xapi = jsxapi.connect(`wss://127.0.0.1:${process.env.PORT}`, {
  username: process.env.XUSER,
  password: process.env.XPASS,
});
xapi.on('error', (e) => {
  console.error('ws_bench client error:', e);
  process.exit(2);
});
xapi.on('ready', async () => {
  for (let i = 0; i < warm; i++) await xapi.execute('xGet', { Path: xpath });
  const sample = await xapi.execute('xGet', { Path: xpath });
  process.stdout.write('START\n');
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const lat = new Array(n);
  for (let i = 0; i < n; i++) {
    const s = process.hrtime.bigint();
    await xapi.execute('xGet', { Path: xpath });
    lat[i] = Number(process.hrtime.bigint() - s) / 1000;
  }
  const total = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(
    'RESULT ' +
      JSON.stringify({ total_s: total, cpu_us: cpu.user + cpu.system, lat_us: lat, sample }) +
      '\n',
  );
  clearTimeout(guard);
  xapi.close();
  setTimeout(() => process.exit(0), 100);
});
