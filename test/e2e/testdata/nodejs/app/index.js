// An ordinary async handler: it echoes the event with what Lambda gives a
// function (context, environment) and what survives between calls.
const fs = require('fs');

let calls = 0; // lives as long as the environment

exports.handler = async (event, context) => {
  calls++;
  let tmp = '';
  try {
    tmp = fs.readFileSync('/tmp/kept', 'utf8');
  } catch {}
  if (event.data) fs.writeFileSync('/tmp/kept', event.data);
  console.log('handled', calls);
  return {
    event,
    calls,
    tmp,
    pid: process.pid,
    node: process.version,
    context,
    remaining: context.getRemainingTimeInMillis(),
    methods: ['getRemainingTimeInMillis', 'succeed', 'fail', 'done'].filter((m) => typeof context[m] === 'function'),
    // Ordinary properties, as on Lambda: they survive a spread.
    spread: ['getRemainingTimeInMillis', 'succeed', 'fail', 'done'].filter((m) => typeof { ...context }[m] === 'function'),
    traceId: process.env._X_AMZN_TRACE_ID,
    env: {
      AWS_EXECUTION_ENV: process.env.AWS_EXECUTION_ENV,
      AWS_LAMBDA_FUNCTION_NAME: process.env.AWS_LAMBDA_FUNCTION_NAME,
      LAMBDA_TASK_ROOT: process.env.LAMBDA_TASK_ROOT,
      NODE_PATH: process.env.NODE_PATH,
    },
    cwd: process.cwd(),
  };
};
