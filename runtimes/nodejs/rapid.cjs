'use strict';

// Client of the Lambda Runtime API (2018-06-01): HTTP/1.1 over one
// keep-alive TCP connection, one request at a time. It is written on
// node:net rather than node:http or fetch because the Runtime API is a
// known, local peer and the general clients cost more per request (about
// 0.3 ms of a warm invoke) and more to load (a cold start's milliseconds).

const net = require('node:net');

const [host, port] = (process.env.AWS_LAMBDA_RUNTIME_API || '127.0.0.1:9001').split(':');
const base = '/2018-06-01/runtime';

// Conn is one connection and the request in flight on it.
class Conn {
  constructor() {
    this.inflight = undefined; // {resolve, reject}
    this.chunks = []; // bytes received and not yet parsed
    this.received = 0;
    this.head = undefined; // status and headers of the response being read
    this.served = 0; // responses read so far
    this.sock = net.connect(Number(port), host);
    this.sock.setNoDelay(true);
    this.sock.unref();
    this.sock.on('data', (d) => {
      this.chunks.push(d);
      this.received += d.length;
      this.parse();
    });
    this.sock.on('error', (err) => this.close(err));
    this.sock.on('close', () => this.close(new Error('Runtime API closed the connection')));
  }

  request(method, path, body, headers) {
    return new Promise((resolve, reject) => {
      this.inflight = { resolve, reject };
      // Referenced only while a request is out: an idle connection must not
      // keep the event loop alive (callbackWaitsForEmptyEventLoop).
      this.sock.ref();
      const len = body ? `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n` : '';
      this.sock.cork();
      this.sock.write(`${method} ${base}${path} HTTP/1.1\r\nHost: ${host}:${port}\r\n${headers}${len}\r\n`, 'latin1');
      if (body) this.sock.write(body);
      this.sock.uncork();
    });
  }

  // parse completes the response in flight once its head and body are in.
  // Body bytes are joined once, when all are there: events are up to 6 MB.
  parse() {
    if (!this.inflight) return;
    if (!this.head) {
      const buf = this.joined();
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const lines = buf.toString('latin1', 0, end).split('\r\n');
      const headers = {};
      for (const line of lines.slice(1)) {
        const c = line.indexOf(':');
        if (c < 0) continue;
        const k = line.slice(0, c).trim().toLowerCase();
        const v = line.slice(c + 1).trim();
        headers[k] = k in headers ? `${headers[k]}, ${v}` : v;
      }
      if (headers['transfer-encoding'] || headers['content-length'] === undefined) {
        // The Runtime API always sends Content-Length.
        this.sock.destroy(new Error(`Runtime API response without Content-Length: ${lines[0]}`));
        return;
      }
      this.head = { status: Number(lines[0].split(' ')[1]), headers, length: Number(headers['content-length']) };
      const rest = buf.subarray(end + 4);
      this.chunks = [rest];
      this.received = rest.length;
    }
    if (this.received < this.head.length) return;
    const res = { status: this.head.status, headers: this.head.headers, body: this.joined().toString('utf8', 0, this.head.length) };
    const r = this.inflight;
    this.inflight = undefined;
    this.chunks = [];
    this.received = 0;
    this.head = undefined;
    this.served++;
    if (/close/i.test(res.headers.connection || '')) this.sock.destroy();
    else this.sock.unref();
    r.resolve(res);
  }

  joined() {
    if (this.chunks.length !== 1) this.chunks = [Buffer.concat(this.chunks, this.received)];
    return this.chunks[0];
  }

  close(err) {
    if (conn === this) conn = undefined;
    const r = this.inflight;
    this.inflight = undefined;
    if (r) r.reject(err);
  }
}

let conn;

// connect opens the connection ahead of the first request, so that the
// kernel completes it while the handler loads.
function connect() {
  if (!conn) conn = new Conn();
}

// Requests go out one after another, whoever sends them (the invocation
// loop, an uncaught error's report).
let queue = Promise.resolve();

function request(method, path, body, headers = '') {
  const p = queue.then(() => send(method, path, body, headers));
  queue = p.catch(() => {});
  return p;
}

async function send(method, path, body, headers) {
  if (!conn) conn = new Conn();
  const c = conn;
  try {
    return await c.request(method, path, body, headers);
  } catch (err) {
    // A kept-alive connection the peer closed while idle fails the next
    // request before any answer: that one is safe to send again, once.
    if (c.served === 0 || c.received > 0 || c.head) throw err;
    conn = new Conn();
    return conn.request(method, path, body, headers);
  }
}

// next long-polls for the next event.
async function next() {
  const res = await request('GET', '/invocation/next');
  if (res.status !== 200) throw new Error(`Runtime API /next returned ${res.status}: ${res.body}`);
  return res;
}

// A 4xx answer to a post (unknown request id, oversized body) is the
// platform's own record of the failure; only a broken connection is fatal
// to the runtime.

// respond posts a handler's JSON-encoded result.
function respond(id, json) {
  return request('POST', `/invocation/${encodeURIComponent(id)}/response`, Buffer.from(json, 'utf8'));
}

// fail posts a function error {errorType, errorMessage, trace}.
function fail(id, error) {
  return request('POST', `/invocation/${encodeURIComponent(id)}/error`, Buffer.from(JSON.stringify(error), 'utf8'), errorHeader(error));
}

// initFail posts an error that stopped the function from initialising.
function initFail(error) {
  return request('POST', '/init/error', Buffer.from(JSON.stringify(error), 'utf8'), errorHeader(error));
}

function errorHeader(error) {
  // Header values must be printable ASCII here: no CR/LF smuggling.
  return `Lambda-Runtime-Function-Error-Type: ${String(error.errorType).replace(/[^\x20-\x7e]/g, '?')}\r\n`;
}

module.exports = { connect, next, respond, fail, initFail };
