'use strict';

// console.* as Lambda's Node.js runtime writes it: every call is one log
// record, in the function's log format (AWS_LAMBDA_LOG_FORMAT):
//   Text: "timestamp\trequestId\tLEVEL\tmessage"
//   JSON: {"timestamp","level","requestId","message"} (+ errorType,
//         errorMessage, stackTrace for an Error argument)
// Records go to the telemetry descriptor Lambda names in
// _LAMBDA_TELEMETRY_LOG_FD, one frame each, so a multi-line message stays
// one log event; without one they go to stdout with their newlines turned
// into \r, which keeps them one line. Outside an invocation (init) the
// request id is "undefined", as on Lambda. Under JSON, records below
// AWS_LAMBDA_LOG_LEVEL are dropped.

const { format } = require('node:util');
const { writeSync } = require('node:fs');

const env = process.env;
const json = (env.AWS_LAMBDA_LOG_FORMAT || '').toUpperCase() === 'JSON';
// The descriptor is the runtime's own: processes the function starts
// write plain lines.
const fd = /^\d+$/.test(env._LAMBDA_TELEMETRY_LOG_FD || '') ? Number(env._LAMBDA_TELEMETRY_LOG_FD) : undefined;
delete env._LAMBDA_TELEMETRY_LOG_FD;

// Levels and their frame bits (0xA55A0000 | rank << 2 | JSON 2, text 3).
const ranks = { TRACE: 1, DEBUG: 2, INFO: 3, WARN: 4, ERROR: 5, FATAL: 6 };
const minRank = json ? ranks[(env.AWS_LAMBDA_LOG_LEVEL || '').toUpperCase()] || 0 : 0;

let requestId;

// setRequestId names the invocation later console records belong to.
function setRequestId(id) {
  requestId = id;
}

// errorFields describes an Error in a JSON record.
function errorFields(err) {
  return {
    errorType: err.constructor?.name ?? 'UnknownError',
    errorMessage: err.message,
    stackTrace: typeof err.stack === 'string' ? err.stack.split('\n') : [],
  };
}

function jsonRecord(timestamp, level, args) {
  const rec = { timestamp, level, requestId };
  if (args.length === 1) {
    // A lone value is kept as it is (an object stays an object, an Error
    // becomes its fields).
    rec.message = args[0];
    try {
      return JSON.stringify(rec, (_k, v) => (v instanceof Error ? errorFields(v) : v));
    } catch {
      rec.message = format(args[0]);
      return JSON.stringify(rec);
    }
  }
  rec.message = format(...args);
  const err = args.find((a) => a instanceof Error);
  if (err) Object.assign(rec, errorFields(err));
  return JSON.stringify(rec);
}

function write(rank, text) {
  if (fd === undefined) {
    process.stdout.write(text.replace(/\n/g, '\r') + '\n');
    return;
  }
  const body = Buffer.from(text, 'utf8');
  const frame = Buffer.allocUnsafe(16 + body.length);
  frame.writeUInt32BE((0xa55a0000 | (rank << 2) | (json ? 2 : 3)) >>> 0, 0);
  frame.writeUInt32BE(body.length, 4);
  frame.writeBigUInt64BE(BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)), 8);
  body.copy(frame, 16);
  for (let off = 0; off < frame.length; ) off += writeSync(fd, frame, off);
}

function record(level, args) {
  const rank = ranks[level];
  if (rank < minRank) return;
  const timestamp = new Date().toISOString();
  write(rank, json ? jsonRecord(timestamp, level, args) : `${timestamp}\t${requestId}\t${level}\t${format(...args)}`);
}

// patchConsole routes console.* through record.
function patchConsole() {
  console.log = (...args) => record('INFO', args);
  console.info = (...args) => record('INFO', args);
  console.debug = (...args) => record('DEBUG', args);
  console.warn = (...args) => record('WARN', args);
  console.error = (...args) => record('ERROR', args);
  console.fatal = (...args) => record('FATAL', args);
  console.trace = function trace(...args) {
    const e = { name: 'Trace', message: format(...args) };
    Error.captureStackTrace(e, trace);
    record('TRACE', [e.stack]);
  };
}

module.exports = { patchConsole, setRequestId };
