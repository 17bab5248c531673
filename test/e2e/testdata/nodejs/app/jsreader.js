// Reads another function's InvokeWithResponseStream with the JS SDK the
// runtime provides, noting when each chunk arrived.
const { LambdaClient, InvokeWithResponseStreamCommand } = require('@aws-sdk/client-lambda');

exports.handler = async (event) => {
  const out = await new LambdaClient({}).send(new InvokeWithResponseStreamCommand({ FunctionName: event.target, Payload: Buffer.from('{}') }));
  const chunks = [];
  let complete;
  for await (const ev of out.EventStream) {
    if (ev.PayloadChunk) chunks.push({ receivedMs: Date.now(), payload: Buffer.from(ev.PayloadChunk.Payload).toString() });
    if (ev.InvokeComplete) complete = ev.InvokeComplete;
  }
  return { status: out.StatusCode, executedVersion: out.ExecutedVersion, chunks, complete };
};
