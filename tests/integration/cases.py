"""cases.py - test case base classes shared by several integration test files.

PluginCase (and plugin_step): `sluice invoke` of C plugin pipelines, the
rows they leave, shipped sample pipelines, `sluice check` refusals
(test_plugin_*.py). ScriptRuntimeCase (and script_step): a daemon with
Python and/or Node.js handler code, invoked with `sluice invoke -v`, and the
checks both runtimes pass alike (test_runtime_*.py). ZmqSocketsCase: a
daemon on its own TCP endpoints and pyzmq sockets closed when the test ends
(test_zmq.py, test_delivery.py). Plain helpers live in harness.py.
"""

import json
import os
import re
import shutil
import sys

import harness
from harness import SluiceTestCase

try:
    import zmq
except ImportError:  # pragma: no cover - python3-zmq is a test dependency
    zmq = None


def plugin_step(handler, config, name, **extra):
    """A C plugin step with its config and timeout_ms 20000."""
    s = {"name": name, "handler": handler, "config": config, "timeout_ms": 20000}
    s.update(extra)
    return s


class PluginCase(SluiceTestCase):
    """`sluice invoke` through a daemon's pipelines, and their rows."""

    invoke_timeout_ms = 60000   # `--timeout` of invoke, invoke_ok and invoke_fails
    ok_status = 200             # the statusCode invoke_ok asserts; None: not checked

    def invoke(self, sb, pipeline, event, timeout_ms=None):
        """`sluice invoke`; returns (exit status, parsed JSON output or None)."""
        p, out = harness.invoke_run(self, sb, pipeline, event,
                                    self.invoke_timeout_ms if timeout_ms is None else timeout_ms)
        return p.returncode, out

    def invoke_ok(self, sb, pipeline, event):
        p, out = harness.invoke_run(self, sb, pipeline, event, self.invoke_timeout_ms)
        self.assertEqual(p.returncode, 0, "invoke failed: %r" % (out,))
        if self.ok_status is not None:
            self.assertEqual(out["statusCode"], self.ok_status, out)
        return out["body"]

    def invoke_fails(self, sb, pipeline, event, error_type):
        p, out = harness.invoke_run(self, sb, pipeline, event, self.invoke_timeout_ms)
        self.assertEqual(p.returncode, 1, "invoke should have failed: %r" % (out,))
        self.assertEqual(out["errorType"], error_type, out)
        return out["errorMessage"]

    def logs(self, sb, pipeline):
        return [r["message"] for r in sb.db_rows(
            "SELECT message FROM logs WHERE pipeline = ? ORDER BY id", (pipeline,))]

    def logs_n(self, sb, pipeline, n):
        """The pipeline's log lines, once there are n."""
        self.wait_for(lambda: len(self.logs(sb, pipeline)) >= n,
                      what="%d log lines of %s" % (n, pipeline))
        return self.logs(sb, pipeline)

    def copy_sample(self, sb, file_name):
        """Copy the shipped pipelines/FILE_NAME into sb's pipelines; returns it
        parsed."""
        src = os.path.join(harness.env_path("SLUICE_SOURCE_DIR"), "pipelines", file_name)
        shutil.copy(src, sb.pipelines_dir)
        with open(src) as f:
            return json.load(f)

    def check_and_run_at_root(self, sb):
        """`sluice check` passes, then a daemon starts. Step config paths start
        from the daemon's working folder: run it from the sandbox root, as
        `sluice run` runs from the repository."""
        check = sb.cli("check")
        self.assertEqual(check.returncode, 0, check.stderr)
        return self.daemon(sb, cwd=sb.root)

    def check_refuses(self, sb, checked, make_step):
        """Each (config, message) of checked, as the one step (make_step(config))
        of pipeline kN: `sluice check` fails, saying `FILE: steps[0] (STEP).MESSAGE`
        for each."""
        for i, (cfg, _) in enumerate(checked):
            sb.add_pipeline(harness.zmq_pipeline("k%d" % i, [make_step(cfg)]))
        r = sb.cli("check")
        self.assertEqual(r.returncode, 1, r.stderr)
        for i, (cfg, want) in enumerate(checked):
            with self.subTest(config=cfg):
                self.assertRegex(r.stderr, r"%s: steps\[0\] \([a-z]+\)\.%s" % (
                    re.escape(sb.pipeline_file("k%d" % i)), re.escape(want)))

    def invocations(self, sb, pipeline, n=None):
        """The pipeline's invocation rows; with n, waits until there are n
        (rows are committed in batches, shortly after `invoke` answers)."""
        sql = "SELECT * FROM invocations WHERE pipeline = ? ORDER BY id"
        if n is not None:
            self.wait_for(lambda: len(sb.db_rows(sql, (pipeline,))) >= n,
                          what="%d invocations of %s" % (n, pipeline))
        return sb.db_rows(sql, (pipeline,))


def script_step(runtime, handler, name, code, **extra):
    """A step running handler ("module.function") from the folder code;
    its name defaults to the function's."""
    s = {"name": name or handler.split(".")[-1], "runtime": runtime, "code": code,
         "handler": handler}
    s.update(extra)
    return s


class ScriptRuntimeCase(SluiceTestCase):
    """A daemon on TCP endpoints of its own running script handlers: the
    subclass says which interpreters go into the config and which code files
    a sandbox gets unless a test gives its own."""

    interpreters = {}   # config key ("python", "node") -> interpreter path
    code_files = {}     # sandbox-relative path -> text

    def start(self, *pipelines, files=None, config=None):
        cfg = harness.tcp_zmq_config()
        cfg.update(self.interpreters)
        cfg.update(config or {})
        sb = self.sandbox(cfg)
        for rel, text in (files or self.code_files).items():
            sb.drop(rel, text)
        for p in pipelines:
            sb.add_pipeline(p)
        return sb, self.daemon(sb)

    def invoke(self, sb, pipeline, event, timeout_ms=30000):
        """`sluice invoke -v`: (exit status, parsed output, request id)."""
        return harness.invoke_verbose(self, sb, pipeline, event, timeout_ms)

    def rows(self, sb, rid):
        return sb.db_rows("SELECT * FROM invocations WHERE request_id = ? ORDER BY id", (rid,))

    def log_rows(self, sb, rid):
        return sb.db_rows("SELECT level, step, pipeline, message FROM logs WHERE request_id = ? "
                          "ORDER BY id", (rid,))

    def wait_rows(self, sb, rid, n=1):
        self.wait_for(lambda: len(self.rows(sb, rid)) >= n, what="%d invocation rows" % n)
        return self.rows(sb, rid)

    # -- checks both runtimes pass the same way ---------------------------
    def check_echo_returns_each_json_type(self, sb):
        """Pipeline "echo" answers event["v"]: every JSON type comes back
        as the body, a statusCode in a returned object sets the status."""
        for value in ({"a": [1, {"b": None}]}, [1, "two", 3.5, False], "text é✓", 42, -1.25,
                      True, False, None, {"statusCode": 404, "body": "nope"}):
            rc, out, rid = self.invoke(sb, "echo", {"v": value})
            self.assertEqual(rc, 0, out)
            self.assertEqual(out["body"], value)
            want_code = value["statusCode"] if isinstance(value, dict) and "statusCode" in value \
                else 200
            self.assertEqual(out["statusCode"], want_code, value)

    def check_init_ms_on_the_first_invocation_only(self, step):
        """One warm worker serves three invocations of step; only the first
        has init_ms."""
        sb, d = self.start({"name": "warm", "concurrency": 1, "steps": [step]})
        rids, pids = [], set()
        for _ in range(3):
            rc, out, rid = self.invoke(sb, "warm", {})
            self.assertEqual(rc, 0, out)
            rids.append(rid)
            pids.add(out["body"]["pid"])
        self.assertEqual(len(pids), 1, "one warm worker serves every invocation")
        inits = [self.wait_rows(sb, rid)[0]["init_ms"] for rid in rids]
        self.assertIsNotNone(inits[0])
        self.assertGreater(inits[0], 0)
        self.assertEqual(inits[1:], [None, None])
        self.stop(d)


class ZmqSocketsCase(SluiceTestCase):
    """Sandboxes with their own ZeroMQ endpoints, and pyzmq sockets (skipped
    without python3-zmq) that are closed when the test ends."""

    def setUp(self):
        super().setUp()
        if zmq is None:
            self.skipTest("python3-zmq is not installed for %s" % sys.executable)
        self.ctx = zmq.Context()
        self.sockets = []
        self.addCleanup(self.close_sockets)

    def close_sockets(self):
        for s in self.sockets:
            s.close(0)
        self.ctx.term()

    def start(self, *pipelines, zmq_extra=None, config=None, start=True):
        cfg = harness.tcp_zmq_config(**(zmq_extra or {}))
        cfg.update(config or {})
        sb = self.sandbox(cfg)
        for p in pipelines:
            sb.add_pipeline(p)
        return sb, (self.daemon(sb) if start else None)

    def socket(self, kind, connect=None, bind=None):
        s = self.ctx.socket(kind)
        s.setsockopt(zmq.LINGER, 0)
        self.sockets.append(s)  # kept open until the test ends
        if connect:
            s.connect(connect)
        if bind:
            s.bind(bind)
        return s
