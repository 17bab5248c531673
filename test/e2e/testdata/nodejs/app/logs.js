exports.handler = async (event) => {
  console.log('hello from node', { n: event.n });
  console.info('an info line');
  console.warn('a warning');
  console.error('an error line');
  process.stdout.write('raw stdout\n');
  return 'logged';
};
