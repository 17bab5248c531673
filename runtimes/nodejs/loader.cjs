'use strict';

// Finding and loading the user's handler from _HANDLER ("file.export",
// "dir/file.export", "file.nested.export") the way Lambda's Node.js runtime
// does: CommonJS through require, ES modules through import(), failures
// classified as Runtime.* errors for /runtime/init/error.

const { existsSync, readFileSync, statSync } = require('node:fs');
const Module = require('node:module');
const path = require('node:path');
const { pathToFileURL } = require('node:url');
const { RuntimeError } = require('./errors.cjs');

const taskRoot = process.env.LAMBDA_TASK_ROOT || '/var/task';
const runtimeDir = process.env.LAMBDA_RUNTIME_DIR || '/var/runtime';

// The user's modules are required as if from the entry point, so that a
// missing module's require stack reads like Lambda's ("- /var/runtime/index…").
const requireFromRuntime = Module.createRequire(path.join(__dirname, 'index.cjs'));

// setModulePaths gives require() Lambda's NODE_PATH unless the user set
// their own: layers (/opt/nodejs), the runtime directory (its node_modules
// holds the AWS SDK icebox provides) and the task root, then the host's
// global npm directories, where `npm install -g` puts packages for
// sandboxes to share (/usr is mounted read-only in each).
function setModulePaths() {
  if (process.env.NODE_PATH === undefined) {
    const major = process.versions.node.split('.')[0];
    process.env.NODE_PATH = [
      `/opt/nodejs/node${major}/node_modules`,
      '/opt/nodejs/node_modules',
      `${runtimeDir}/node_modules`,
      runtimeDir,
      taskRoot,
      '/usr/local/lib/node_modules',
      '/usr/lib/node_modules',
    ].join(':');
    // Node reads NODE_PATH once at start; _initPaths reads it again.
    Module._initPaths();
  }
}

// load returns the handler function named by handlerString.
async function load(handlerString) {
  if (handlerString.includes('..')) {
    throw new RuntimeError('Runtime.MalformedHandlerName',
      `'${handlerString}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`);
  }
  // "dir/sub/app.handler": the module is "dir/sub/app", the export path "handler".
  const base = path.basename(handlerString);
  const dir = handlerString.slice(0, handlerString.length - base.length);
  const dot = base.indexOf('.');
  if (dot <= 0 || dot === base.length - 1) {
    throw new RuntimeError('Runtime.MalformedHandlerName', 'Bad handler');
  }
  const moduleName = base.slice(0, dot);
  const exportPath = base.slice(dot + 1);

  let mod;
  try {
    mod = await loadModule(path.resolve(taskRoot, dir, moduleName), dir + moduleName);
  } catch (err) {
    throw classify(err);
  }
  const fn = exportPath.split('.').reduce((o, k) => (o == null ? undefined : o[k]), mod);
  if (fn === undefined || fn === null) {
    throw new RuntimeError('Runtime.HandlerNotFound', `${handlerString} is undefined or not exported`);
  }
  if (typeof fn !== 'function') {
    throw new RuntimeError('Runtime.HandlerNotFound', `${handlerString} is not a function`);
  }
  return fn;
}

// loadModule tries, in Lambda's order: the file as named, .js (require, or
// import under a "type":"module" package.json), .mjs (import), .cjs
// (require); with none of them it falls back to require's own resolution
// (NODE_PATH), whose error is Lambda's "Cannot find module".
async function loadModule(file, name) {
  if (isFile(file)) return requireFromRuntime(file);
  if (isFile(file + '.js')) {
    return isModuleScope(path.dirname(file)) ? importESM(file + '.js') : requireFromRuntime(file + '.js');
  }
  if (isFile(file + '.mjs')) return importESM(file + '.mjs');
  if (isFile(file + '.cjs')) return requireFromRuntime(file + '.cjs');
  return requireFromRuntime(name);
}

// importESM imports an ES module. Node's ESM resolver ignores NODE_PATH, so
// a bare import that only a layer or the host's SDK can satisfy fails;
// then a resolve hook that knows NODE_PATH is registered and the import
// retried. Resolution fails while linking, before any module body runs, so
// the retry re-runs nothing. The hook costs a loader thread (tens of ms),
// which is why it is not there from the start.
async function importESM(file) {
  const url = pathToFileURL(file).href;
  try {
    return await import(url);
  } catch (err) {
    if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !/Cannot find package '/.test(err.message)) throw err;
    const tag = 'icebox-resolve';
    Module.register(pathToFileURL(path.join(__dirname, 'esm-resolve.mjs')), {
      data: { dirs: (process.env.NODE_PATH || '').split(':').filter(Boolean), taskRoot, tag },
    });
    // The failed graph stays cached under its URLs; the hook gives the
    // task's modules fresh ones.
    return import(`${url}?${tag}`);
  }
}

// isModuleScope reports whether the nearest package.json above dir says
// "type": "module", as Node decides for .js files.
function isModuleScope(dir) {
  for (let d = dir; ; d = path.dirname(d)) {
    const pj = path.join(d, 'package.json');
    if (existsSync(pj)) {
      try {
        return JSON.parse(readFileSync(pj, 'utf8')).type === 'module';
      } catch {
        return false;
      }
    }
    if (d === path.dirname(d)) return false;
  }
}

function isFile(p) {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

// classify maps a failure while loading user code to Lambda's error types.
// Anything else (a throw in the module's top level) is reported as itself.
function classify(err) {
  if (err?.name === 'SyntaxError') {
    return new RuntimeError('Runtime.UserCodeSyntaxError', String(err), err);
  }
  if (err?.code === 'MODULE_NOT_FOUND' || err?.code === 'ERR_MODULE_NOT_FOUND') {
    return new RuntimeError('Runtime.ImportModuleError', String(err), err);
  }
  return err;
}

module.exports = { load, setModulePaths };
