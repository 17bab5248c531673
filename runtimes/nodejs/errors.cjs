'use strict';

// Error shapes of Lambda's Node.js runtime: what a thrown value becomes in
// the body of /runtime/invocation/{id}/error and /runtime/init/error.

const { types } = require('node:util');

// A RuntimeError is a failure the runtime itself classifies (import, handler
// lookup, syntax, unhandled rejection). Its name is Lambda's errorType; the
// wrapped value keeps the user's own stack for the trace.
class RuntimeError extends Error {
  constructor(type, message, cause) {
    super(message);
    this.name = type;
    this.wrapped = cause;
  }
}

// toResponse renders any thrown value as {errorType, errorMessage, trace}.
// Non-Error values (throw "x", callback(42)) follow Lambda: the type is
// typeof, the message its string form, no trace.
function toResponse(err) {
  try {
    if (err instanceof RuntimeError) {
      // The header, then the user's stack without repeating the header.
      const head = `${err.name}: ${err.message}`.split('\n');
      const seen = new Set(head.map((l) => l.trim()));
      const rest = stackLines(err.wrapped).filter((l) => !seen.has(l.trim()) && !seen.has(`${err.name}: ${l.trim()}`));
      return { errorType: err.name, errorMessage: err.message, trace: [...head, ...rest] };
    }
    if (isError(err)) {
      return { errorType: String(err.name), errorMessage: String(err.message), trace: stackLines(err) };
    }
    return { errorType: typeof err, errorMessage: err.toString(), trace: [] };
  } catch {
    // undefined, null, a throwing getter: report that much.
    return {
      errorType: 'handled',
      errorMessage: 'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
      trace: [],
    };
  }
}

// isError accepts native errors and error-like objects from other realms
// (vm contexts) or libraries that build their own.
function isError(v) {
  return types.isNativeError(v) || (v !== null && typeof v === 'object' && typeof v.name === 'string' && typeof v.message === 'string');
}

function stackLines(err) {
  if (!isError(err)) return [];
  return typeof err.stack === 'string' ? err.stack.split('\n') : [`${err.name}: ${err.message}`];
}

// toFormatted renders a thrown value for the log as Lambda's runtime does
// after "Invoke Error" and "Uncaught Exception": a tab, then
// {errorType, errorMessage, ...its own properties, stack: [lines]}.
function toFormatted(err) {
  const r = toResponse(err);
  const head = { errorType: r.errorType, errorMessage: r.errorMessage };
  try {
    const own = isError(err) && !(err instanceof RuntimeError) ? { ...err } : {};
    return '\t' + JSON.stringify({ ...head, ...own, stack: r.trace });
  } catch {
    return '\t' + JSON.stringify({ ...head, stack: r.trace });
  }
}

module.exports = { RuntimeError, toResponse, toFormatted };
