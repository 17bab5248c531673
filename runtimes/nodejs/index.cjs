'use strict';

// icebox's runtime client for Lambda's Node.js runtimes. It runs as
//   node [heap flags] /var/runtime/index.cjs
// loads the handler named by _HANDLER from /var/task, then serves events
// from the Runtime API one at a time until the sandbox is destroyed.
//
// An invocation ends at the first of:
//   - the promise the handler returned settles (async handlers);
//   - callback(err), context.fail(err) or a synchronous throw: at once;
//   - callback(null, result): at once when
//     context.callbackWaitsForEmptyEventLoop is false, otherwise when the
//     event loop has nothing left to do (process 'beforeExit');
//   - context.succeed / context.done: at once;
//   - the event loop empties without any of the above: the result is null.
// Later completions of the same invocation are ignored, as on Lambda.
//
// The client is CommonJS: an ES module entry point starts Node's ESM loader
// and its file-reading thread pool, which costs a CommonJS handler a few
// milliseconds of cold start for nothing. ES module handlers still load
// through import().

const { RuntimeError, toResponse, toFormatted } = require('./errors.cjs');
const { load, setModulePaths } = require('./loader.cjs');
const { patchConsole, setRequestId } = require('./logging.cjs');
const rapid = require('./rapid.cjs');
const streaming = require('./streaming.cjs');

// Lambda's global for streaming handlers, there before the handler loads.
globalThis.awslambda = { streamifyResponse: streaming.streamifyResponse, HttpResponseStream: streaming.HttpResponseStream };

const env = process.env;

// current is the invocation in progress ({id, done}); undefined during init
// and while waiting for the next event.
let current;
let initDone = false;
// onEmptyLoop runs when the event loop drains during an invocation. The
// Runtime API connection is unref'd while idle, so only the user's own
// work (timers, sockets, pending I/O) keeps the loop alive.
let onEmptyLoop;

process.on('beforeExit', () => {
  const f = onEmptyLoop;
  onEmptyLoop = undefined;
  if (f) f();
});

// Errors nobody caught end the runtime, as on Lambda: the invocation in
// progress (or the init) fails with them, then the process exits so that
// the next call gets a fresh environment.
process.on('uncaughtException', (err) => crash('Uncaught Exception', err, 129));
process.on('unhandledRejection', (reason) => {
  const err = new RuntimeError('Runtime.UnhandledPromiseRejection', describe(reason), reason);
  crash('Unhandled Promise Rejection', err, 128);
});

function crash(what, err, code) {
  const body = toResponse(err);
  console.error(what, toFormatted(err));
  let report = Promise.resolve();
  if (current && !current.done) {
    current.done = true;
    report = current.report ? current.report(body) : rapid.fail(current.id, body);
  } else if (!initDone) {
    report = rapid.initFail(body);
  }
  report.catch(() => {}).finally(() => process.exit(code));
}

function describe(v) {
  try {
    return v instanceof Error ? `${v.name}: ${v.message}` : String(v);
  } catch {
    return typeof v;
  }
}

let handler;

async function init() {
  rapid.connect();
  patchConsole();
  setModulePaths();
  try {
    handler = await load(env._HANDLER || '');
  } catch (err) {
    console.error('Uncaught Exception', toFormatted(err));
    await rapid.initFail(toResponse(err)).catch(() => {});
    process.exit(129);
  }
  initDone = true;
  nextInvocation();
}

init();

function nextInvocation() {
  // A Runtime API that is gone means icebox is shutting the environment
  // down: no error of the function's, so nothing is written.
  rapid.next().then(invoke, () => process.exit(0));
}

function fatal(err) {
  console.error('Runtime API', String(err));
  process.exit(1);
}

// invoke runs one event through the handler.
function invoke(res) {
  const h = res.headers;
  const call = { id: h['lambda-runtime-aws-request-id'], done: false };
  const deadline = Number(h['lambda-runtime-deadline-ms']);
  current = call;
  setRequestId(call.id);
  if (h['lambda-runtime-trace-id']) env._X_AMZN_TRACE_ID = h['lambda-runtime-trace-id'];
  else delete env._X_AMZN_TRACE_ID;

  // settle posts the outcome once, then waits for the next event.
  const settle = (failed, value) => {
    if (call.done) return;
    call.done = true;
    onEmptyLoop = undefined;
    send(call.id, failed, value).then(() => {
      current = undefined;
      nextInvocation();
    }, fatal);
  };
  const succeed = (result) => settle(false, result);
  const fail = (err) => settle(true, err);

  let waitForEmptyLoop = true;
  const callback = (err, result) => {
    if (err !== undefined && err !== null) fail(err);
    else if (!waitForEmptyLoop) succeed(result);
    else onEmptyLoop = () => setImmediate(succeed, result);
  };
  const context = {
    get callbackWaitsForEmptyEventLoop() {
      return waitForEmptyLoop;
    },
    set callbackWaitsForEmptyEventLoop(v) {
      waitForEmptyLoop = Boolean(v);
    },
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    invokedFunctionArn: h['lambda-runtime-invoked-function-arn'],
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: call.id,
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    clientContext: parseHeader(h['lambda-runtime-client-context']),
    identity: parseHeader(h['lambda-runtime-cognito-identity']),
    // Ordinary properties, as on Lambda: {...context} keeps them, and
    // JSON.stringify(context) leaves functions out anyway.
    getRemainingTimeInMillis: () => deadline - Date.now(),
    // Completion methods of the Node.js 0.10 era, still honoured.
    succeed,
    fail,
    done: (err, result) => (err !== undefined && err !== null ? fail(err) : succeed(result)),
  };

  // Until the handler says otherwise, an empty event loop ends the call.
  onEmptyLoop = () => succeed(null);
  let event;
  try {
    event = JSON.parse(res.body);
  } catch (err) {
    return fail(err);
  }
  if (streaming.isStreaming(handler)) return invokeStreaming(call, event, context);
  try {
    const out = handler(event, context, callback);
    if (out !== null && typeof out === 'object' && typeof out.then === 'function') {
      out.then(succeed, fail);
    }
  } catch (err) {
    fail(err);
  }
}

// invokeStreaming runs a streamifyResponse handler: what it writes goes
// out as it writes it; it ends when its promise settles, and the stream
// must be ended by then ("Response stream is not finished." otherwise).
// A failure ends the stream with the error in its trailers.
function invokeStreaming(call, event, context) {
  onEmptyLoop = undefined;
  const { stream, answered, fail } = streaming.open(call.id, handler);
  call.report = (body) => {
    fail(body);
    return answered;
  };
  // The call is over once the Runtime API has answered the stream (or
  // hung up on it, past the size limit), whatever the handler still does.
  answered.catch(() => {}).finally(() => {
    call.done = true;
    current = undefined;
    nextInvocation();
  });
  const finish = (failed, err) => {
    if (call.done) return;
    call.done = true;
    if (failed) {
      const body = toResponse(err);
      console.error('Invoke Error', JSON.stringify(body));
      fail(body);
    }
  };
  let out;
  try {
    out = handler(event, stream, context);
  } catch (err) {
    return finish(true, err);
  }
  if (out === null || typeof out !== 'object' || typeof out.then !== 'function') {
    return finish(true, new Error('Streaming does not support non-async handlers.'));
  }
  out.then(
    (result) => {
      if (result !== undefined) console.warn('Streaming handlers ignore return values.');
      if (!stream.writableEnded) finish(true, new Error('Response stream is not finished.'));
      else finish(false);
    },
    (err) => finish(true, err),
  );
}

// send posts a result (JSON-encoded; undefined becomes null) or an error.
function send(id, failed, value) {
  if (!failed) {
    let json;
    try {
      json = JSON.stringify(value === undefined ? null : value) ?? 'null';
    } catch (cause) {
      return send(id, true, new RuntimeError('Error', 'Unable to stringify response body', cause));
    }
    return rapid.respond(id, json);
  }
  console.error('Invoke Error', toFormatted(value));
  return rapid.fail(id, toResponse(value));
}

function parseHeader(v) {
  if (!v) return undefined;
  try {
    return JSON.parse(v);
  } catch {
    return undefined;
  }
}
