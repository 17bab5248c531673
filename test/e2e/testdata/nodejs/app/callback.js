// Callback-style handlers, as Node.js Lambda code was written for years.
exports.handler = (event, context, callback) => {
  setTimeout(() => callback(null, { via: 'callback', n: event.n }), 5);
};

// callback() returns before a timer the handler left behind; Lambda waits
// for the event loop to empty unless told not to.
exports.lingering = (event, context, callback) => {
  context.callbackWaitsForEmptyEventLoop = event.wait;
  setTimeout(() => {}, 400);
  callback(null, { waited: context.callbackWaitsForEmptyEventLoop });
};

exports.failing = (event, context, callback) => {
  callback(new TypeError('bad input: ' + event.n));
};

// The legacy context methods.
exports.legacy = (event, context) => {
  context.succeed({ legacy: true });
};
