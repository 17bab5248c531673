exports.deep = { handler: async () => 'nested' };
exports.handler = async (event, context) => ({ from: __filename, name: context.functionName });
