// Feedback: subscribe to a leaf and to a barrier leaf, say SUBSCRIBED, then count the events.
// The Rust side changes the leaf once (through xsh), waits for the first event, then changes the
// barrier; events arrive in order on one socket, so when the barrier's event arrives every event
// the first change made has arrived too: exactly one is expected.
'use strict';
const { out, connect, finish } = require('./lib');

const xapi = connect(process.env.XUSER, process.env.XPASS);
xapi.on('error', (e) => {
  out({ event: 'error', error: String(e) });
  finish(null, 2);
});
xapi.on('ready', async () => {
  const mode = [];
  const offMode = xapi.config.on('SIP TLS Certificate ExtendedKeyUsage Checking Mode', (v) => {
    mode.push(v);
    out({ event: 'mode', value: v });
  });
  const offBarrier = xapi.config.on('SystemUnit Description', (v) => {
    out({ event: 'barrier', value: v, mode });
    offMode();
    offBarrier();
    finish(xapi, 0);
  });
  await offMode.registration;
  await offBarrier.registration;
  out({ event: 'subscribed' });
});
