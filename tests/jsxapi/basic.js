// Configuration get/set, status get, a command with parameters, a command with a multi-line
// body, and the errors jsxapi maps (invalid path, illegal value, parameter, unknown command).
'use strict';
const fs = require('fs');
const { out, attempt, connect, finish } = require('./lib');

const xapi = connect(process.env.XUSER, process.env.XPASS);
xapi.on('error', (e) => {
  out({ event: 'error', error: String(e) });
  finish(null, 2);
});
xapi.on('ready', async () => {
  const r = {};
  r.port_before = await attempt(xapi.config.get('SIP TLS HandshakeTimeout'));
  r.set_port = await attempt(xapi.config.set('SIP TLS HandshakeTimeout', 12));
  r.port_after = await attempt(xapi.Config.SIP.TLS.HandshakeTimeout.get());
  r.set_name = await attempt(xapi.config.set('SystemUnit Name', 'edge "one": two'));
  r.name = await attempt(xapi.config.get('SystemUnit Name'));
  r.tls = await attempt(xapi.config.get('SIP TLS'));
  r.set_zone = await attempt(xapi.config.set('Zones Zone 2 Name', 'west'));
  r.zone2 = await attempt(xapi.config.get('Zones Zone 2 Name'));
  r.status_product = await attempt(xapi.status.get('SystemUnit Product'));
  r.status_unit = await attempt(xapi.status.get('SystemUnit'));
  r.show_pem = await attempt(xapi.command('Security Certificates Server Show', { Format: 'PEM' }));
  r.ca_add = await attempt(
    xapi.command('Security Certificates CA Add', {}, fs.readFileSync(process.env.CA_PEM, 'utf8')),
  );
  r.ca_list = await attempt(xapi.command('Security Certificates CA List'));
  r.bad_path = await attempt(xapi.config.get('SIP TLS Prot'));
  r.bad_value = await attempt(xapi.config.set('SIP TLS HandshakeTimeout', 700));
  r.bad_param = await attempt(xapi.command('Security Certificates Server Show', { Nope: 1 }));
  r.missing_param = await attempt(xapi.command('Security Certificates CSR Show'));
  r.bad_command = await attempt(xapi.command('Security Certificates Nope'));
  r.bad_method = await attempt(xapi.execute('xNope', {}));
  out(r);
  finish(xapi, 0);
});
