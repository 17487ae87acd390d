'use strict';
/*
 * sluice's Node.js runtime: runs Lambda-style Node.js handlers in a worker process.
 *
 * The daemon starts `node bootstrap.js PIPELINE` with its end of a socketpair on fd 3
 * and speaks the framed worker protocol (core/wire.h) over it:
 *
 *   daemon -> worker  INIT    JSON: pipeline, runtime, memory_mb, steps [{index, name,
 *                             handler, module, function, path, code, config, timeout_ms}]
 *   worker -> daemon  READY   i32 ok, error text + NUL
 *   daemon -> worker  INVOKE  u32 step, u32 attempt, i64 deadline_ns (CLOCK_MONOTONIC; < 0: -timeout),
 *                             request id (36 chars + NUL), event JSON
 *   worker -> daemon  LOG     i32 level, message (any number, before the RESULT)
 *   worker -> daemon  RESULT  u32 status, i32 status_code, f64 init_ms, f64 duration_ms,
 *                             i64 max_rss_kb, then body, error_type, error, stack, each a
 *                             u32 length (0xffffffff: null) and UTF-8 bytes
 *
 * A frame is a little-endian header (u32 payload length, u32 type) and the payload.
 *
 * Every step's module is loaded on INIT (Lambda's init phase), before READY: require()
 * for CommonJS, import() for ES modules (.mjs, or .js under a package.json with
 * "type": "module"). A module that fails to load does not stop the worker: its steps
 * answer each invocation with Lambda's error (Runtime.UserCodeSyntaxError,
 * Runtime.ImportModuleError, Runtime.HandlerNotFound, ...) after trying once more, so a
 * fixed file is picked up without a restart.
 *
 * Frames are read with blocking reads while no invocation runs, so, as on Lambda, the
 * event loop is frozen between invocations. Handlers may be async (a promise), use the
 * callback (event, context, callback) - with context.callbackWaitsForEmptyEventLoop as
 * Lambda has it - or return a value. console.* and process.stdout/stderr become LOG
 * frames, bounded per invocation. Only Node's own modules are used. See docs/runtimes.md.
 */

const fs = require('fs');
const os = require('os');
const path = require('path');
const util = require('util');
const { Writable } = require('stream');
const { StringDecoder } = require('string_decoder');
const { pathToFileURL } = require('url');
const childProcess = require('child_process');
const Module = require('module');

const WORKER_FD = 3;
const T_INIT = 1, T_READY = 2, T_INVOKE = 3, T_LOG = 4, T_RESULT = 5;
const MAX_FRAME = 64 * 1024 * 1024;
const LOG_LINE_MAX = 16384;
const LOG_MAX_LINES = 10000;
const LOG_MAX_BYTES = 10 * 1024 * 1024;
const BODY_MAX = MAX_FRAME - 256 * 1024;
const ST_OK = 0, ST_ERROR = 1;
const NULL_STR = 0xffffffff;
const LV_DEBUG = 10, LV_INFO = 20, LV_WARN = 30, LV_ERROR = 40;
const BOOTSTRAP_FILE = __filename;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

function fatal(msg) {
  try {
    fs.writeSync(2, `sluice nodejs worker: ${msg}\n`);
  } finally {
    process.exit(2);
  }
}

// -- the socket ----------------------------------------------------------------------

function readExact(n) {
  const buf = Buffer.allocUnsafe(n);
  let off = 0;
  while (off < n) {
    let got;
    try {
      got = fs.readSync(WORKER_FD, buf, off, n - off, null);
    } catch (e) {
      if (e.code === 'EAGAIN' || e.code === 'EINTR') {
        Atomics.wait(sleeper, 0, 0, 1);
        continue;
      }
      if (e.code === 'ECONNRESET') return null;
      throw e;
    }
    if (got === 0) return null;
    off += got;
  }
  return buf;
}

/* {type, payload}, or null at EOF. */
function readFrame() {
  const head = readExact(8);
  if (!head) return null;
  const len = head.readUInt32LE(0), type = head.readUInt32LE(4);
  if (len > MAX_FRAME || type < T_INIT || type > T_RESULT)
    fatal(`protocol error: a frame of ${len} bytes, type ${type}`);
  const payload = len ? readExact(len) : Buffer.alloc(0);
  if (!payload) return null;
  return { type, payload };
}

function writeAll(buf) {
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(WORKER_FD, buf, off, buf.length - off);
    } catch (e) {
      if (e.code === 'EAGAIN' || e.code === 'EINTR') {
        Atomics.wait(sleeper, 0, 0, 1);
        continue;
      }
      if (e.code === 'EPIPE' || e.code === 'ECONNRESET') process.exit(0); // the daemon is gone
      throw e;
    }
  }
}

/* One write per frame: JavaScript runs on one thread, so frames never interleave. */
function sendFrame(type, parts) {
  const payload = Buffer.concat(parts);
  const head = Buffer.allocUnsafe(8);
  head.writeUInt32LE(payload.length, 0);
  head.writeUInt32LE(type, 4);
  writeAll(Buffer.concat([head, payload]));
}

function sendReady(ok, msg) {
  const flag = Buffer.allocUnsafe(4);
  flag.writeInt32LE(ok ? 1 : 0, 0);
  sendFrame(T_READY, [flag, Buffer.from(msg || '', 'utf8'), Buffer.from([0])]);
}

/* buf cut to at most limit bytes on a character boundary. */
function utf8Cut(buf, limit) {
  if (buf.length <= limit) return buf;
  let cut = limit;
  while (cut > 0 && (buf[cut] & 0xc0) === 0x80) cut--;
  return buf.subarray(0, cut);
}

// -- log lines -----------------------------------------------------------------------

/* Lines become LOG frames. Before READY the daemon reads none, so lines written during
 * init wait here for the first invocation. Each invocation may send LOG_MAX_LINES lines or
 * LOG_MAX_BYTES bytes; past that one line says so and the rest is dropped. */
const sink = {
  held: [],
  holding: true,
  lines: 0,
  bytes: 0,
  cut: false,

  startInvocation() {
    this.lines = this.bytes = 0;
    this.cut = false;
    const held = this.held;
    this.held = [];
    this.holding = false;
    for (const [level, data] of held) this.send(level, data);
  },

  emit(level, text) {
    let data = Buffer.from(String(text), 'utf8');
    if (data.length > LOG_LINE_MAX) {
      const tag = Buffer.from(` ...[line cut at ${LOG_LINE_MAX} bytes of ${data.length}]`);
      data = Buffer.concat([utf8Cut(data, LOG_LINE_MAX - tag.length), tag]);
    }
    if (this.cut) return;
    if (this.lines >= LOG_MAX_LINES || this.bytes + data.length > LOG_MAX_BYTES) {
      this.cut = true;
      level = LV_WARN;
      data = Buffer.from(`[sluice] log output truncated: more than ${LOG_MAX_LINES} lines or ` +
        `${LOG_MAX_BYTES >> 20} MiB in one invocation; the rest of its lines were dropped`);
    }
    this.lines++;
    this.bytes += data.length;
    if (this.holding) {
      this.held.push([level, data]);
      return;
    }
    this.send(level, data);
  },

  /* A line of stream output longer than LOG_LINE_MAX bytes goes out in pieces, so none
   * of it is lost. keepTail: return the last, short piece instead of sending it. */
  emitPieces(level, text, keepTail) {
    if (text.length * 3 <= LOG_LINE_MAX && !keepTail) return this.emit(level, text);
    let data = Buffer.from(text, 'utf8');
    while (data.length > LOG_LINE_MAX || (data.length === LOG_LINE_MAX && keepTail)) {
      let piece = utf8Cut(data, LOG_LINE_MAX);
      if (!piece.length) piece = data.subarray(0, LOG_LINE_MAX);
      this.emit(level, piece.toString('utf8'));
      data = data.subarray(piece.length);
    }
    if (keepTail) return data.toString('utf8');
    this.emit(level, data.toString('utf8'));
    return '';
  },

  send(level, data) {
    const lv = Buffer.allocUnsafe(4);
    lv.writeInt32LE(level, 0);
    sendFrame(T_LOG, [lv, data]);
  },
};

/* process.stdout / process.stderr: whole lines become log lines at a level. */
function lineStream(level, fd) {
  const decoder = new StringDecoder('utf8');
  let partial = '';
  const push = (text) => {
    partial += text;
    let nl;
    while ((nl = partial.indexOf('\n')) >= 0) {
      sink.emitPieces(level, partial.slice(0, nl));
      partial = partial.slice(nl + 1);
    }
    if (partial.length >= LOG_LINE_MAX) // a long line so far: its full pieces now
      partial = sink.emitPieces(level, partial, true);
  };
  const stream = new Writable({
    decodeStrings: false,
    write(chunk, encoding, cb) {
      push(typeof chunk === 'string' ? chunk : decoder.write(chunk));
      cb();
    },
  });
  stream.fd = fd;
  stream.isTTY = false;
  stream.endInvocation = () => {
    if (partial) {
      sink.emit(level, partial);
      partial = '';
    }
  };
  return stream;
}

let streams = [];

function captureOutput() {
  const out = lineStream(LV_INFO, 1), err = lineStream(LV_ERROR, 2);
  streams = [out, err];
  for (const [name, s] of [['stdout', out], ['stderr', err]])
    Object.defineProperty(process, name, { configurable: true, enumerable: true, get: () => s });
  const at = (level) => (...args) => sink.emit(level, util.format(...args));
  console.log = at(LV_INFO);
  console.info = at(LV_INFO);
  console.debug = at(LV_DEBUG);
  console.warn = at(LV_WARN);
  console.error = at(LV_ERROR);
  console.trace = (...args) => {
    const e = { name: 'Trace', message: util.format(...args) };
    Error.captureStackTrace(e, console.trace);
    sink.emit(LV_ERROR, e.stack);
  };
  console.dir = (obj, options) => sink.emit(LV_INFO, util.inspect(obj, { customInspect: false, ...options }));
}

function finishOutput() {
  for (const s of streams) s.endInvocation();
}

// -- errors --------------------------------------------------------------------------

class Fault extends Error {
  constructor(errorType, message, trace) {
    super(message);
    this.errorType = errorType;
    this.trace = trace || [];
  }
}

function isError(e) {
  return e instanceof Error || util.types.isNativeError(e) ||
    (e !== null && typeof e === 'object' && typeof e.message === 'string' && typeof e.stack === 'string');
}

/* Stack lines without this file's frames. */
function stackLines(e) {
  const lines = String(e.stack || '').split('\n');
  return lines.filter((l) => !(l.startsWith('    at ') && l.includes(BOOTSTRAP_FILE)));
}

/* Lambda's shape of an error: {errorType, errorMessage, trace}. */
function describeError(e) {
  if (e instanceof Fault) return { type: e.errorType, message: e.message, trace: e.trace };
  try {
    if (isError(e)) {
      return { type: String(e.name || 'Error'), message: String(e.message), trace: stackLines(e) };
    }
    let message;
    try {
      message = typeof e === 'string' ? e : JSON.stringify(e);
    } catch (_) {
      message = undefined;
    }
    return { type: typeof e, message: message === undefined ? String(e) : message, trace: [] };
  } catch (_) {
    return { type: 'handled', message: 'the handler failed with a value whose message, name or ' +
      'stack could not be read', trace: [] };
  }
}

/* "file, line N" from the first lines of a CommonJS syntax error's stack. */
function syntaxLocation(e) {
  const first = String(e.stack || '').split('\n')[0];
  const m = /^(.*):(\d+)$/.exec(first);
  return m ? { file: m[1].replace(/^file:\/\//, ''), line: Number(m[2]) } : null;
}

/* ES modules' syntax errors carry no location; `node --check` on the file finds it. */
function checkSyntax(file) {
  try {
    const r = childProcess.spawnSync(process.execPath, ['--check', file],
      { encoding: 'utf8', timeout: 10000, stdio: ['ignore', 'ignore', 'pipe'] });
    if (r.status === 0 || !r.stderr) return null;
    const lines = r.stderr.split('\n');
    const m = /^(.*):(\d+)$/.exec(lines[0]);
    if (!m) return null;
    const trace = [];
    for (const l of lines) {
      if (l.startsWith('    at ') || l.startsWith('Node.js ')) break;
      trace.push(l);
    }
    while (trace.length && trace[trace.length - 1] === '') trace.pop();
    return { file: m[1].replace(/^file:\/\//, ''), line: Number(m[2]), trace };
  } catch (_) {
    return null;
  }
}

/* The file of an ES module graph that does not parse: the handler's file, then the
 * files it imports by relative path (checked, never run; at most 20 files). */
function findSyntaxError(file) {
  const seen = new Set([file]);
  const queue = [file];
  const started = Date.now();
  const spec = /(?:^|[;\s}])(?:import|export)\s*(?:[^'"`;]*?\sfrom\s*)?['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;
  while (queue.length && seen.size <= 20 && Date.now() - started < 5000) {
    const f = queue.shift();
    const found = checkSyntax(f);
    if (found) return found;
    let text;
    try {
      text = fs.readFileSync(f, 'utf8');
    } catch (_) {
      continue;
    }
    for (const m of text.matchAll(spec)) {
      const dep = path.resolve(path.dirname(f), m[1] || m[2]);
      if (!seen.has(dep) && fs.existsSync(dep)) {
        seen.add(dep);
        queue.push(dep);
      }
    }
  }
  return null;
}

function loadFault(step, e) {
  const modname = step.module;
  if (e instanceof Fault) return e;
  if (e && e.name === 'SyntaxError') {
    let loc = syntaxLocation(e);
    let trace = stackLines(e).filter((l) => !l.startsWith('    at '));
    if (!loc) {
      const checked = findSyntaxError(step.path);
      if (checked) {
        loc = checked;
        trace = checked.trace;
      }
    }
    while (trace.length && trace[trace.length - 1] === '') trace.pop();
    const at = loc ? ` (${loc.file}, line ${loc.line})` : ` (in ${step.path} or a module it ` +
      'imports; Node.js keeps an ES module that failed to parse until the worker restarts: ' +
      'change the handler\'s file, or reload sluice)';
    return new Fault('Runtime.UserCodeSyntaxError', `SyntaxError: ${e.message}${at}`, trace);
  }
  const code = e && e.code;
  if (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND' ||
      code === 'ERR_UNSUPPORTED_DIR_IMPORT' || code === 'ERR_PACKAGE_PATH_NOT_EXPORTED') {
    const first = String(e.message).split('\n')[0];
    return new Fault('Runtime.ImportModuleError',
      `Unable to import module '${modname}': ${first} (${step.path})`, stackLines(e));
  }
  const d = describeError(e);
  return new Fault(d.type, `Unable to initialise module '${modname}' (${step.path}): ` +
    `${d.type}: ${d.message}`, d.trace);
}

// -- modules -------------------------------------------------------------------------

/* Node's own rule: .mjs is an ES module, .cjs CommonJS, and .js follows "type" in the
 * nearest package.json. */
function isEsModule(file) {
  if (file.endsWith('.mjs')) return true;
  if (file.endsWith('.cjs')) return false;
  for (let dir = path.dirname(file); ;) {
    const pj = path.join(dir, 'package.json');
    let text = null;
    try {
      text = fs.readFileSync(pj, 'utf8');
    } catch (_) {
      text = null;
    }
    if (text !== null) {
      try {
        return JSON.parse(text).type === 'module';
      } catch (_) {
        return false;
      }
    }
    const up = path.dirname(dir);
    if (up === dir) return false;
    dir = up;
  }
}

let initAbort = null;   // resolves when the loop empties during init (see beforeExit)
let importRound = 0;

async function importEsm(file, fresh) {
  const url = pathToFileURL(file).href + (fresh ? `?sluice-retry=${++importRound}` : '');
  const never = new Promise((resolve) => { initAbort = resolve; });
  try {
    return await Promise.race([import(url), never.then(() => {
      throw new Fault('Runtime.ImportModuleError', `Unable to import module: the top-level ` +
        `code of ${file} awaits something that never settles`);
    })]);
  } finally {
    initAbort = null;
  }
}

function requireCjs(file, fresh) {
  if (fresh) {
    const key = require.resolve(file);
    delete require.cache[key];
  }
  return require(file);
}

class Step {
  constructor(spec) {
    this.index = Number(spec.index);
    this.name = String(spec.name);
    this.handler = String(spec.handler);
    this.module = String(spec.module);
    this.function = String(spec.function);
    this.path = path.resolve(String(spec.path));
    this.code = path.resolve(spec.code ? String(spec.code) : path.dirname(this.path));
    this.configJson = spec.config || '{}';
    this.env = spec.environment && typeof spec.environment === 'object' ? spec.environment : {};
    this.fn = null;
    this.fault = null;
  }

  config() {
    try {
      return JSON.parse(this.configJson);
    } catch (_) {
      return {};
    }
  }
}

const runtime = {
  pipeline: '',
  memoryLimitInMB: '128',
  logStreamName: '',
  steps: new Map(),
  modules: new Map(),     // path -> exports or namespace, shared by steps
  importTimes: [],        // [path, ms] of the loads at init
  served: 0,
};

/* A worker serves every Node.js step of its pipeline; each step sees its own function
 * name, handler, task root and "environment" (the daemon starts the worker with the
 * first step's, core/worker_env.c). */
const baseEnv = { ...process.env };
let envStep = null;

function useStepEnv(step) {
  if (envStep === step) return;
  if (envStep) {
    for (const k of Object.keys(envStep.env)) {
      if (k in baseEnv) process.env[k] = baseEnv[k];
      else delete process.env[k];
    }
  }
  for (const [k, v] of Object.entries(step.env)) process.env[k] = String(v);
  if (!('LAMBDA_TASK_ROOT' in step.env)) process.env.LAMBDA_TASK_ROOT = step.code;
  envStep = step;
}

function findHandler(step, mod) {
  let fn = mod ? mod[step.function] : undefined;
  if (fn === undefined && mod && mod.default && typeof mod.default === 'object')
    fn = mod.default[step.function];
  if (fn === undefined)
    throw new Fault('Runtime.HandlerNotFound', `${step.handler} is undefined or not exported ` +
      `(${step.path})`);
  if (typeof fn !== 'function')
    throw new Fault('Runtime.HandlerNotFound', `${step.handler} is not a function (${step.path})`);
  return fn;
}

/* Load step's module and find its function; on failure step.fault says why. Resolves to
 * the milliseconds spent. */
async function loadStep(step, fresh) {
  const t0 = process.hrtime.bigint();
  useStepEnv(step);
  try {
    let mod = runtime.modules.get(step.path);
    if (mod === undefined) {
      if (isEsModule(step.path)) {
        mod = await importEsm(step.path, fresh);
      } else {
        try {
          mod = requireCjs(step.path, fresh);
        } catch (e) {
          if (e && e.code !== 'ERR_REQUIRE_ESM') throw e;
          mod = await importEsm(step.path, fresh);
        }
      }
      runtime.modules.set(step.path, mod);
      if (!fresh) runtime.importTimes.push([step.path, Number(process.hrtime.bigint() - t0) / 1e6]);
    }
    step.fn = findHandler(step, mod);
    step.fault = null;
  } catch (e) {
    step.fn = null;
    step.fault = loadFault(step, e);
  }
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

// -- the context ---------------------------------------------------------------------

function makeContext(step, requestId, attempt, deadlineNs, inv) {
  const ctx = {
    awsRequestId: requestId,
    functionName: step.handler,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:sluice:lambda:${process.env.AWS_REGION || 'local'}:000000000000:function:${runtime.pipeline}-${step.name}`,
    memoryLimitInMB: runtime.memoryLimitInMB,
    logGroupName: `/sluice/${runtime.pipeline}`,
    logStreamName: runtime.logStreamName,
    identity: undefined,
    clientContext: undefined,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis() {
      const left = (deadlineNs - process.hrtime.bigint()) / 1000000n;
      return left > 0n ? Number(left) : 0;
    },
    // Lambda's legacy completion methods.
    done: (err, value) => complete(inv, err !== undefined && err !== null, err, value, false),
    succeed: (value) => complete(inv, false, null, value, false),
    fail: (err) => complete(inv, true, err === undefined || err === null ? 'handled' : err, undefined, false),
    // sluice's own
    pipeline: runtime.pipeline,
    step: step.name,
    config: step.config(),
    attempt,
  };
  return ctx;
}

// -- invocations ---------------------------------------------------------------------

let current = null;  // the invocation in flight: {step, t0, initMs, ctx, done, pending}
let phase = 'init';

function next() {
  const f = readFrame();
  if (!f) {
    finishOutput();
    process.exit(0); // EOF: the daemon is done with this worker
  }
  if (f.type !== T_INVOKE) fatal(`protocol error: frame type ${f.type} where an invoke was expected`);
  startInvocation(f.payload).catch((e) => fatal(`internal error: ${e && e.stack}`));
}

async function startInvocation(p) {
  if (p.length < 53 || p[52] !== 0) fatal('protocol error: a malformed invoke frame');
  const stepIndex = p.readUInt32LE(0), attempt = p.readUInt32LE(4);
  let deadlineNs = p.readBigInt64LE(8);
  if (deadlineNs < 0n) deadlineNs = process.hrtime.bigint() - deadlineNs; // a timeout from now (pipelined)
  const requestId = p.toString('latin1', 16, 52);
  sink.startInvocation();
  const first = runtime.served++ === 0;
  const inv = { t0: process.hrtime.bigint(), initMs: first ? 0 : -1, done: false, pending: null, sent: false };
  current = inv;
  if (first && runtime.importTimes.length)
    sink.emit(LV_DEBUG, '[sluice] cold start: imported ' +
      runtime.importTimes.map(([f, ms]) => `${f} in ${ms.toFixed(1)} ms`).join(', '));
  const step = runtime.steps.get(stepIndex);
  if (!step) return fail(inv, new Fault('Runtime.UnknownStep', `this worker has no step ${stepIndex}`));
  if (step.fault) { // perhaps fixed since: try once more (a module that failed to load)
    const ms = await loadStep(step, true);
    if (!step.fault) {
      inv.initMs = Math.max(inv.initMs, 0) + ms;
      sink.emit(LV_DEBUG, `[sluice] imported ${step.path} in ${ms.toFixed(1)} ms`);
    }
  }
  if (step.fault) return fail(inv, step.fault);
  inv.t0 = process.hrtime.bigint();
  let event;
  try {
    event = JSON.parse(p.toString('utf8', 53));
  } catch (e) {
    return fail(inv, new Fault('Runtime.UnmarshalError', `Unable to parse the event: ${e.message}`));
  }
  const ctx = makeContext(step, requestId, attempt, deadlineNs, inv);
  inv.ctx = ctx;
  useStepEnv(step);
  const callback = (err, value) => complete(inv, err !== undefined && err !== null, err, value, true);
  const handler = step.fn;
  let ret;
  try {
    ret = handler(event, ctx, callback);
  } catch (e) {
    return complete(inv, true, e, undefined, false);
  }
  if (ret !== null && ret !== undefined && typeof ret.then === 'function') {
    ret.then((v) => complete(inv, false, null, v, false),
      (e) => complete(inv, true, e === undefined || e === null ? new Error(`the handler's promise was rejected with ${e}`) : e, undefined, false));
  } else if (handler.length < 3) {
    complete(inv, false, null, ret, false); // a plain function: its value is the answer
  } // else: callback style, the callback answers
  return undefined;
}

/* The handler finished (first answer wins). A callback answer waits for the event loop
 * to empty, as on Lambda, unless callbackWaitsForEmptyEventLoop is false. */
function complete(inv, failed, err, value, viaCallback) {
  if (inv !== current || inv.done) return;
  inv.done = true;
  const answer = { failed, err, value };
  if (viaCallback && inv.ctx && inv.ctx.callbackWaitsForEmptyEventLoop) {
    inv.pending = answer;
    return; // beforeExit sends it
  }
  deliver(inv, answer);
}

function deliver(inv, answer) {
  if (answer.failed) {
    const d = describeError(answer.err);
    if (!(answer.err instanceof Fault)) {
      const stack = d.trace.length ? d.trace.join('\n') : `${d.type}: ${d.message}`;
      sink.emit(LV_ERROR, `[ERROR] ${stack}`);
    }
    return sendResult(inv, ST_ERROR, 500, null, d.type, d.message, d.trace);
  }
  let body;
  try {
    body = JSON.stringify(answer.value === undefined ? null : answer.value);
    if (body === undefined) body = 'null'; // a function or a symbol
  } catch (e) {
    return fail(inv, new Fault('Runtime.MarshalError', `Unable to stringify response body: ${e.message}`));
  }
  if (body.includes('\\ud') && /(?:^|[^\\])(?:\\\\)*\\ud[89a-f][0-9a-f]{2}/.test(body))
    return fail(inv, new Fault('Runtime.MarshalError', 'Unable to stringify response body: a ' +
      'string holds a lone UTF-16 surrogate, which is not valid Unicode'));
  const buf = Buffer.from(body, 'utf8');
  if (buf.length > BODY_MAX)
    return fail(inv, new Fault('Function.ResponseSizeTooLarge', `the response is ` +
      `${(buf.length / 1e6).toFixed(1)} MB; the largest a worker returns is 64 MiB ` +
      `(${BODY_MAX} bytes)`));
  let code = 200;
  const v = answer.value;
  if (v !== null && typeof v === 'object' && Number.isInteger(v.statusCode) &&
      v.statusCode >= -2147483648 && v.statusCode <= 2147483647)
    code = v.statusCode;
  // a returned value is a success, as on Lambda; whether a statusCode of 500 and above
  // fails the step is the daemon's rule (by trigger, docs/reliability.md)
  return sendResult(inv, ST_OK, code, buf, null, null, null);
}

function fail(inv, fault) {
  inv.done = true;
  return deliver(inv, { failed: true, err: fault });
}

function putString(parts, s) {
  const len = Buffer.allocUnsafe(4);
  if (s === null || s === undefined) {
    len.writeUInt32LE(NULL_STR, 0);
    parts.push(len);
    return;
  }
  const b = Buffer.isBuffer(s) ? s : utf8Cut(Buffer.from(String(s), 'utf8'), 64 * 1024);
  len.writeUInt32LE(b.length, 0);
  parts.push(len, b);
}

function boundedTrace(trace) {
  let t = trace.map(String);
  if (t.length > 100) t = [...t.slice(0, 50), `    ... ${t.length - 100} more lines ...`, ...t.slice(-50)];
  return t.map((l) => (l.length > 2000 ? l.slice(0, 2000) + '...' : l));
}

function sendResult(inv, status, code, body, errorType, error, trace) {
  if (inv.sent) return;
  inv.sent = true;
  finishOutput();
  const head = Buffer.allocUnsafe(32);
  head.writeUInt32LE(status, 0);
  head.writeInt32LE(code, 4);
  head.writeDoubleLE(inv.initMs, 8);
  head.writeDoubleLE(Math.max(0, Number(process.hrtime.bigint() - inv.t0) / 1e6), 16);
  let rss = -1;
  try {
    rss = process.resourceUsage().maxRSS;
  } catch (_) { /* unknown */ }
  head.writeBigInt64LE(BigInt(rss), 24);
  const parts = [head];
  putString(parts, body);
  putString(parts, errorType);
  putString(parts, error);
  putString(parts, trace ? JSON.stringify(boundedTrace(trace)) : null);
  sendFrame(T_RESULT, parts);
  if (current === inv) current = null;
  setImmediate(next);
}

// The event loop emptied: send a callback's answer that waited for it; end an invocation
// whose handler never answered (Lambda answers null); or give up on a load that hangs.
process.on('beforeExit', () => {
  if (initAbort) { // an import waits for nothing: it fails, and the loop goes on
    initAbort();
    return;
  }
  const inv = current;
  if (!inv) {
    if (phase === 'serve') setImmediate(next);
    return;
  }
  if (inv.pending) {
    const answer = inv.pending;
    inv.pending = null;
    deliver(inv, answer);
  } else if (!inv.done) {
    sink.emit(LV_WARN, '[sluice] the handler finished without answering (no callback call, ' +
      'no settled promise) and nothing is left to run: the answer is null');
    complete(inv, false, null, null, false);
  }
});

process.on('uncaughtException', (e) => {
  const inv = current;
  if (inv && !inv.sent) {
    inv.done = true;
    inv.pending = null;
    deliver(inv, { failed: true, err: e });
  } else {
    sink.emit(LV_ERROR, `[ERROR] Uncaught exception while no invocation ran: ${stackLines(e).join('\n')}`);
  }
});

process.on('unhandledRejection', (reason) => {
  const d = describeError(reason);
  const inv = current;
  if (inv && !inv.sent) {
    inv.done = true;
    inv.pending = null;
    const fault = new Fault('Runtime.UnhandledPromiseRejection', `${d.type}: ${d.message}`, d.trace);
    sink.emit(LV_ERROR, `[ERROR] Unhandled promise rejection: ${d.trace.join('\n') || d.message}`);
    deliver(inv, { failed: true, err: fault });
  } else {
    sink.emit(LV_ERROR, `[ERROR] Unhandled promise rejection while no invocation ran: ${d.trace.join('\n') || d.message}`);
  }
});

// -- main ----------------------------------------------------------------------------

async function main() {
  try {
    fs.fstatSync(WORKER_FD);
  } catch (_) {
    process.stderr.write(`sluice nodejs worker: no socket on fd ${WORKER_FD} (this program is ` +
      'started by `sluice run`, not by hand)\n');
    process.exit(2);
  }
  // The daemon decides when a worker ends (EOF on fd 3, or SIGKILL at a deadline); a
  // Ctrl-C meant for the daemon must not kill the invocation in flight.
  process.on('SIGINT', () => {});
  const f = readFrame();
  if (!f || f.type !== T_INIT) fatal(`expected an init frame on fd ${WORKER_FD}`);
  let init;
  try {
    init = JSON.parse(f.payload.toString('utf8'));
    if (!init || !Array.isArray(init.steps)) throw new Error('no steps');
    runtime.pipeline = String(init.pipeline || '');
    let mb = Number(init.memory_mb) || 0;
    if (mb <= 0) mb = Math.floor(os.totalmem() / (1024 * 1024)); // no limit: the machine's memory
    runtime.memoryLimitInMB = String(mb);
    for (const spec of init.steps) {
      const s = new Step(spec);
      runtime.steps.set(s.index, s);
    }
  } catch (e) {
    sendReady(false, `a malformed init frame: ${e.message}`);
    process.exit(0);
  }
  const now = new Date();
  const pad = (n) => String(n).padStart(2, '0');
  runtime.logStreamName = process.env.AWS_LAMBDA_LOG_STREAM_NAME || `${now.getUTCFullYear()}/${pad(now.getUTCMonth() + 1)}/` +
    `${pad(now.getUTCDate())}/[$LATEST]${process.pid.toString(16).padStart(8, '0')}` +
    require('crypto').randomBytes(12).toString('hex');

  captureOutput();
  // Lambda's NODE_PATH order: the layers' node_modules (set by the daemon), then the
  // task root, so require('lib/x') finds CODE/lib/x. node_modules beside the handler
  // comes first anyway: Node looks there before NODE_PATH.
  const sorted = [...runtime.steps.values()].sort((a, b) => a.index - b.index);
  const dirs = [...new Set(sorted.map((s) => s.code))];
  process.env.NODE_PATH = [...(process.env.NODE_PATH ? process.env.NODE_PATH.split(path.delimiter) : []), ...dirs]
    .join(path.delimiter);
  baseEnv.NODE_PATH = process.env.NODE_PATH;
  if (typeof Module._initPaths === 'function') Module._initPaths();

  for (const s of sorted) await loadStep(s, false);
  initAbort = null;
  phase = 'serve';
  sendReady(true, '');
  setImmediate(next);
}

main().catch((e) => fatal(`internal error: ${e && e.stack}`));
