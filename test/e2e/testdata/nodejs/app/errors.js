class ValidationError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ValidationError';
  }
}

let calls = 0;

exports.throws = async (event) => {
  calls++;
  if (event && event.ok) return { calls };
  throw new Error('something broke');
};

exports.custom = async (event) => {
  throw new ValidationError(`field ${event.field} is required`);
};

exports.syncThrow = () => {
  throw new RangeError('out of range');
};

exports.string = async () => {
  throw 'just a string';
};

// A rejection nobody handles ends the runtime, as on Lambda.
exports.unhandled = async () => {
  Promise.reject(new Error('nobody waits for me'));
  await new Promise((resolve) => setTimeout(resolve, 200));
  return 'too late';
};

exports.circular = async () => {
  const o = {};
  o.self = o;
  return o;
};

// A throw from a timer nobody can catch ends the runtime too.
exports.uncaught = (event, context, callback) => {
  setTimeout(() => {
    throw new SyntaxError('thrown from a timer');
  }, 10);
};
