// Response streaming handlers, written as Lambda users write them: the
// awslambda global is the runtime's, nothing is imported for it.
const { pipeline } = require('node:stream/promises');
const { Readable } = require('node:stream');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Five chunks 200 ms apart, each a JSON line with when it was written.
exports.chunks = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream.setContentType('application/x-ndjson');
  for (let i = 0; i < 5; i++) {
    if (i > 0) await sleep(200);
    responseStream.write(JSON.stringify({ i, writtenMs: Date.now() }) + '\n');
  }
  responseStream.end();
});

// event.mib MiB of a known pattern (byte n is n % 251), through a pipeline.
exports.big = awslambda.streamifyResponse(async (event, responseStream) => {
  const mib = event.mib || 30;
  async function* pieces() {
    const piece = Buffer.alloc(1 << 20);
    for (let m = 0; m < mib; m++) {
      for (let j = 0; j < piece.length; j++) piece[j] = (m * piece.length + j) % 251;
      yield Buffer.from(piece);
    }
  }
  await pipeline(Readable.from(pieces()), responseStream);
});

// Some output, then an error.
exports.fails = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream.write('partial ');
  await sleep(50);
  throw new TypeError('boom mid-stream');
});

// Returns without ending the stream.
exports.unfinished = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream.write('half');
});

// Writes forever (until the platform stops it).
exports.forever = awslambda.streamifyResponse(async (event, responseStream) => {
  const piece = Buffer.alloc(1 << 20, 'x');
  for (;;) {
    if (!responseStream.write(piece)) await new Promise((r) => responseStream.once('drain', r));
  }
});

// A function URL response: status, headers and cookies, then the body.
exports.http = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream = awslambda.HttpResponseStream.from(responseStream, {
    statusCode: 201,
    headers: { 'content-type': 'text/plain', 'x-streamed': 'yes' },
    cookies: ['a=1', 'b=2'],
  });
  responseStream.write('hello ');
  await sleep(100);
  await new Promise((resolve) => responseStream.end('world', resolve));
});

// A chunk every 300 ms, forever: the function's timeout ends it.
exports.trickle = awslambda.streamifyResponse(async (event, responseStream) => {
  for (let i = 0; ; i++) {
    responseStream.write(`tick ${i}\n`);
    await sleep(300);
  }
});

// An error whose message and stack are longer than trailers may be.
exports.failsLong = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream.write('partial ');
  const deep = (n) => (n === 0 ? Promise.reject(new RangeError('long '.repeat(2000))) : deep(n - 1));
  await deep(50);
});
