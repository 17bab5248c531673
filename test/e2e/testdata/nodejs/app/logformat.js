exports.handler = async (event) => {
  console.log('first line\nsecond line');
  console.info('dropped info');
  console.error('json error', event.n);
  return process.env._X_AMZN_TRACE_ID;
};
