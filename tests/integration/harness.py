"""harness.py - shared helpers for sluice's integration tests.

The tests start the real `sluice` binary as a process on a throw-away folder
(a Sandbox), drop files, and assert on the rows of its SQLite database.

Environment (set by ctest, see tests/CMakeLists.txt):
  SLUICE_BIN          the sluice binary
  SLUICE_PLUGIN_DIR   bundled plugins (echo.so, checksum.so)
  SLUICE_FIXTURE_DIR  fixture plugins (ok.so, fail.so, wrong_abi.so, ...)
  SLUICE_SOURCE_DIR   the repository root
  SLUICE_TEST_KEEP    set to 1 to keep every sandbox, passing or not
  SLUICE_TEST_DURABILITY  "process" or "power": every sandbox's sluice.json
                      sets it (ctest runs the kill -9 tests under both)

Rules every test follows:
  * no fixed sleeps: every wait polls a condition against a deadline
    (wait_for), and "nothing happens" is proven either with a sentinel event
    that must come after, or by polling for a bounded time (assert_stays);
  * each test has its own sandbox and its own daemon, so tests are
    independent and files can run in parallel;
  * every assertion failure message carries the daemons' stderr; a sandbox
    is removed when its test passes and kept (its path printed) otherwise.
"""

import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

POLL_S = 0.02
DEFAULT_TIMEOUT_S = 20.0
LOG_TAIL_CHARS = 12000

_SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                      "runtime error:", "ThreadSanitizer")


# Ports are drawn below the kernel's ephemeral range (32768 and up): a port
# the kernel hands out for bind(0) is soon handed to some test's outgoing
# connection too, and a daemon started a moment later then finds it taken
# ("Address already in use"). Ports drawn at random below that range are
# only ever taken by another test drawing the same one.
PORT_RANGE = (20000, 32000)
_ports_given = set()


def free_ports(n):
    """n distinct loopback ports nobody listens on right now, so tests run in
    parallel."""
    ports = []
    while len(ports) < n:
        port = random.randrange(*PORT_RANGE)
        if port in _ports_given:
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        _ports_given.add(port)
        ports.append(port)
    return ports


def free_port():
    """A loopback TCP port nobody listens on right now."""
    return free_ports(1)[0]


def endpoint():
    """A ZeroMQ endpoint on a free loopback port."""
    return "tcp://127.0.0.1:%d" % free_port()


def env_path(name):
    value = os.environ.get(name)
    if not value:
        raise unittest.SkipTest("%s is not set: run the integration tests through ctest" % name)
    return value


def sluice_bin():
    return env_path("SLUICE_BIN")


def sanitizer():
    """The sanitizer the sluice binary is built with: "asan", "tsan" or None.
    Both reserve terabytes of address space for shadow memory, so RLIMIT_AS
    cannot apply to their workers, and both inflate RSS."""
    with open(sluice_bin(), "rb") as f:
        data = f.read()
    return "asan" if b"__asan_init" in data else "tsan" if b"__tsan_init" in data else None


def plugin_dirs():
    return [env_path("SLUICE_PLUGIN_DIR"), env_path("SLUICE_FIXTURE_DIR")]


class WaitTimeout(AssertionError):
    pass


def wait_for(predicate, timeout=DEFAULT_TIMEOUT_S, what="the condition", interval=POLL_S,
             check=None):
    """Poll predicate() every `interval` seconds until it returns a truthy
    value, which is returned. Raise WaitTimeout naming `what` (a string, or a
    callable giving one, evaluated at the deadline) when time runs out.
    `check`, if given, is called on every round and may raise to stop early
    (e.g. because the daemon died)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        if check is not None:
            check()
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise WaitTimeout("timed out after %.1f s waiting for %s (last value: %r)"
                              % (timeout, what() if callable(what) else what, last))
        time.sleep(interval)


def stays(predicate, duration, interval=POLL_S, check=None):
    """Poll predicate() for `duration` seconds; return None if it held all
    along, else the first falsy value's description (the value itself)."""
    deadline = time.monotonic() + duration
    while True:
        if check is not None:
            check()
        value = predicate()
        if not value:
            return value if value is not None else False
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def tail(text, limit=LOG_TAIL_CHARS):
    if len(text) <= limit:
        return text
    return "[... %d characters cut ...]\n%s" % (len(text) - limit, text[-limit:])


class Sandbox:
    """A temporary folder holding sluice.json, pipelines/ and the daemon's
    state (var/). Paths in the config are relative to it, as users write
    them."""

    def __init__(self, config=None, prefix="sluice-it-"):
        self.root = os.path.realpath(tempfile.mkdtemp(prefix=prefix))
        self.config_path = os.path.join(self.root, "sluice.json")
        self.pipelines_dir = os.path.join(self.root, "pipelines")
        os.mkdir(self.pipelines_dir)
        # Processes run from an empty folder of their own, so a relative path
        # resolved against the working directory instead of the config's
        # folder shows up as files in the wrong place.
        self.cwd = os.path.join(self.root, "cwd")
        os.mkdir(self.cwd)
        self.config = {
            "state_dir": "var",
            "database": "var/sluice.db",
            "pipelines_dir": "pipelines",
            "plugin_path": plugin_dirs(),
            "workers": 2,
            # the daemon binds its ZeroMQ sockets at every start: endpoints of
            # its own, so sandboxes (and test files run in parallel) never
            # fight over the default TCP ports
            "zmq": {"pull": "ipc://%s/pull.sock" % self.root,
                    "router": "ipc://%s/router.sock" % self.root},
            # ... and so is the admin listener (/metrics, /status)
            "admin": {"listen": "127.0.0.1:%d" % free_port()},
        }
        if os.environ.get("SLUICE_TEST_DURABILITY"):
            self.config["durability"] = os.environ["SLUICE_TEST_DURABILITY"]
        if config:
            self.config.update(config)
        self.write_config()

    # -- files -------------------------------------------------------------
    def path(self, *parts):
        return os.path.join(self.root, *parts)

    @property
    def database(self):
        return self.path(self.config.get("database", "var/sluice.db"))

    def write_config(self):
        write_json(self.config_path, self.config)

    def pipeline_file(self, name):
        return os.path.join(self.pipelines_dir, name + ".json")

    def add_pipeline(self, pipeline, file_name=None):
        """Write a pipeline dict to pipelines/NAME.json; returns the path."""
        path = self.pipeline_file(file_name or pipeline["name"])
        write_json(path, pipeline)
        return path

    def add_pipeline_text(self, file_name, text):
        """Write raw text (e.g. invalid JSON) as pipelines/FILE_NAME."""
        path = os.path.join(self.pipelines_dir, file_name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def drop(self, rel, data="x\n", mode="w"):
        """Write a complete file (open, write, close) at rel; returns its
        absolute path. Parent folders are created."""
        path = self.path(rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, mode) as f:
            f.write(data)
        return path

    def remove(self):
        shutil.rmtree(self.root, ignore_errors=True)

    # -- database ----------------------------------------------------------
    def db_rows(self, sql, params=(), strict_utf8=False):
        """Rows of a query as dicts, on a fresh read-only connection (so
        each call sees what the daemon has committed by then). Returns []
        while the database does not exist yet."""
        if not os.path.exists(self.database):
            return []
        uri = "file:%s?mode=ro" % self.database
        con = sqlite3.connect(uri, uri=True, timeout=10)
        try:
            con.row_factory = sqlite3.Row
            if not strict_utf8:
                # a text value that is not valid UTF-8 (file names may hold
                # any bytes) must not make every later query fail
                con.text_factory = lambda b: b.decode("utf-8", "surrogateescape")
            return [dict(r) for r in con.execute(sql, params).fetchall()]
        finally:
            con.close()

    def db_value(self, sql, params=()):
        rows = self.db_rows(sql, params)
        if not rows:
            return None
        return next(iter(rows[0].values()))

    def count(self, table_and_where, params=()):
        return self.db_value("SELECT count(*) FROM " + table_and_where, params) or 0

    # -- CLI ---------------------------------------------------------------
    def cli(self, *args, timeout=60, with_config=True, cwd=None):
        """Run `sluice COMMAND -c sluice.json REST...` (the config right after
        the command, as the usage shows it); returns a CompletedProcess with
        text stdout/stderr."""
        args = list(args)
        argv = [sluice_bin()] + args[:1] + (["-c", self.config_path] if with_config else [])
        argv += args[1:]
        return subprocess.run(argv, cwd=cwd or self.cwd, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=timeout)


def write_json(path, value):
    tmp = path + ".writing"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=2)
    os.replace(tmp, path)


class Daemon:
    """`sluice run -c SANDBOX/sluice.json`, stderr captured to a file in the
    sandbox (one file per start, so restarts keep every log)."""

    _starts = 0

    def __init__(self, sandbox, label=None, argv=None, cwd=None):
        """argv: the arguments after the binary (default: run -c CONFIG);
        cwd: the working directory (default: the sandbox's empty cwd/)."""
        self.sandbox = sandbox
        self.argv = argv or ["run", "-c", sandbox.config_path]
        self.cwd = cwd or sandbox.cwd
        Daemon._starts += 1
        self.label = label or "daemon-%d" % Daemon._starts
        self.log_path = sandbox.path("%s.stderr" % self.label)
        self.proc = None
        self.returncode = None

    def start(self, wait_running=True, timeout=DEFAULT_TIMEOUT_S):
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([sluice_bin()] + self.argv,
                                     cwd=self.cwd, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log)
        if wait_running:
            wait_for(lambda: self.running_logged() or self.proc.poll() is not None,
                     timeout=timeout,
                     what=lambda: "the daemon to log that it is running\n" + self.describe())
            if self.proc.poll() is not None:
                raise AssertionError("the daemon exited with status %s while starting\n%s"
                                     % (self.proc.returncode, self.describe()))
        return self

    # -- state -------------------------------------------------------------
    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def running_logged(self):
        return re.search(r"sluice info: running \d+ pipelines?", self.log()) is not None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def pid(self):
        return self.proc.pid

    def describe(self):
        state = ("running (pid %d)" % self.proc.pid if self.alive() else
                 "exited with status %s" % (self.proc.returncode if self.proc else "-"))
        return "---- %s stderr (%s), %s ----\n%s---- end of %s stderr ----" % (
            self.label, self.log_path, state, tail(self.log()), self.label)

    def check_alive(self):
        """Raise if the daemon exited on its own."""
        if self.proc is not None and self.returncode is None and self.proc.poll() is not None:
            raise AssertionError("the daemon exited unexpectedly with status %s\n%s"
                                 % (self.proc.returncode, self.describe()))

    def sanitizer_report(self):
        text = self.log()
        return any(m in text for m in _SANITIZER_MARKERS)

    # -- control -----------------------------------------------------------
    def send_signal(self, signo):
        self.check_alive()
        os.kill(self.proc.pid, signo)

    def stop(self, timeout=DEFAULT_TIMEOUT_S, sig=signal.SIGTERM):
        """SIGTERM (or sig), wait for the exit and assert it is 0 and that
        no sanitizer complained; returns the log."""
        self.check_alive()
        os.kill(self.proc.pid, sig)
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.returncode = self.proc.wait()
            raise AssertionError("the daemon did not exit within %.0f s of %s\n%s"
                                 % (timeout, signal.Signals(sig).name, self.describe()))
        finally:
            self._log.close()
        if self.returncode != 0:
            raise AssertionError("the daemon exited with status %d after %s, expected 0\n%s"
                                 % (self.returncode, signal.Signals(sig).name, self.describe()))
        if self.sanitizer_report():
            raise AssertionError("a sanitizer reported a problem\n%s" % self.describe())
        return self.log()

    def kill9(self):
        self.check_alive()
        self.proc.kill()
        self.returncode = self.proc.wait()
        self._log.close()
        return self.log()

    def wait_exit(self, timeout=DEFAULT_TIMEOUT_S):
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("the daemon did not exit within %.0f s\n%s"
                                 % (timeout, self.describe()))
        finally:
            if self.proc.poll() is not None:
                self._log.close()
        return self.returncode

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc is not None and not self._log.closed:
            self._log.close()


class SluiceTestCase(unittest.TestCase):
    """Base class: sandboxes and daemons made through it are cleaned up, and
    the daemons' stderr is appended to every assertion failure message."""

    maxDiff = None

    def setUp(self):
        self._sandboxes = []
        self._daemons = []

    # -- factories ---------------------------------------------------------
    def sandbox(self, config=None):
        sb = Sandbox(config)
        self._sandboxes.append(sb)
        return sb

    def daemon(self, sandbox, start=True, **kw):
        d = Daemon(sandbox, label="%s-%d" % (self._testMethodName, len(self._daemons) + 1), **kw)
        self._daemons.append(d)
        self.addCleanup(d.cleanup)
        if start:
            try:
                d.start()
            except AssertionError as e:
                self.fail(str(e))
        return d

    # -- diagnostics -------------------------------------------------------
    def daemon_logs(self):
        parts = [d.describe() for d in self._daemons if d.proc is not None]
        return "\n".join(parts) if parts else "(no daemon was started)"

    def check_daemons(self):
        for d in self._daemons:
            if d.proc is not None and d.returncode is None and d.proc.poll() is not None:
                self.fail("the daemon %s exited unexpectedly with status %s"
                          % (d.label, d.proc.returncode))

    # -- waiting -----------------------------------------------------------
    def wait_for(self, predicate, timeout=DEFAULT_TIMEOUT_S, what="the condition"):
        """Poll until predicate() is truthy; fail (with the daemons' stderr)
        at the deadline or as soon as a daemon dies."""
        try:
            return wait_for(predicate, timeout=timeout, what=what, check=self.check_daemons)
        except WaitTimeout as e:
            self.fail(str(e))

    def assert_stays(self, predicate, duration, what):
        """Poll predicate() for `duration` seconds; fail if it ever is falsy."""
        if stays(predicate, duration, check=self.check_daemons) is not None:
            self.fail("%s stopped holding within %.2f s" % (what, duration))

    def stop(self, daemon, **kw):
        """Stop the daemon (asserting exit 0) and check that it wrote nothing
        into its working directory: every relative path in the config must
        resolve against the config's folder."""
        try:
            log = daemon.stop(**kw)
        except AssertionError as e:
            self.fail(str(e))
        if daemon.cwd == daemon.sandbox.cwd:
            self.assertEqual(os.listdir(daemon.cwd), [],
                             "the daemon created files in its working directory, not beside "
                             "its config")
        return log

    # -- common waits on the journal ---------------------------------------
    def wait_events(self, sb, n, state="done", pipeline=None, timeout=DEFAULT_TIMEOUT_S):
        """Wait until n events (of pipeline, if given) are in state."""
        where = "events WHERE state = ?" + (" AND pipeline = ?" if pipeline else "")
        params = (state, pipeline) if pipeline else (state,)
        self.wait_for(lambda: sb.count(where, params) >= n, timeout=timeout,
                      what=lambda: "%d events%s in state %r (journal: %s)"
                      % (n, " of pipeline %s" % pipeline if pipeline else "", state,
                         LazyJournal(sb)))
        return sb.db_rows("SELECT * FROM events WHERE state = ?"
                          + (" AND pipeline = ?" if pipeline else "") + " ORDER BY id", params)

    def wait_settled(self, sb, n, pipeline=None, timeout=DEFAULT_TIMEOUT_S):
        """Wait until n events (of pipeline) are finished (done or dead)."""
        where = "events WHERE state <> 'pending'" + (" AND pipeline = ?" if pipeline else "")
        params = (pipeline,) if pipeline else ()
        self.wait_for(lambda: sb.count(where, params) >= n, timeout=timeout,
                      what=lambda: "%d finished events%s (journal: %s)"
                      % (n, " of pipeline %s" % pipeline if pipeline else "", LazyJournal(sb)))

    # -- failure messages and sandbox removal ------------------------------
    def run(self, result=None):
        if result is None:
            result = self.defaultTestResult()
        n_failures, n_errors = len(result.failures), len(result.errors)
        super().run(result)
        failed = len(result.failures) > n_failures or len(result.errors) > n_errors
        if failed:
            # Every failure or error of this test carries the daemons' stderr
            # (unless the message already holds it), so CI logs explain it.
            for entries, start in ((result.failures, n_failures), (result.errors, n_errors)):
                for i in range(start, len(entries)):
                    test, text = entries[i]
                    entries[i] = (test, self._with_logs(text))
        for sb in getattr(self, "_sandboxes", []):
            if failed or os.environ.get("SLUICE_TEST_KEEP") == "1":
                sys.stderr.write("\n[%s] sandbox kept: %s\n" % (self.id(), sb.root))
            else:
                sb.remove()
        return result

    def _with_logs(self, text):
        extra = [d.describe() for d in getattr(self, "_daemons", [])
                 if d.proc is not None and ("---- %s stderr" % d.label) not in text]
        return text + ("\n" + "\n".join(extra) + "\n" if extra else "")


class LazyJournal:
    """Formats a short journal summary only when a message is rendered."""

    def __init__(self, sb):
        self.sb = sb

    def __repr__(self):
        try:
            rows = self.sb.db_rows("SELECT pipeline, state, count(*) AS n FROM events "
                                   "GROUP BY pipeline, state ORDER BY pipeline, state")
            inv = self.sb.db_rows("SELECT pipeline, step, status, count(*) AS n FROM invocations "
                                  "GROUP BY pipeline, step, status ORDER BY pipeline, step")
        except sqlite3.Error as e:
            return "<unreadable: %s>" % e
        return "events %s; invocations %s" % (
            ", ".join("%s/%s=%d" % (r["pipeline"], r["state"], r["n"]) for r in rows) or "none",
            ", ".join("%s/%s/%s=%d" % (r["pipeline"], r["step"], r["status"], r["n"])
                      for r in inv) or "none")

    __str__ = __repr__


def echo_pipeline(name, directory, **extra):
    """A one-step echo pipeline on a directory trigger, run in threads."""
    p = {
        "name": name,
        "trigger": {"directory": directory},
        "steps": [{"name": "echo", "handler": "echo.handler"}],
        "isolation": "thread",
    }
    p.update(extra)
    return p


def invoke_verbose(test, sb, pipeline, event, timeout_ms=30000):
    """`sluice invoke -v PIPELINE -` with event on stdin: (exit status, parsed output,
    request id). test fails if the output is not JSON."""
    argv = [sluice_bin(), "invoke", "-c", sb.config_path, "-v", "--timeout", str(timeout_ms),
            pipeline, "-"]
    p = subprocess.run(argv, input=json.dumps(event), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout_ms / 1000 + 30,
                       cwd=sb.cwd)
    try:
        out = json.loads(p.stdout)
    except ValueError:
        test.fail("sluice invoke printed no JSON: %r (stderr %r)" % (p.stdout, p.stderr))
    rid = None
    for line in p.stderr.splitlines():
        if line.startswith("request id: "):
            rid = line.split(": ", 1)[1].strip()
    return p.returncode, out, rid


def process_gone(pid):
    """Has pid exited (gone, or a zombie)?"""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


# -- shared by several test files: endpoints, pipelines, `sluice invoke` ---

def tcp_zmq_config(**extra):
    """A config part giving the daemon's PULL and ROUTER sockets free
    loopback TCP ports (extra: more keys of "zmq"), so test files can run in
    parallel."""
    z = {"pull": endpoint(), "router": endpoint()}
    z.update(extra)
    return {"zmq": z}


def compact(value):
    """JSON text as sluice passes it on when it came in compact."""
    return json.dumps(value, separators=(",", ":"))


def zmq_pipeline(name, steps, isolation="process", **extra):
    """A pipeline triggered by the zmq topic prefix "NAME."."""
    p = {"name": name, "trigger": {"zmq": {"topic": name + "."}}, "steps": steps,
         "isolation": isolation}
    p.update(extra)
    return p


def step(handler, name=None, config=None, **extra):
    """A C step; its name defaults to the handler's function."""
    s = {"name": name or handler.split(".")[1], "handler": handler}
    if config is not None:
        s["config"] = config
    s.update(extra)
    return s


def publish_lines(test, sb, topic, lines):
    """`sluice publish --lines TOPIC` with lines (text, one event a line) on
    stdin; test fails unless it exits 0."""
    pub = subprocess.run([sluice_bin(), "publish", "-c", sb.config_path, "--lines", topic],
                         input=lines, cwd=sb.cwd, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, timeout=60)
    test.assertEqual(pub.returncode, 0, pub.stderr)


def invoke_run(test, sb, pipeline, event, timeout_ms=60000):
    """`sluice invoke PIPELINE -` with event (a dict, or text sent as it is) on
    stdin: (the completed process, its stdout parsed as JSON or None when it
    printed nothing). test fails if the output is not JSON."""
    argv = [sluice_bin(), "invoke", "-c", sb.config_path, "--timeout", str(timeout_ms),
            pipeline, "-"]
    p = subprocess.run(argv, input=event if isinstance(event, str) else json.dumps(event),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout_ms / 1000 + 30, cwd=sb.cwd)
    try:
        out = json.loads(p.stdout) if p.stdout.strip() else None
    except ValueError:
        test.fail("sluice invoke printed no JSON: %r (stderr %r)" % (p.stdout[:500], p.stderr))
    return p, out


def main():
    unittest.main(verbosity=2)
