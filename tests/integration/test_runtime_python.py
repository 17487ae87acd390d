"""Python handlers (runtimes/python/bootstrap.py) through a running daemon: Lambda-style
handlers succeeding, raising, timing out, printing a lot, returning each JSON type; the
context object; cold starts (init_ms on the first invocation only); a syntax error or a
missing import reported clearly; the thumbnail sample pipeline (Pillow)."""

import json
import os
import shutil
import subprocess
import textwrap
import time

import harness
from harness import process_gone
from cases import ScriptRuntimeCase, script_step

PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else shutil.which("python3")


def py_step(handler, name=None, code="code/py", **extra):
    return script_step("python3", handler, name, code, **extra)


APP = textwrap.dedent('''\
    import json, logging, os, subprocess, sys, time

    print("printed while importing")
    logger = logging.getLogger()
    logger.setLevel(logging.INFO)
    IMPORTED_AT = time.time()

    def handler(event, context):
        print("hello from", context.function_name, "marker-py-stdout")
        logger.info("info line %s", context.aws_request_id)
        logger.warning("a warning")
        print("to stderr", file=sys.stderr)
        os.write(1, b"raw fd 1 marker-py-fd1\\n")
        subprocess.run(["/bin/echo", "child marker-py-child"])
        return {
            "statusCode": 201,
            "event": event,
            "context": {
                "aws_request_id": context.aws_request_id,
                "function_name": context.function_name,
                "function_version": context.function_version,
                "invoked_function_arn": context.invoked_function_arn,
                "memory_limit_in_mb": context.memory_limit_in_mb,
                "log_group_name": context.log_group_name,
                "log_stream_name": context.log_stream_name,
                "remaining": context.get_remaining_time_in_millis(),
                "pipeline": context.pipeline, "step": context.step,
                "config": context.config, "attempt": context.attempt,
            },
            "pid": os.getpid(),
            "task_root": os.environ.get("LAMBDA_TASK_ROOT"),
        }

    def echo(event, context):
        return event["v"]

    def nothing(event, context):
        pass

    def fail(event, context):
        def inner(x):
            raise ValueError("bad input: %s" % x)
        inner(event.get("x"))

    def not_json(event, context):
        import datetime
        return {"when": datetime.datetime(2024, 1, 2)}

    def server_error(event, context):
        return {"statusCode": 503, "body": "down"}

    def sleepy(event, context):
        if event.get("pidfile"):
            with open(event["pidfile"], "w") as f:
                f.write(str(os.getpid()))
            time.sleep(30)
        return {"pid": os.getpid()}

    def quick(event, context):
        return {"pid": os.getpid(), "imported_at": IMPORTED_AT}

    def flood(event, context):
        for i in range(event["n"]):
            print("flood line", i)
        os.write(1, b"y" * 200000 + b"\\n")
        return {"printed": event["n"]}
''')


class PythonRuntime(ScriptRuntimeCase):

    interpreters = {"python": PYTHON}
    code_files = {"code/py/app.py": APP}

    def setUp(self):
        super().setUp()
        if not PYTHON:
            self.skipTest("python3 is not installed")

    # -- tests ------------------------------------------------------------------------

    def test_handler_succeeds_with_lambda_context_and_logs(self):
        sb, d = self.start({"name": "py", "steps": [py_step("app.handler", name="main",
                                                             config={"size": 7})],
                            "memory_mb": 512})
        rc, out, rid = self.invoke(sb, "py", {"hello": "world"})
        self.assertEqual(rc, 0, out)
        self.assertEqual(out["statusCode"], 201)
        body = out["body"]
        self.assertEqual(body["event"], {"hello": "world"})
        ctx = body["context"]
        self.assertEqual(ctx["aws_request_id"], rid)
        self.assertEqual(ctx["function_name"], "app.handler")
        self.assertEqual(ctx["function_version"], "$LATEST")
        self.assertEqual(ctx["memory_limit_in_mb"], "512")
        self.assertEqual(ctx["log_group_name"], "/sluice/py")
        self.assertIn("[$LATEST]", ctx["log_stream_name"])
        self.assertTrue(ctx["invoked_function_arn"].startswith("arn:"), ctx)
        self.assertTrue(0 < ctx["remaining"] <= 3000, ctx)
        self.assertEqual((ctx["pipeline"], ctx["step"], ctx["attempt"]), ("py", "main", 1))
        self.assertEqual(ctx["config"], {"size": 7})
        self.assertEqual(body["task_root"], sb.path("code/py"))

        row = self.wait_rows(sb, rid)[0]
        self.assertEqual((row["status"], row["status_code"], row["step"], row["handler"]),
                         ("ok", 201, "main", "app.handler"))
        self.assertGreater(row["max_memory_kb"], 1000)
        want = [("INFO", "printed while importing"), ("INFO", "hello from app.handler"),
                ("INFO", "info line " + rid), ("WARN", "a warning"), ("ERROR", "to stderr"),
                ("INFO", "raw fd 1 marker-py-fd1"), ("INFO", "child marker-py-child")]
        self.wait_for(lambda: len(self.log_rows(sb, rid)) >= len(want) + 1,
                      what=lambda: "log lines (have %r)" % self.log_rows(sb, rid))
        logs = self.log_rows(sb, rid)
        for level, text in want:
            self.assertTrue(any(r["level"] == level and r["message"].startswith(text)
                                for r in logs), "no %s line %r in %r" % (level, text, logs))
        self.assertTrue(all(r["step"] == "main" and r["pipeline"] == "py" for r in logs), logs)
        self.assertTrue(any(r["level"] == "DEBUG" and "cold start" in r["message"] and
                            "app.py" in r["message"] for r in logs), logs)
        self.stop(d)
        for marker in ("marker-py-stdout", "marker-py-fd1", "marker-py-child"):
            self.assertNotIn(marker, d.log(), "handler output reached the daemon's stdout")

    def test_returns_each_json_type(self):
        sb, d = self.start({"name": "echo", "steps": [py_step("app.echo")]},
                           {"name": "none", "steps": [py_step("app.nothing")]},
                           {"name": "notjson", "steps": [py_step("app.not_json")]},
                           {"name": "s503", "steps": [py_step("app.server_error")]})
        self.check_echo_returns_each_json_type(sb)
        rc, out, _ = self.invoke(sb, "none", {})
        self.assertEqual((rc, out["body"]), (0, None))

        rc, out, rid = self.invoke(sb, "notjson", {})
        self.assertEqual(rc, 1, out)
        self.assertEqual(out["errorType"], "Runtime.MarshalError")
        self.assertIn("datetime", out["errorMessage"])

        rc, out, rid = self.invoke(sb, "s503", {})
        self.assertEqual(rc, 1, out)
        self.assertEqual(out["status"], "error")
        row = self.wait_rows(sb, rid)[0]
        self.assertEqual((row["status"], row["status_code"]), ("error", 503))
        self.stop(d)

    def test_exception_reports_type_message_and_stack_trace(self):
        sb, d = self.start({"name": "boom", "steps": [py_step("app.fail")],
                            "on_failure": {"directory": "dead"}})
        rc, out, rid = self.invoke(sb, "boom", {"x": 7})
        self.assertEqual(rc, 1, out)
        self.assertEqual(out["errorType"], "ValueError")
        self.assertEqual(out["errorMessage"], "bad input: 7")
        self.assertEqual(out["status"], "error")
        trace = out["stackTrace"]
        self.assertEqual(len(trace), 2, trace)
        app = sb.path("code/py/app.py")
        self.assertTrue(trace[0].startswith('  File "%s", line ' % app), trace)
        self.assertIn("in fail", trace[0])
        self.assertIn('raise ValueError("bad input: %s" % x)', trace[1])
        row = self.wait_rows(sb, rid)[0]
        self.assertEqual((row["status"], row["error"]), ("error", "bad input: 7"))
        self.wait_for(lambda: any(r["level"] == "ERROR" and "Traceback" in r["message"] and
                                  "ValueError: bad input: 7" in r["message"]
                                  for r in self.log_rows(sb, rid)), what="the traceback line")
        self.wait_settled(sb, 1)
        records = os.listdir(sb.path("dead"))
        with open(os.path.join(sb.path("dead"), records[0])) as f:
            rec = json.load(f)
        self.assertEqual(rec["responsePayload"]["errorType"], "ValueError")
        self.assertEqual(rec["responsePayload"]["stackTrace"], trace)
        self.stop(d)

    def test_timeout_kills_the_interpreter_and_the_next_invocation_starts_cold(self):
        sb, d = self.start({"name": "slow", "concurrency": 1,
                            "steps": [py_step("app.sleepy", timeout_ms=400)]},
                           {"name": "fast", "concurrency": 1, "steps": [py_step("app.quick")]})
        pidfile = sb.path("pid")
        t0 = time.monotonic()
        rc, out, rid = self.invoke(sb, "slow", {"pidfile": pidfile})
        self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(rc, 1, out)
        self.assertEqual((out["status"], out["errorType"]), ("timeout", "Sandbox.Timedout"))
        row = self.wait_rows(sb, rid)[0]
        self.assertEqual(row["status"], "timeout")
        with open(pidfile) as f:
            pid = int(f.read())
        self.wait_for(lambda: process_gone(pid), what="the timed-out interpreter to be gone")
        # The daemon keeps serving, and the slow pipeline's next worker is a new one: a
        # cold start again.
        rc, out, rid2 = self.invoke(sb, "fast", {})
        self.assertEqual(rc, 0, out)
        rc, out, rid3 = self.invoke(sb, "slow", {})
        self.assertEqual(rc, 0, out)
        self.assertNotEqual(out["body"]["pid"], pid)
        self.assertIsNotNone(self.wait_rows(sb, rid3)[0]["init_ms"])
        self.stop(d)

    def test_printing_a_lot_is_bounded_and_the_daemon_keeps_serving(self):
        sb, d = self.start({"name": "flood", "concurrency": 1, "steps": [py_step("app.flood")]},
                           {"name": "fast", "steps": [py_step("app.quick")]})
        rc, out, rid = self.invoke(sb, "flood", {"n": 30000})
        self.assertEqual(rc, 0, out)
        self.assertEqual(out["body"], {"printed": 30000})
        self.wait_for(lambda: any("log output truncated" in r["message"]
                                  for r in self.log_rows(sb, rid)), what="the truncation line")
        n = sb.count("logs WHERE request_id = ?", (rid,))
        self.assertLessEqual(n, 10005)  # 10,000 lines, the truncation line, a few notes
        self.assertGreaterEqual(n, 10000)
        rc, out, _ = self.invoke(sb, "fast", {})
        self.assertEqual(rc, 0, out)
        # A new invocation has a fresh allowance.
        rc, out, rid2 = self.invoke(sb, "flood", {"n": 5})
        self.assertEqual(rc, 0, out)
        self.wait_for(lambda: sb.count("logs WHERE request_id = ?", (rid2,)) >= 6,
                      what="the second invocation's lines")
        # The 200,000-byte line written to fd 1 arrives whole, in pieces of at most 16 KiB.
        self.wait_for(lambda: sum(len(r["message"]) for r in self.log_rows(sb, rid2)
                                  if r["message"].startswith("yyy")) >= 200000,
                      what="the long line")
        lines = [r["message"] for r in self.log_rows(sb, rid2)]
        self.assertEqual([x for x in lines if x.startswith("flood")],
                         ["flood line %d" % i for i in range(5)])
        pieces = [x for x in lines if x.startswith("yyy")]
        self.assertEqual(sum(map(len, pieces)), 200000)
        self.assertTrue(all(len(x) <= 16384 for x in pieces))
        self.stop(d)
        self.assertNotIn("flood line", d.log())

    def test_init_ms_on_the_first_invocation_only(self):
        self.check_init_ms_on_the_first_invocation_only(py_step("app.quick"))

    def test_syntax_error_is_reported_clearly_and_a_fix_is_picked_up(self):
        broken = "import os\n\ndef handler(event, context)\n    return {'ok': True}\n"
        sb, d = self.start({"name": "broken", "concurrency": 1,
                            "steps": [py_step("bad.handler")]},
                           files={"code/py/bad.py": broken})
        rc, out, rid = self.invoke(sb, "broken", {})
        self.assertEqual(rc, 1, out)
        path = sb.path("code/py/bad.py")
        self.assertEqual(out["errorType"], "Runtime.UserCodeSyntaxError")
        self.assertIn("Syntax error in module 'bad'", out["errorMessage"])
        self.assertIn("%s, line 3" % path, out["errorMessage"])
        self.assertIn("def handler(event, context)", "".join(out["stackTrace"]))
        row = self.wait_rows(sb, rid)[0]
        self.assertEqual(row["status"], "error")
        self.assertIn("line 3", row["error"])
        self.assertIsNotNone(row["init_ms"], "the failed init was a cold start")
        self.assertTrue(d.alive())
        sb.drop("code/py/bad.py", "def handler(event, context):\n    return {'ok': True}\n")
        rc, out, rid = self.invoke(sb, "broken", {})
        self.assertEqual((rc, out["body"]), (0, {"ok": True}), out)
        self.stop(d)

    def test_import_errors_and_a_missing_function(self):
        files = {"code/py/app.py": APP,
                 "code/py/needs.py": "import no_such_module_here\n\ndef handler(e, c):\n"
                                     "    return 1\n",
                 "code/py/crashy.py": "import os\nTABLE = os.environ['SLUICE_NO_SUCH_VAR']\n"
                                      "def handler(e, c):\n    return 1\n"}
        sb, d = self.start({"name": "needs", "steps": [py_step("needs.handler")]},
                           {"name": "crashy", "steps": [py_step("crashy.handler")]},
                           {"name": "nofn", "steps": [py_step("app.no_such_function")]},
                           files=files)
        rc, out, _ = self.invoke(sb, "needs", {})
        self.assertEqual(rc, 1, out)
        self.assertEqual(out["errorType"], "Runtime.ImportModuleError")
        self.assertIn("Unable to import module 'needs': No module named 'no_such_module_here'",
                      out["errorMessage"])
        self.assertIn("needs.py, line 1", out["errorMessage"])
        rc, out, _ = self.invoke(sb, "crashy", {})
        self.assertEqual(out["errorType"], "KeyError")
        self.assertIn("crashy.py, line 2", out["errorMessage"])
        self.assertIn("SLUICE_NO_SUCH_VAR", out["errorMessage"])
        rc, out, _ = self.invoke(sb, "nofn", {})
        self.assertEqual(out["errorType"], "Runtime.HandlerNotFound")
        self.assertIn("no_such_function", out["errorMessage"])
        self.stop(d)

    def test_sample_thumbnail_pipeline(self):
        check = subprocess.run([PYTHON, "-c", "import PIL"], stderr=subprocess.DEVNULL)
        if check.returncode != 0:
            self.skipTest("Pillow is not installed (apt-get install python3-pil)")
        repo = harness.env_path("SLUICE_SOURCE_DIR")
        sb = self.sandbox(harness.tcp_zmq_config())
        # The sample pipeline file as it is, from a folder laid out like the repository.
        shutil.copy(os.path.join(repo, "pipelines", "thumbnails-py.json"), sb.pipelines_dir)
        os.symlink(os.path.join(repo, "handlers"), sb.path("handlers"))
        check = sb.cli("check")
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        # Run from the sandbox's root, as `sluice run` runs from the repository's.
        d = self.daemon(sb, cwd=sb.root)
        png = subprocess.run([PYTHON, "-c", "import io, sys\nfrom PIL import Image\n"
                              "b = io.BytesIO(); Image.new('RGB', (640, 480), (200, 30, 30))"
                              ".save(b, 'PNG'); sys.stdout.buffer.write(b.getvalue())"],
                             stdout=subprocess.PIPE, check=True).stdout
        sb.drop("var/inbox/thumbs-py/photos/red.png", png, mode="wb")
        sb.drop("var/inbox/thumbs-py/notes.txt", "not an image\n")
        thumb = sb.path("var/thumbnails-py/photos/thumb-red.png")
        self.wait_for(lambda: os.path.exists(thumb), what="the thumbnail")
        self.wait_events(sb, 1, pipeline="thumbnails-py")
        size = subprocess.run([PYTHON, "-c", "import sys\nfrom PIL import Image\n"
                               "print(*Image.open(sys.argv[1]).size)", thumb],
                              stdout=subprocess.PIPE, text=True, check=True).stdout.split()
        self.assertEqual(size, ["128", "96"])
        row = sb.db_rows("SELECT * FROM invocations WHERE pipeline = 'thumbnails-py'")[0]
        self.assertEqual(row["status"], "ok")
        self.assertIsNotNone(row["init_ms"])
        self.assertEqual(sb.count("invocations"), 1, "notes.txt does not match the trigger")
        self.stop(d)


if __name__ == "__main__":
    harness.main()
