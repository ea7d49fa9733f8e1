// Shared by the jsxapi test scripts: connect with the real jsxapi package to the agent under
// test, print one JSON line per finding (`OUT {...}`), and always end: a guard exits the process
// if the script has not finished by itself (a hang is a failure the Rust side reports, not a
// wait forever).
'use strict';
const path = require('path');
const jsxapi = require(path.join(process.env.JSXAPI_NODE, 'node_modules', 'jsxapi'));

const guard = setTimeout(() => {
  out({ guard: 'the script did not finish within its guard time' });
  process.exit(3);
}, Number(process.env.GUARD_MS || 120000));

function out(obj) {
  process.stdout.write('OUT ' + JSON.stringify(obj) + '\n');
}

// What a rejected promise carried: jsxapi rejects with the JSON-RPC error object itself.
function err(e) {
  if (e && typeof e === 'object') {
    return { code: e.code, message: e.message, data: e.data === undefined ? null : e.data };
  }
  return { code: null, message: String(e), data: null };
}

// Resolves with {ok: value} or {err: {...}}, never rejects.
async function attempt(p) {
  try {
    return { ok: await p };
  } catch (e) {
    return { err: err(e) };
  }
}

function connect(user, password) {
  return jsxapi.connect(`wss://127.0.0.1:${process.env.PORT}`, { username: user, password });
}

function finish(xapi, code) {
  clearTimeout(guard);
  try {
    if (xapi) xapi.close();
  } catch (e) {
    // closing an unopened socket throws; the process ends either way
  }
  // Let the close frame go out, then end whatever the socket does.
  setTimeout(() => process.exit(code), 200);
}

module.exports = { out, err, attempt, connect, finish };
