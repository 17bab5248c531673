'use strict';

// Console output in Lambda's text log format: every console call becomes one
// record "timestamp\trequestId\tLEVEL\tmessage" on stdout, where the
// platform collects it into the function's log stream. Outside an
// invocation (init) the request id is "undefined", as on Lambda.

const { format } = require('node:util');

let requestId;

// setRequestId names the invocation later console records belong to.
function setRequestId(id) {
  requestId = id;
}

function record(level, args) {
  process.stdout.write(`${new Date().toISOString()}\t${requestId}\t${level}\t${format(...args)}\n`);
}

// patchConsole routes console.* through record. Everything goes to stdout
// so that records keep their order; the level tells errors apart.
function patchConsole() {
  console.log = (...args) => record('INFO', args);
  console.info = (...args) => record('INFO', args);
  console.debug = (...args) => record('DEBUG', args);
  console.warn = (...args) => record('WARN', args);
  console.error = (...args) => record('ERROR', args);
  console.trace = function trace(...args) {
    const e = { name: 'Trace', message: format(...args) };
    Error.captureStackTrace(e, trace);
    record('TRACE', [e.stack]);
  };
}

module.exports = { patchConsole, setRequestId };
