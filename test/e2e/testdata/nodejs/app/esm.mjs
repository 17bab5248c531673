// An ES module handler with top-level await.
import { readFile } from 'node:fs/promises';
import { greet } from './lib/greet.mjs';

const started = await Promise.resolve(Date.now());
let calls = 0;

export const handler = async (event, context) => {
  calls++;
  const self = await readFile(new URL(import.meta.url));
  return { esm: true, greeting: greet(event.name), calls, started, bytes: self.length, requestId: context.awsRequestId };
};
