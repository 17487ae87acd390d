"""Custom runtimes ("runtime": "provided") through a running daemon: the function folder's
`bootstrap` is served the Lambda Runtime API (sluice-runtime-api). Two bootstraps run
unchanged: AWS's custom-runtime tutorial in shell with curl (tests/integration/provided/
tutorial, plus one in its style that posts errors), and one in C that speaks plain HTTP
(provided/bootstrap.c, compiled here). Each: event in, response out, error out, a timeout, a
crash, an init failure; and `sluice check` on a folder without an executable bootstrap."""

import json
import os
import shutil
import signal
import subprocess

import harness
from harness import SluiceTestCase
from harness import process_gone

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "provided")
CC = shutil.which("cc") or shutil.which("gcc")


def step(code, handler, **extra):
    s = {"name": "main", "runtime": "provided", "code": code, "handler": handler}
    s.update(extra)
    return s


class ProvidedRuntime(SluiceTestCase):

    def setUp(self):
        super().setUp()
        if not shutil.which("curl"):
            self.skipTest("curl is not installed")

    def start(self, *pipelines):
        sb = self.sandbox()
        for name in ("tutorial", "shell_errors"):
            shutil.copytree(os.path.join(FIXTURES, name), sb.path("code", name))
        for p in pipelines:
            sb.add_pipeline(p)
        return sb, self.daemon(sb)

    def compile_c(self, sb):
        if not CC:
            self.skipTest("no C compiler")
        os.makedirs(sb.path("code", "c"))
        subprocess.run([CC, "-O1", "-o", sb.path("code", "c", "bootstrap"),
                        os.path.join(FIXTURES, "bootstrap.c")], check=True)

    def warm_c(self):
        """A daemon with pipeline "c" on the C bootstrap, warm: (sandbox, daemon, its pid)."""
        sb = self.sandbox()
        self.compile_c(sb)
        sb.add_pipeline({"name": "c", "concurrency": 1, "steps": [step("code/c", "app.run")]})
        d = self.daemon(sb)
        rc, out, _ = self.invoke(sb, "c", {"op": "echo"})
        self.assertEqual(rc, 0, out)
        return sb, d, out["body"]["pid"]

    def invoke(self, sb, pipeline, event):
        return harness.invoke_verbose(self, sb, pipeline, event)

    def row(self, sb, rid):
        self.wait_for(lambda: sb.db_rows("SELECT * FROM invocations WHERE request_id = ?",
                                         (rid,)), what="the invocation row")
        return sb.db_rows("SELECT * FROM invocations WHERE request_id = ?", (rid,))[0]

    def logs(self, sb, rid):
        return [r["message"] for r in
                sb.db_rows("SELECT message FROM logs WHERE request_id = ? ORDER BY id", (rid,))]

    # -- the shell bootstrap of AWS's tutorial -----------------------------------------------

    def test_tutorial_bootstrap_echoes_warm(self):
        sb, d = self.start({"name": "echo", "concurrency": 1,
                            "steps": [step("code/tutorial", "function.handler")]})
        rc, out, rid = self.invoke(sb, "echo", {"hello": "world"})
        self.assertEqual(rc, 0, out)
        # the tutorial answers plain text: recorded as a JSON string
        self.assertTrue(out["body"].startswith("Echoing request: '"), out)
        self.assertEqual(json.loads(out["body"][len("Echoing request: '"):-1]),
                         {"hello": "world"})
        row = self.row(sb, rid)
        self.assertEqual((row["status"], row["status_code"], row["handler"]),
                         ("ok", 200, "function.handler"))
        self.assertIsNotNone(row["init_ms"])
        # curl's own output (the 202 body) is the bootstrap's stdout: a log line
        self.wait_for(lambda: any('{"status":"OK"}' in m for m in self.logs(sb, rid)),
                      what=lambda: "curl's output in the logs: %r" % self.logs(sb, rid))
        rc, out, rid2 = self.invoke(sb, "echo", {"n": 2})
        self.assertEqual(rc, 0, out)
        self.assertIn('"n": 2', out["body"])
        self.assertIsNone(self.row(sb, rid2)["init_ms"], "the second invocation is warm")
        self.stop(d)

    def test_tutorial_bootstrap_timeout_kills_it(self):
        sb, d = self.start({"name": "slow", "concurrency": 1,
                            "steps": [step("code/tutorial", "function.slow", timeout_ms=500)]})
        rc, out, rid = self.invoke(sb, "slow", {})
        self.assertEqual(rc, 1, out)
        self.assertEqual((out["status"], out["errorType"]), ("timeout", "Sandbox.Timedout"))
        with open(sb.path("code", "tutorial", "bootstrap.pid")) as f:
            pid = int(f.read())
        self.wait_for(lambda: process_gone(pid), what="the timed-out bootstrap to be gone")
        self.stop(d)

    def test_tutorial_bootstrap_crash_then_a_fresh_one(self):
        sb, d = self.start({"name": "crash", "concurrency": 1,
                            "steps": [step("code/tutorial", "function.crash")]},
                           {"name": "echo", "steps": [step("code/tutorial", "function.handler")]})
        rc, out, rid = self.invoke(sb, "crash", {})
        self.assertEqual(rc, 1, out)
        self.assertEqual((out["status"], out["errorType"]), ("crashed", "Runtime.ExitError"))
        self.wait_for(lambda: any("Runtime exited with error: exit status 3" in m
                                  for m in self.logs(sb, rid)),
                      what=lambda: "the exit in the logs: %r" % self.logs(sb, rid))
        self.assertIn("about to fail", self.logs(sb, rid))
        rc, out, _ = self.invoke(sb, "echo", {})
        self.assertEqual(rc, 0, out)
        self.stop(d)

    def test_tutorial_bootstrap_init_failure(self):
        # no missing.sh in the folder: the tutorial's `source` fails before any `next`
        sb, d = self.start({"name": "broken", "steps": [step("code/tutorial", "missing.handler")]})
        rc, out, rid = self.invoke(sb, "broken", {})
        self.assertEqual(rc, 1, out)
        self.assertEqual(out["errorType"], "Runtime.InitError")
        self.assertIn("ended before asking for an event", out["errorMessage"])
        self.assertIn("missing.sh", out["errorMessage"])
        self.stop(d)

    def test_shell_bootstrap_errors(self):
        sb, d = self.start({"name": "err", "steps": [step("code/shell_errors", "any.thing")]},
                           {"name": "initerr", "steps": [step("code/shell_errors", "init.fail")]})
        rc, out, rid = self.invoke(sb, "err", {"x": 1})
        self.assertEqual(rc, 1, out)
        self.assertEqual((out["status"], out["errorType"], out["errorMessage"]),
                         ("error", "InvalidEventDataException", "Error parsing event data."))
        self.assertEqual(self.row(sb, rid)["error"], "Error parsing event data.")
        rc, out, rid = self.invoke(sb, "initerr", {})
        self.assertEqual(rc, 1, out)
        self.assertEqual(out["errorType"], "Runtime.InitError")
        self.assertIn("InvalidFunctionException: Failed to load function.", out["errorMessage"])
        self.stop(d)

    # -- a compiled bootstrap ---------------------------------------------------------------

    def test_c_bootstrap(self):
        sb = self.sandbox()
        self.compile_c(sb)
        for name, handler, extra in (("c", "app.run", {}),
                                     ("cslow", "app.run", {"timeout_ms": 500}),
                                     ("cinit", "initfail", {})):
            sb.add_pipeline({"name": name, "concurrency": 1,
                             "steps": [step("code/c", handler, **extra)]})
        d = self.daemon(sb)
        rc, out, rid = self.invoke(sb, "c", {"op": "echo", "v": [1, 2]})
        self.assertEqual(rc, 0, out)
        body = out["body"]
        self.assertEqual(body["event"], {"op": "echo", "v": [1, 2]})
        self.assertEqual(body["handler"], "app.run")
        self.assertTrue(body["arn"].startswith("arn:") and body["arn"].endswith(":function:c-main"),
                        body)
        self.assertGreater(int(body["deadline"]), 1700000000000)
        pid = body["pid"]
        self.wait_for(lambda: "c bootstrap got " + rid in self.logs(sb, rid),
                      what=lambda: "its stderr line: %r" % self.logs(sb, rid))

        rc, out, rid = self.invoke(sb, "c", {"op": "fail"})
        self.assertEqual(rc, 1, out)
        self.assertEqual((out["status"], out["errorType"], out["errorMessage"], out["stackTrace"]),
                         ("error", "CError", "it broke", ["main.c:1"]))

        rc, out, rid = self.invoke(sb, "c", {"op": "big"})
        self.assertEqual(rc, 1, out)
        self.assertEqual(out["errorType"], "Function.ResponseSizeTooLarge")
        self.assertIn("6291556 bytes", out["errorMessage"])
        self.wait_for(lambda: any(m.startswith("POST ") and ": 413 " in m and
                                  "RequestEntityTooLarge" in m for m in self.logs(sb, rid)),
                      what=lambda: "the bootstrap's 413: %r" % self.logs(sb, rid))
        rc, out, _ = self.invoke(sb, "c", {"op": "echo"})
        self.assertEqual((rc, out["body"]["pid"]), (0, pid), "the same warm bootstrap")

        rc, out, rid = self.invoke(sb, "c", {"op": "crash"})
        self.assertEqual((rc, out["status"], out["errorType"]), (1, "crashed", "Runtime.ExitError"))
        self.wait_for(lambda: process_gone(pid), what="the crashed bootstrap to be gone")
        rc, out, _ = self.invoke(sb, "c", {"op": "echo"})
        self.assertEqual(rc, 0, out)
        self.assertNotEqual(out["body"]["pid"], pid)

        rc, out, _ = self.invoke(sb, "cslow", {"op": "echo"})
        slow_pid = out["body"]["pid"]
        rc, out, _ = self.invoke(sb, "cslow", {"op": "sleep"})
        self.assertEqual((rc, out["status"]), (1, "timeout"))
        self.wait_for(lambda: process_gone(slow_pid), what="the timed-out bootstrap to be gone")

        rc, out, _ = self.invoke(sb, "cinit", {})
        self.assertEqual((rc, out["errorType"]), (1, "Runtime.InitError"))
        self.assertIn("InitBroken: no config", out["errorMessage"])
        self.stop(d)

    def test_bootstrap_gone_between_invocations_is_started_again(self):
        sb, d, pid = self.warm_c()
        os.kill(pid, signal.SIGKILL)  # while it waits for an event
        self.wait_for(lambda: process_gone(pid), what="the bootstrap to be gone")
        rc, out, rid = self.invoke(sb, "c", {"op": "echo"})
        self.assertEqual(rc, 0, out)
        self.assertNotEqual(out["body"]["pid"], pid)
        self.wait_for(lambda: any("the bootstrap exited between invocations (Runtime exited "
                                  "with error: signal: Killed); starting a new one" in m
                                  for m in self.logs(sb, rid)),
                      what=lambda: "the restart in the logs: %r" % self.logs(sb, rid))
        # a new bootstrap whose init fails: Runtime.InitError, and later a fresh worker
        pid = out["body"]["pid"]
        sb.drop("code/c/fail-init", "")
        os.kill(pid, signal.SIGKILL)
        self.wait_for(lambda: process_gone(pid), what="the bootstrap to be gone")
        rc, out, _ = self.invoke(sb, "c", {"op": "echo"})
        self.assertEqual((rc, out["errorType"]), (1, "Runtime.InitError"), out)
        self.assertIn("InitBroken: no config", out["errorMessage"])
        os.remove(sb.path("code/c/fail-init"))
        rc, out, _ = self.invoke(sb, "c", {"op": "echo"})
        self.assertEqual(rc, 0, out)
        self.stop(d)

    def test_a_replaced_bootstrap_is_picked_up(self):
        sb, d, pid = self.warm_c()
        shutil.copy(sb.path("code/c/bootstrap"), sb.path("code/c/bootstrap.new"))
        os.rename(sb.path("code/c/bootstrap.new"), sb.path("code/c/bootstrap"))
        rc, out, rid = self.invoke(sb, "c", {"op": "echo"})
        self.assertEqual(rc, 0, out)
        self.assertNotEqual(out["body"]["pid"], pid, "a new worker for the new file")
        self.assertIsNotNone(self.row(sb, rid)["init_ms"])
        self.stop(d)

    def test_two_provided_steps_in_one_pipeline(self):
        sb = self.sandbox()
        self.compile_c(sb)
        shutil.copytree(os.path.join(FIXTURES, "tutorial"), sb.path("code", "tutorial"))
        sb.add_pipeline({"name": "two", "steps": [
            step("code/tutorial", "function.handler", name="sh"),
            step("code/c", "app.run", name="c")]})
        d = self.daemon(sb)
        rc, out, rid = self.invoke(sb, "two", {"k": 1})
        self.assertEqual(rc, 0, out)
        # the C bootstrap echoes what the shell one answered
        self.assertTrue(out["body"]["event"].startswith("Echoing request: "), out)
        self.assertTrue(out["body"]["arn"].endswith(":function:two-c"), out)
        steps = lambda: [r["step"] for r in sb.db_rows("SELECT step FROM invocations WHERE "
                                                       "request_id = ? ORDER BY id", (rid,))]
        self.wait_for(lambda: len(steps()) == 2, what="two invocation rows")
        self.assertEqual(steps(), ["sh", "c"])
        self.stop(d)

    # -- sluice check -----------------------------------------------------------------------

    def test_check_wants_an_executable_bootstrap(self):
        sb = self.sandbox()
        os.makedirs(sb.path("code", "empty"))
        sb.drop("code/noexec/bootstrap", "#!/bin/sh\n")
        sb.add_pipeline({"name": "a", "steps": [step("code/empty", "x.y")]})
        sb.add_pipeline({"name": "b", "steps": [step("code/noexec", "x.y")]})
        sb.add_pipeline({"name": "c", "steps": [{"runtime": "provided", "handler": "x.y"}]})
        r = sb.cli("check")
        self.assertNotEqual(r.returncode, 0)
        text = r.stdout + r.stderr
        self.assertIn("code/empty/bootstrap: No such file or directory; the function folder "
                      "needs an executable file named \"bootstrap\"", text)
        self.assertIn("code/noexec/bootstrap is not executable (chmod +x it)", text)
        self.assertIn("a \"provided\" step needs \"code\"", text)


if __name__ == "__main__":
    harness.main()
