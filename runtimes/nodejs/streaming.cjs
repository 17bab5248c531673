'use strict';

// Response streaming: the `awslambda` global Lambda's Node.js runtime
// defines (streamifyResponse, HttpResponseStream), and the streamed
// response itself, a chunked POST to /runtime/invocation/{id}/response
// with Lambda-Runtime-Function-Response-Mode: streaming whose trailers
// report an error the handler hit part-way.
//
// node:http is loaded on the first streamed response only: buffered
// functions never pay for it.

const STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const HIGH_WATER_MARK = Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark');
const PRELUDE_CONTENT_TYPE = 'application/vnd.awslambda.http-integration-response';
const ERROR_TYPE = 'Lambda-Runtime-Function-Error-Type';
const ERROR_BODY = 'Lambda-Runtime-Function-Error-Body';

// streamifyResponse marks handler as taking (event, responseStream, context).
function streamifyResponse(handler, options) {
  if (typeof handler !== 'function') throw new TypeError('streamifyResponse expects a function');
  handler[STREAMING] = 'response';
  if (options && Number.isInteger(options.highWaterMark)) handler[HIGH_WATER_MARK] = options.highWaterMark;
  return handler;
}

function isStreaming(handler) {
  return typeof handler === 'function' && handler[STREAMING] === 'response';
}

// HttpResponseStream.from makes stream a function URL response: the
// prelude (status, headers, cookies) as JSON, then 8 NUL bytes, go out
// before the first byte of the body.
class HttpResponseStream {
  static from(stream, prelude) {
    stream.setContentType(PRELUDE_CONTENT_TYPE);
    const json = JSON.stringify(prelude ?? {});
    stream._onBeforeFirstWrite = (write) => {
      write(json);
      write(new Uint8Array(8));
    };
    return stream;
  }
}

// open starts the streamed response of invocation id on a connection of
// its own. It returns the stream handed to the handler and a promise of
// the Runtime API's answer (rejected if the connection breaks).
function open(id, handler) {
  const http = require('node:http');
  const [host, port] = (process.env.AWS_LAMBDA_RUNTIME_API || '127.0.0.1:9001').split(':');
  const req = http.request({
    host,
    port: Number(port),
    method: 'POST',
    path: `/2018-06-01/runtime/invocation/${encodeURIComponent(id)}/response`,
    agent: false,
    highWaterMark: handler[HIGH_WATER_MARK],
    headers: {
      'Lambda-Runtime-Function-Response-Mode': 'streaming',
      'Content-Type': 'application/octet-stream',
      'Transfer-Encoding': 'chunked',
      Trailer: `${ERROR_TYPE}, ${ERROR_BODY}`,
    },
  });
  const answered = new Promise((resolve, reject) => {
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
      res.on('error', reject);
    });
    // Kept for the request's whole life: a write after the Runtime API
    // hung up must not become an uncaught 'error'.
    req.on('error', reject);
  });
  answered.catch(() => {});

  let wrote = false;
  const first = () => {
    if (wrote) return;
    wrote = true;
    if (typeof req._onBeforeFirstWrite === 'function') req._onBeforeFirstWrite((chunk) => origWrite(chunk));
  };
  req.setContentType = (type) => {
    if (wrote || req.headersSent) throw new Error('Cannot set content-type, too late.');
    req.setHeader('Content-Type', type);
  };
  const origWrite = req.write.bind(req);
  const origEnd = req.end.bind(req);
  req.write = (chunk, encoding, cb) => {
    first();
    if (typeof chunk !== 'string' && !(chunk instanceof Uint8Array)) chunk = JSON.stringify(chunk);
    return origWrite(chunk, encoding, cb);
  };
  req.end = (chunk, encoding, cb) => {
    if (typeof chunk === 'function') return req.end(undefined, undefined, chunk);
    if (typeof encoding === 'function') return req.end(chunk, undefined, encoding);
    if (chunk !== undefined && chunk !== null) req.write(chunk, encoding);
    first();
    return origEnd(cb);
  };
  // fail ends the stream with the error in its trailers.
  const fail = (body) => {
    if (req.writableEnded || req.destroyed) return;
    req.addTrailers({ [ERROR_TYPE]: String(body.errorType).replace(/[^\x20-\x7e]/g, '?').slice(0, 256), [ERROR_BODY]: trailerBody(body) });
    origEnd();
  };
  return { stream: req, answered, fail };
}

// MAX_ERROR_JSON bounds the error body trailer's JSON: the Runtime API
// (Go's net/http) reads trailers within a 4 KiB buffer, and base64 grows
// them by a third. The trace loses its last lines first, then the message
// its end.
const MAX_ERROR_JSON = 2048;

function trailerBody(body) {
  const b = { ...body, trace: Array.isArray(body.trace) ? [...body.trace] : [] };
  let json = JSON.stringify(b);
  while (Buffer.byteLength(json) > MAX_ERROR_JSON && b.trace.length > 0) {
    b.trace.pop();
    json = JSON.stringify(b);
  }
  if (Buffer.byteLength(json) > MAX_ERROR_JSON) {
    b.errorType = String(b.errorType).slice(0, 256);
    b.errorMessage = String(b.errorMessage).slice(0, 1024);
    json = JSON.stringify(b);
  }
  return Buffer.from(json).toString('base64');
}

module.exports = { streamifyResponse, HttpResponseStream, isStreaming, open };
