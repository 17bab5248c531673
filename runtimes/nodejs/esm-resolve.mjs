// Module resolve hook (node:module register), loaded only when an ES module
// handler imports a package found nowhere but in NODE_PATH: layers, the
// runtime directory or the host's global npm directory. Node's own ESM
// resolver looks only in node_modules directories above the importing file.

import path from 'node:path';
import { pathToFileURL } from 'node:url';

let dirs = [];
let taskURL = 'file:///var/task/';
let tag = '';

export function initialize(data) {
  dirs = data.dirs;
  taskURL = pathToFileURL(data.taskRoot).href + '/';
  tag = data.tag;
}

export async function resolve(specifier, context, nextResolve) {
  try {
    return fresh(await nextResolve(specifier, context));
  } catch (err) {
    if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !isBare(specifier)) throw err;
    for (const dir of dirs) {
      try {
        // As if imported from a file inside dir: the resolver then finds
        // dir/<package> when dir is a node_modules directory, and
        // dir/node_modules/<package> otherwise.
        const parentURL = pathToFileURL(path.join(dir, 'node_modules', '_')).href;
        return await nextResolve(specifier, { ...context, parentURL });
      } catch {
        // Try the next directory.
      }
    }
    throw err;
  }
}

// fresh tags the task's own modules: their first, failed link is cached
// under the untagged URLs.
function fresh(result) {
  if (result.url.startsWith(taskURL) && !result.url.includes('?')) {
    return { ...result, url: `${result.url}?${tag}` };
  }
  return result;
}

function isBare(s) {
  return !/^(\.{0,2}\/|[a-z][a-z0-9+.-]*:)/i.test(s);
}
