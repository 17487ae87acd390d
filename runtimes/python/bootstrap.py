"""sluice's Python runtime: runs Lambda-style Python handlers in a worker process.

The daemon starts `python3 -u bootstrap.py PIPELINE` with its end of a socketpair on
fd 3 and speaks the framed worker protocol (core/wire.h) over it:

  daemon -> worker  INIT    JSON: pipeline, runtime, memory_mb, steps [{index, name,
                            handler, module, function, path, code, config, timeout_ms}]
  worker -> daemon  READY   i32 ok, error text + NUL
  daemon -> worker  INVOKE  u32 step, u32 attempt, i64 deadline_ns (CLOCK_MONOTONIC; < 0: -timeout),
                            request id (36 chars + NUL), event JSON
  worker -> daemon  LOG     i32 level, message (any number, before the RESULT)
  worker -> daemon  RESULT  u32 status, i32 status_code, f64 init_ms, f64 duration_ms,
                            i64 max_rss_kb, then body, error_type, error, stack, each a
                            u32 length (0xffffffff: null) and UTF-8 bytes

A frame is a little-endian header (u32 payload length, u32 type) and the payload.

Every step's module is imported on INIT (Lambda's init phase), before READY. A module
that fails to import does not stop the worker: its steps answer each invocation with
Lambda's error (Runtime.UserCodeSyntaxError, Runtime.ImportModuleError,
Runtime.HandlerNotFound, ...) after trying the import once more, so a fixed file is picked
up without a restart. print(), sys.stdout/sys.stderr, the logging module and anything
written to file descriptor 1 (child processes included) become LOG frames, bounded per
invocation. Only the standard library is used. See docs/runtimes.md.
"""

import datetime
import decimal
import importlib
import importlib.util
import io
import json
import logging
import os
import resource
import select
import signal
import struct
import sys
import threading
import time
import traceback

WORKER_FD = 3
T_INIT, T_READY, T_INVOKE, T_LOG, T_RESULT = 1, 2, 3, 4, 5
MAX_FRAME = 64 << 20
LOG_LINE_MAX = 16384                 # bytes of one LOG message (the daemon's limit)
LOG_MAX_LINES = 10000                # per invocation; then one "truncated" line
LOG_MAX_BYTES = 10 << 20
BODY_MAX = MAX_FRAME - (256 << 10)   # room for the error strings of a result frame
ST_OK, ST_ERROR = 0, 1
NULL_STR = 0xFFFFFFFF
LV_DEBUG, LV_INFO, LV_WARN, LV_ERROR = 10, 20, 30, 40

BOOTSTRAP_FILE = os.path.abspath(__file__)
MAIN_PID = os.getpid()


# -- the socket -------------------------------------------------------------------------

class Channel:
    """Frames on fd 3. Writes are serialised by a lock (handler threads log too); a
    forked child never writes here (its output goes through fd 1 instead)."""

    def __init__(self, fd):
        self.fd = fd
        self.lock = threading.Lock()

    def read_exact(self, n):
        chunks = []
        while n > 0:
            try:
                b = os.read(self.fd, min(n, 1 << 20))
            except InterruptedError:
                continue
            if not b:
                return None
            chunks.append(b)
            n -= len(b)
        return b"".join(chunks)

    def read(self):
        """(type, payload), or None at EOF. A malformed header ends the worker."""
        head = self.read_exact(8)
        if head is None:
            return None
        length, ftype = struct.unpack("<II", head)
        if length > MAX_FRAME or not T_INIT <= ftype <= T_RESULT:
            fatal("protocol error: a frame of %d bytes, type %d" % (length, ftype))
        payload = self.read_exact(length) if length else b""
        if payload is None:
            return None
        return ftype, payload

    def send(self, ftype, payload):
        if os.getpid() != MAIN_PID:
            return
        if len(payload) > MAX_FRAME:
            raise ValueError("frame of %d bytes over the limit" % len(payload))
        data = memoryview(struct.pack("<II", len(payload), ftype) + payload)
        with self.lock:
            while data:
                try:
                    n = os.write(self.fd, data)
                except InterruptedError:
                    continue
                except BrokenPipeError:
                    os._exit(0)  # the daemon is gone: nothing left to do
                data = data[n:]


def fatal(msg):
    try:
        os.write(2, ("sluice python3 worker: %s\n" % msg).encode("utf-8", "replace"))
    finally:
        os._exit(2)


def utf8_cut(data, limit):
    """data (bytes) cut to at most limit bytes on a character boundary."""
    if len(data) <= limit:
        return data
    cut = limit
    while cut > 0 and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return data[:cut]


# -- log lines --------------------------------------------------------------------------

class LogSink:
    """Turns lines into LOG frames. Before READY the daemon reads no LOG frames, so lines
    written during init wait here and go out at the first invocation. Each invocation may
    send LOG_MAX_LINES lines or LOG_MAX_BYTES bytes; past that one line says so and the
    rest is dropped, so a flood costs the daemon nothing."""

    def __init__(self, chan):
        self.chan = chan
        self.lock = threading.Lock()
        self.held = []               # lines written during init
        self.holding = True
        self.lines = 0
        self.bytes = 0
        self.cut = False

    def start_invocation(self):
        with self.lock:
            self.lines = self.bytes = 0
            self.cut = False
            held, self.held, self.holding = self.held, [], False
        for level, data in held:
            self._send(level, data)

    def emit(self, level, text):
        if os.getpid() != MAIN_PID:
            forked_child_write(text)
            return
        data = text.encode("utf-8", "replace") if isinstance(text, str) else bytes(text)
        if len(data) > LOG_LINE_MAX:
            tag = (" ...[line cut at %d bytes of %d]" % (LOG_LINE_MAX, len(data))).encode()
            data = utf8_cut(data, LOG_LINE_MAX - len(tag)) + tag
        with self.lock:
            if self.cut:
                return
            if self.lines >= LOG_MAX_LINES or self.bytes + len(data) > LOG_MAX_BYTES:
                self.cut = True
                level = LV_WARN
                data = ("[sluice] log output truncated: more than %d lines or %d MiB in one "
                        "invocation; the rest of its lines were dropped"
                        % (LOG_MAX_LINES, LOG_MAX_BYTES >> 20)).encode()
            self.lines += 1
            self.bytes += len(data)
            if self.holding:
                self.held.append((level, data))
                return
        self._send(level, data)

    def emit_pieces(self, level, data, keep_tail=False):
        """A line of stream output (bytes) longer than LOG_LINE_MAX goes out in pieces, so
        none of it is lost. keep_tail: return the last, short piece instead of sending it."""
        while len(data) > LOG_LINE_MAX or (keep_tail and len(data) == LOG_LINE_MAX):
            piece = utf8_cut(data, LOG_LINE_MAX) or data[:LOG_LINE_MAX]
            self.emit(level, piece.decode("utf-8", "replace"))
            data = data[len(piece):]
        if keep_tail:
            return data
        self.emit(level, data.decode("utf-8", "replace"))
        return b""

    def _send(self, level, data):
        self.chan.send(T_LOG, struct.pack("<i", int(level)) + data)


def forked_child_write(text):
    """A forked child (multiprocessing, os.fork) must not write frames on fd 3: its lines
    go to fd 1, the pipe the worker reads and forwards."""
    data = text.encode("utf-8", "replace") if isinstance(text, str) else bytes(text)
    try:
        os.write(1, data + b"\n")
    except OSError:
        pass


class LineWriter(io.TextIOBase):
    """sys.stdout / sys.stderr: whole lines become log lines at a level."""

    def __init__(self, sink, level, fileno, name):
        super().__init__()
        self.sink = sink
        self.level = level
        self._fileno = fileno
        self._name = name
        self._buf = []
        self._len = 0
        self._lock = threading.RLock()
        self.buffer = _BinaryWriter(self)

    @property
    def name(self):
        return self._name

    @property
    def encoding(self):
        return "utf-8"

    @property
    def errors(self):
        return "replace"

    def writable(self):
        return True

    def isatty(self):
        return False

    def fileno(self):
        return self._fileno

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("write() argument must be str, not %s" % type(s).__name__)
        with self._lock:
            start = 0
            while True:
                nl = s.find("\n", start)
                if nl < 0:
                    break
                self._buf.append(s[start:nl])
                self._emit_buffered()
                start = nl + 1
            rest = s[start:]
            if rest:
                self._buf.append(rest)
                self._len += len(rest)
                if self._len >= LOG_LINE_MAX:  # a long line so far: its full pieces now
                    data = "".join(self._buf).encode("utf-8", "replace")
                    rest = self.sink.emit_pieces(self.level, data, True).decode("utf-8",
                                                                                "replace")
                    self._buf = [rest] if rest else []
                    self._len = len(rest)
        return len(s)

    def _emit_buffered(self):
        line = "".join(self._buf)
        self._buf = []
        self._len = 0
        if len(line) * 3 <= LOG_LINE_MAX:
            self.sink.emit(self.level, line)
        else:
            self.sink.emit_pieces(self.level, line.encode("utf-8", "replace"))

    def flush(self):
        pass  # a line goes out when it ends (or when the invocation does)

    def end_invocation(self):
        with self._lock:
            if self._buf:
                self._emit_buffered()


class _BinaryWriter:
    """sys.stdout.buffer: bytes are decoded and written as text."""

    def __init__(self, text):
        self._text = text

    def write(self, b):
        self._text.write(bytes(b).decode("utf-8", "replace"))
        return len(b)

    def flush(self):
        pass

    def writable(self):
        return True

    def fileno(self):
        return self._text.fileno()


class Fd1Pipe:
    """File descriptor 1 is a pipe that this thread reads, so output that bypasses
    sys.stdout (child processes, C extensions, os.write(1, ...)) becomes log lines
    rather than unframed bytes on the daemon's stdout."""

    def __init__(self, sink):
        self.sink = sink
        self.lock = threading.Lock()
        self.partial = b""
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_inheritable(r, False)
        os.dup2(w, 1)
        os.close(w)
        self.r = r
        t = threading.Thread(target=self._run, name="sluice-fd1", daemon=True)
        t.start()

    def _run(self):
        while True:
            try:
                select.select([self.r], [], [], 0.5)
            except (InterruptedError, ValueError, OSError):
                time.sleep(0.05)
            self.drain(False)

    def drain(self, final):
        """Forward whatever is in the pipe now; final: also the unended last line."""
        with self.lock:
            while True:
                try:
                    b = os.read(self.r, 65536)
                except BlockingIOError:
                    break
                except InterruptedError:
                    continue
                except OSError:
                    break
                if not b:
                    break
                self.partial += b
                *lines, self.partial = self.partial.split(b"\n")
                for line in lines:
                    self.sink.emit_pieces(LV_INFO, line)
                if len(self.partial) >= LOG_LINE_MAX:
                    self.partial = self.sink.emit_pieces(LV_INFO, self.partial, True)
            if final and self.partial:
                self.sink.emit_pieces(LV_INFO, self.partial)
                self.partial = b""


class SluiceLogHandler(logging.Handler):
    """The root logger's handler: one record, one log line, at the record's level."""

    def __init__(self, sink):
        super().__init__()
        self.sink = sink
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record):
        try:
            msg = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.sink.emit(max(LV_DEBUG, min(record.levelno, 50)), msg)


def install_logging(sink):
    handler = SluiceLogHandler(sink)
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    # As on Lambda the root logger has a handler (so logging.info() needs
    # logger.setLevel(logging.INFO)); but logging.basicConfig(level=..., format=...),
    # which would do nothing with a handler in place, sets that level and format.
    original = logging.basicConfig

    def basic_config(**kwargs):
        if kwargs.get("force") or kwargs.get("handlers") or kwargs.get("filename") or \
                kwargs.get("stream") or root.handlers != [handler]:
            return original(**kwargs)
        if "level" in kwargs:
            root.setLevel(kwargs["level"])
        if "format" in kwargs or "datefmt" in kwargs:
            handler.setFormatter(logging.Formatter(kwargs.get("format", "%(message)s"),
                                                   kwargs.get("datefmt"),
                                                   kwargs.get("style", "%")))
    logging.basicConfig = basic_config
    return handler


# -- the context ------------------------------------------------------------------------

class LambdaContext:
    """What Lambda hands a Python handler as `context`, plus sluice's own fields."""

    def __init__(self, rt, step, request_id, attempt, deadline_ns):
        self.aws_request_id = request_id
        self.function_name = step.handler
        self.function_version = "$LATEST"
        self.invoked_function_arn = "arn:sluice:lambda:%s:000000000000:function:%s-%s" % (
            os.environ.get("AWS_REGION", "local"), rt.pipeline, step.name)
        self.memory_limit_in_mb = rt.memory_limit_in_mb
        self.log_group_name = "/sluice/%s" % rt.pipeline
        self.log_stream_name = rt.log_stream_name
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        # sluice's own
        self.pipeline = rt.pipeline
        self.step = step.name
        self.config = step.config_value()
        self.attempt = attempt
        self.deadline_ns = deadline_ns
        self._sink = rt.sink

    def get_remaining_time_in_millis(self):
        return max(0, (self.deadline_ns - time.monotonic_ns()) // 1000000)

    def log(self, msg):
        self._sink.emit(LV_INFO, str(msg).rstrip("\n"))

    def __repr__(self):
        return ("LambdaContext([aws_request_id=%s,function_name=%s,function_version=%s,"
                "invoked_function_arn=%s,memory_limit_in_mb=%s,log_group_name=%s,"
                "log_stream_name=%s,pipeline=%s,step=%s,attempt=%d])"
                % (self.aws_request_id, self.function_name, self.function_version,
                   self.invoked_function_arn, self.memory_limit_in_mb, self.log_group_name,
                   self.log_stream_name, self.pipeline, self.step, self.attempt))


# -- handlers ---------------------------------------------------------------------------

class HandlerFault(Exception):
    """A failure of the runtime, not of the handler: Lambda's Runtime.* errors."""

    def __init__(self, error_type, message, trace=None):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []


def user_frames(tb):
    """Traceback entries outside this file and the import machinery."""
    return [f for f in traceback.extract_tb(tb)
            if f.filename != BOOTSTRAP_FILE and not f.filename.startswith("<frozen ")]


def format_trace(tb):
    """Lambda's stackTrace: one '  File "...", line N, in fn\n    code\n' per frame
    (repeats folded, at most 100 entries)."""
    lines = traceback.StackSummary.from_list(user_frames(tb)).format()
    if len(lines) > 100:
        lines = lines[:50] + ["  ... %d more frames ...\n" % (len(lines) - 100)] + lines[-50:]
    return lines


def where(tb, fallback):
    frames = user_frames(tb)
    if frames:
        return "%s, line %s" % (frames[-1].filename, frames[-1].lineno)
    return fallback


class Step:
    def __init__(self, spec):
        self.index = int(spec["index"])
        self.name = spec["name"]
        self.handler = spec["handler"]
        self.module = spec["module"]
        self.function = spec["function"]
        self.path = os.path.abspath(spec["path"])
        self.code = os.path.abspath(spec.get("code") or os.path.dirname(self.path))
        self.config_json = spec.get("config") or "{}"
        env = spec.get("environment")
        self.env = {str(k): str(v) for k, v in env.items()} if isinstance(env, dict) else {}
        self.timeout_ms = spec.get("timeout_ms")
        self.fn = None
        self.fault = None            # HandlerFault while the module cannot be used

    def config_value(self):
        try:
            return json.loads(self.config_json)
        except ValueError:
            return {}


class Runtime:
    def __init__(self, chan, sink, init):
        self.chan = chan
        self.sink = sink
        self.pipeline = init.get("pipeline", "")
        memory_mb = int(init.get("memory_mb") or 0)
        if memory_mb <= 0:  # the daemon always says; Lambda's default otherwise
            memory_mb = 128
        self.memory_limit_in_mb = str(memory_mb)
        now = datetime.datetime.now(datetime.timezone.utc)
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME") or \
            "%s/[$LATEST]%08x%s" % (now.strftime("%Y/%m/%d"), os.getpid(), os.urandom(12).hex())
        self.base_env = dict(os.environ)
        self.env_step = None
        self.steps = {}
        for spec in init.get("steps") or []:
            s = Step(spec)
            self.steps[s.index] = s
        self.modules = {}            # path -> module object, shared by steps
        self.import_times = []       # (path, ms) of the imports at init
        self.served = 0
        self.writers = []
        self.fd1 = None

    def use_step_env(self, step):
        """A worker serves every Python step of its pipeline; each step sees its own
        function name, handler, task root and "environment" (the daemon starts the
        worker with the first step's, core/worker_env.c)."""
        if self.env_step is step:
            return
        if self.env_step is not None:
            for k in self.env_step.env:
                if k in self.base_env:
                    os.environ[k] = self.base_env[k]
                else:
                    os.environ.pop(k, None)
        os.environ.update(step.env)
        if "LAMBDA_TASK_ROOT" not in step.env:
            os.environ["LAMBDA_TASK_ROOT"] = step.code
        self.env_step = step

    # -- init ---------------------------------------------------------------------------
    def load_all(self):
        for s in sorted(self.steps.values(), key=lambda s: -s.index):
            if s.code in sys.path:
                sys.path.remove(s.code)
            sys.path.insert(0, s.code)  # the first step's folder first
        for s in sorted(self.steps.values(), key=lambda s: s.index):
            self.load(s)

    def load(self, step):
        """Import step's module and find its function; on failure step.fault says why.
        Returns the milliseconds spent."""
        t0 = time.monotonic_ns()
        self.use_step_env(step)
        try:
            module = self.modules.get(step.path)
            if module is None:
                module = self.import_file(step)
                self.modules[step.path] = module
                self.import_times.append((step.path, (time.monotonic_ns() - t0) / 1e6))
            fn = getattr(module, step.function, None)
            if fn is None:
                raise HandlerFault("Runtime.HandlerNotFound", "Handler '%s' missing on module "
                                   "'%s' (%s)" % (step.function, step.module, step.path))
            if not callable(fn):
                raise HandlerFault("Runtime.HandlerNotFound", "Handler '%s' on module '%s' is "
                                   "a %s, not a function" % (step.function, step.module,
                                                             type(fn).__name__))
            step.fn, step.fault = fn, None
        except HandlerFault as f:
            step.fn, step.fault = None, f
        return (time.monotonic_ns() - t0) / 1e6

    def import_file(self, step):
        modname = step.module.replace("/", ".")
        importlib.invalidate_caches()
        try:
            spec = importlib.util.spec_from_file_location(modname, step.path)
            if spec is None or spec.loader is None:
                raise HandlerFault("Runtime.ImportModuleError", "Unable to import module '%s': "
                                   "%s is not a Python source file" % (modname, step.path))
            module = importlib.util.module_from_spec(spec)
            # Registered so the module can import itself and pickle its objects, unless
            # the name is taken (a standard module such as "json": that one stays).
            mine = modname not in sys.modules
            if mine:
                sys.modules[modname] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                if mine:
                    sys.modules.pop(modname, None)
                raise
            return module
        except HandlerFault:
            raise
        except SyntaxError as e:
            text = (e.text or "").rstrip("\n")
            trace = ['  File "%s" Line %s\n    %s\n' % (e.filename, e.lineno, text.strip())]
            raise HandlerFault("Runtime.UserCodeSyntaxError",
                               "Syntax error in module '%s': %s (%s, line %s)"
                               % (modname, e.msg, e.filename, e.lineno), trace)
        except ImportError as e:
            raise HandlerFault("Runtime.ImportModuleError", "Unable to import module '%s': %s "
                               "(%s)" % (modname, e, where(e.__traceback__, step.path)),
                               format_trace(e.__traceback__))
        except BaseException as e:  # anything else the module's top level raised
            raise HandlerFault(type(e).__name__, "Unable to initialise module '%s' (%s): "
                               "%s: %s" % (modname, where(e.__traceback__, step.path),
                                           type(e).__name__, e),
                               format_trace(e.__traceback__))

    # -- invocations --------------------------------------------------------------------
    def invoke(self, payload):
        if len(payload) < 53 or payload[52] != 0:
            fatal("protocol error: a malformed invoke frame")
        step_index, attempt, deadline_ns = struct.unpack_from("<IIq", payload, 0)
        if deadline_ns < 0:  # a timeout from now: sent while the previous one still ran
            deadline_ns = time.monotonic_ns() - deadline_ns
        request_id = payload[16:52].decode("ascii", "replace")
        event_bytes = payload[53:]
        self.sink.start_invocation()
        first = self.served == 0
        self.served += 1
        init_ms = 0.0 if first else -1.0  # the daemon adds its spawn-to-ready time
        step = self.steps.get(step_index)
        t0 = time.monotonic_ns()
        if step is None:
            return self.fail(HandlerFault("Runtime.UnknownStep", "this worker has no step %d"
                                          % step_index), init_ms, t0)
        if first:
            imported = ["%s in %.1f ms" % (path, ms) for path, ms in self.import_times]
            if imported:
                self.sink.emit(LV_DEBUG, "[sluice] cold start: imported " + ", ".join(imported))
        if step.fault is not None:  # perhaps fixed since: try once more
            ms = self.load(step)
            if step.fault is None:
                init_ms = max(init_ms, 0.0) + ms
                self.sink.emit(LV_DEBUG, "[sluice] imported %s in %.1f ms" % (step.path, ms))
        if step.fault is not None:
            return self.fail(step.fault, init_ms, time.monotonic_ns())
        t0 = time.monotonic_ns()
        try:
            event = json.loads(event_bytes) if event_bytes else None
        except ValueError as e:
            return self.fail(HandlerFault("Runtime.UnmarshalError", "Unable to unmarshal "
                                          "input: %s" % e), init_ms, t0)
        context = LambdaContext(self, step, request_id, attempt, deadline_ns)
        self.use_step_env(step)
        try:
            value = step.fn(event, context)
            if hasattr(value, "__await__") and hasattr(value, "send"):  # async def handler
                import asyncio
                value = asyncio.run(value)
        except BaseException as e:  # SystemExit too: the worker stays up
            return self.fail_exception(e, init_ms, t0)
        return self.succeed(value, init_ms, t0)

    def finish_output(self):
        if self.fd1 is not None:
            self.fd1.drain(True)
        for w in self.writers:
            w.end_invocation()

    def succeed(self, value, init_ms, t0):
        try:
            body = json.dumps(value, ensure_ascii=False, allow_nan=False,
                              default=marshal_default).encode("utf-8")
        except (TypeError, ValueError, OverflowError, UnicodeEncodeError, RecursionError) as e:
            return self.fail(HandlerFault("Runtime.MarshalError", "Unable to marshal response: "
                                          "%s" % e), init_ms, t0)
        if len(body) > BODY_MAX:
            return self.fail(HandlerFault("Function.ResponseSizeTooLarge", "the response is "
                                          "%.1f MB; the largest a worker returns is 64 MiB "
                                          "(%d bytes)" % (len(body) / 1e6, BODY_MAX)),
                             init_ms, t0)
        code = 200
        if isinstance(value, dict):
            sc = value.get("statusCode")
            if isinstance(sc, int) and not isinstance(sc, bool) and -2**31 <= sc < 2**31:
                code = sc
        # a returned value is a success, as on Lambda; whether a statusCode of 500 and
        # above fails the step is the daemon's rule (by trigger, docs/reliability.md)
        self.finish_output()
        return self.send_result(ST_OK, code, init_ms, t0, body, None, None, None)

    def fail_exception(self, e, init_ms, t0):
        tb = e.__traceback__
        trace = format_trace(tb)
        try:
            te = traceback.TracebackException(type(e), e, tb)
            te.stack = traceback.StackSummary.from_list(
                [f for f in te.stack if f.filename != BOOTSTRAP_FILE])
            text = "".join(te.format()).rstrip("\n")
        except Exception:
            text = "%s: %s" % (type(e).__name__, e)
        self.sink.emit(LV_ERROR, "[ERROR] " + text)
        try:
            message = str(e)
        except Exception:
            message = "<unprintable %s>" % type(e).__name__
        return self.fail(HandlerFault(type(e).__name__, message, trace), init_ms, t0)

    def fail(self, fault, init_ms, t0):
        self.finish_output()
        return self.send_result(ST_ERROR, 500, init_ms, t0, None, fault.error_type,
                                fault.message, json.dumps(list(fault.trace)))

    def send_result(self, status, code, init_ms, t0, body, error_type, error, stack):
        duration = (time.monotonic_ns() - t0) / 1e6
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        parts = [struct.pack("<Iiddq", status, code, init_ms, duration, rss)]
        for s in (body, error_type, error, stack):
            if s is None:
                parts.append(struct.pack("<I", NULL_STR))
            else:
                b = s if isinstance(s, bytes) else s.encode("utf-8", "replace")
                if s is not body:
                    b = utf8_cut(b, 64 << 10)
                parts.append(struct.pack("<I", len(b)))
                parts.append(b)
        self.chan.send(T_RESULT, b"".join(parts))


def marshal_default(o):
    if isinstance(o, decimal.Decimal):
        return float(o)
    raise TypeError("Object of type %s is not JSON serializable" % type(o).__name__)


# -- main -------------------------------------------------------------------------------

def main():
    try:
        os.fstat(WORKER_FD)
    except OSError:
        sys.stderr.write("sluice python3 worker: no socket on fd %d (this program is started "
                         "by `sluice run`, not by hand)\n" % WORKER_FD)
        return 2
    # The daemon decides when a worker ends (EOF on fd 3, or SIGKILL at a deadline); a
    # Ctrl-C meant for the daemon must not kill the invocation in flight.
    # (A handler, not SIG_IGN: the handler's own child processes get the default back.)
    signal.signal(signal.SIGINT, lambda signo, frame: None)
    os.set_inheritable(WORKER_FD, False)
    # Nobody imports this file or its folder's neighbours.
    if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(BOOTSTRAP_FILE):
        sys.path.pop(0)

    chan = Channel(WORKER_FD)
    frame = chan.read()
    if frame is None or frame[0] != T_INIT:
        fatal("expected an init frame on fd %d" % WORKER_FD)
    try:
        init = json.loads(frame[1])
        if not isinstance(init, dict) or not isinstance(init.get("steps"), list):
            raise ValueError("no steps")
        sink = LogSink(chan)
        rt = Runtime(chan, sink, init)
    except (ValueError, KeyError, TypeError) as e:
        chan.send(T_READY, struct.pack("<i", 0) + ("a malformed init frame: %s" % e)
                  .encode("utf-8", "replace") + b"\0")
        return 0

    # Output: nothing of the handler's reaches the daemon's stdout unframed.
    sys.stdout.flush()
    try:
        rt.fd1 = Fd1Pipe(sink)
    except OSError:
        pass
    out = LineWriter(sink, LV_INFO, 1, "<stdout>")
    err = LineWriter(sink, LV_ERROR, 2, "<stderr>")
    rt.writers = [out, err]
    sys.stdout = sys.__stdout__ = out
    sys.stderr = sys.__stderr__ = err
    install_logging(sink)
    os.register_at_fork(after_in_child=lambda: _after_fork(rt))

    try:
        rt.load_all()
        chan.send(T_READY, struct.pack("<i", 1) + b"\0")
        while True:
            frame = chan.read()
            if frame is None:
                break
            if frame[0] != T_INVOKE:
                fatal("protocol error: frame type %d where an invoke was expected" % frame[0])
            rt.invoke(frame[1])
    except Exception:  # a bug of this file: say so where the operator looks
        fatal("internal error:\n" + traceback.format_exc())
    # EOF: the daemon is done with this worker. Leave at once: a thread the handler left
    # behind must not keep the process alive.
    rt.finish_output()
    os._exit(0)


def _after_fork(rt):
    """In a forked child (multiprocessing, os.fork): fd 3 is the parent's alone, and locks
    another thread held at the fork are fresh ones here."""
    try:
        os.close(WORKER_FD)
    except OSError:
        pass
    for w in rt.writers:
        w._lock = threading.RLock()
    rt.sink.lock = threading.Lock()


if __name__ == "__main__":
    sys.exit(main())
