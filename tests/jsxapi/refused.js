// Wrong credentials: jsxapi must report an error and never become ready.
'use strict';
const { out, connect, finish } = require('./lib');

const xapi = connect(process.env.XUSER, process.env.XPASS);
xapi.on('error', (e) => {
  out({ event: 'error', error: String(e && e.message ? e.message : e) });
  finish(null, 0);
});
xapi.on('ready', () => {
  out({ event: 'ready' });
  finish(xapi, 1);
});
