// A handler that is not async but returns a promise.
exports.handler = (event) =>
  new Promise((resolve) => setTimeout(() => resolve({ doubled: event.n * 2 }), 10));

// A synchronous handler returning undefined-valued work resolves to null.
exports.nothing = async () => undefined;
