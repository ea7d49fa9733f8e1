// A read-only account reads, and is refused on a set and on an admin command.
'use strict';
const { out, attempt, connect, finish } = require('./lib');

const xapi = connect(process.env.XUSER, process.env.XPASS);
xapi.on('error', (e) => {
  out({ event: 'error', error: String(e) });
  finish(null, 2);
});
xapi.on('ready', async () => {
  const r = {};
  r.get = await attempt(xapi.config.get('SIP TLS HandshakeTimeout'));
  r.set = await attempt(xapi.config.set('SIP TLS HandshakeTimeout', 99));
  r.after = await attempt(xapi.config.get('SIP TLS HandshakeTimeout'));
  r.reset = await attempt(xapi.command('Security Certificates Server Reset'));
  out(r);
  finish(xapi, 0);
});
