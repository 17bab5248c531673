import path from 'node:path';

export async function handler(event) {
  return { module: typeof require === 'undefined' ? 'esm' : 'cjs', base: path.basename(import.meta.url), echo: event };
}
