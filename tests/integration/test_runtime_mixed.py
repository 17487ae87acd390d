"""C plugins, Python and Node.js handlers in the same pipelines, through a running daemon:
a C -> Python -> Node.js pipeline (bodies flow from step to step, one request id, one row
per step, a cold start per worker then warm), retries of a script step, a failure in a
script step dead-lettered with its stack trace, script steps in a "thread" pipeline, and
`sluice check` refusing a missing interpreter."""

import json
import os
import shutil
import textwrap

import harness
from cases import ScriptRuntimeCase

PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else shutil.which("python3")
NODE = "/usr/bin/node" if os.access("/usr/bin/node", os.X_OK) else shutil.which("node")


MID_PY = textwrap.dedent('''\
    import os

    def handler(event, context):
        print("python saw", sorted(event))
        event["py"] = {"pid": os.getpid(), "request": context.aws_request_id,
                       "step": context.step}
        return event

    def flaky(event, context):
        if context.attempt < 2:
            raise RuntimeError("attempt %d fails" % context.attempt)
        return {"attempt": context.attempt, "event": event}

    def fail(event, context):
        raise KeyError("missing-thing")
''')

LAST_JS = textwrap.dedent('''\
    exports.handler = async (event, context) => {
      console.log('node saw', Object.keys(event).sort().join(','));
      return { ...event, js: { pid: process.pid, request: context.awsRequestId, step: context.step } };
    };
''')

PIPELINE = {
    "name": "mixed",
    "concurrency": 1,
    "steps": [
        {"name": "c", "handler": "echo.handler"},
        {"name": "py", "runtime": "python3", "code": "code/py", "handler": "mid.handler"},
        {"name": "js", "runtime": "nodejs", "code": "code/js", "handler": "last.handler"},
    ],
}


class MixedRuntimes(ScriptRuntimeCase):

    interpreters = {"python": PYTHON, "node": NODE}
    code_files = {"code/py/mid.py": MID_PY, "code/js/last.js": LAST_JS}

    def setUp(self):
        super().setUp()
        if not PYTHON or not NODE:
            self.skipTest("python3 and node are both needed")

    def test_c_then_python_then_node(self):
        for isolation in ("process", "thread"):  # script steps run in workers either way
            with self.subTest(isolation=isolation):
                sb, d = self.start(dict(PIPELINE, isolation=isolation))
                rc, out, rid = self.invoke(sb, "mixed", {"order": 17})
                self.assertEqual(rc, 0, out)
                body = out["body"]
                self.assertEqual(body["order"], 17)
                self.assertEqual(body["py"]["request"], rid)
                self.assertEqual(body["js"]["request"], rid)
                self.assertEqual((body["py"]["step"], body["js"]["step"]), ("py", "js"))
                rows = self.wait_rows(sb, rid, 3)
                self.assertEqual([(r["step"], r["status"]) for r in rows],
                                 [("c", "ok"), ("py", "ok"), ("js", "ok")])
                self.assertIsNotNone(rows[1]["init_ms"], "the Python worker's cold start")
                self.assertIsNotNone(rows[2]["init_ms"], "the Node.js worker's cold start")
                logs = sb.db_rows("SELECT step, message FROM logs WHERE request_id = ? AND "
                                  "level = 'INFO' ORDER BY id", (rid,))
                self.wait_for(lambda: len(sb.db_rows(
                    "SELECT id FROM logs WHERE request_id = ? AND level = 'INFO'", (rid,))) >= 2,
                    what="the handlers' lines")
                logs = sb.db_rows("SELECT step, message FROM logs WHERE request_id = ? AND "
                                  "level = 'INFO' ORDER BY id", (rid,))
                self.assertEqual(logs, [{"step": "py", "message": "python saw ['order']"},
                                        {"step": "js", "message": "node saw order,py"}])
                # Warm: the same two interpreters answer, without init.
                rc, out2, rid2 = self.invoke(sb, "mixed", {"order": 18})
                self.assertEqual(rc, 0, out2)
                self.assertEqual(out2["body"]["py"]["pid"], body["py"]["pid"])
                self.assertEqual(out2["body"]["js"]["pid"], body["js"]["pid"])
                rows = self.wait_rows(sb, rid2, 3)
                self.assertEqual([r["init_ms"] for r in rows[1:]], [None, None])
                self.stop(d)

    def test_script_step_retried_then_dead_lettered_with_its_stack(self):
        sb, d = self.start(
            {"name": "retry", "steps": [
                {"name": "flaky", "runtime": "python3", "code": "code/py",
                 "handler": "mid.flaky", "retry": {"max_attempts": 3, "interval_ms": 10}},
                {"name": "js", "runtime": "nodejs", "code": "code/js",
                 "handler": "last.handler"}]},
            {"name": "dead", "on_failure": {"directory": "dead"}, "steps": [
                {"name": "c", "handler": "echo.handler"},
                {"name": "fail", "runtime": "python3", "code": "code/py", "handler": "mid.fail",
                 "retry": {"max_attempts": 2, "interval_ms": 10}}]})
        rc, out, rid = self.invoke(sb, "retry", {"n": 1})
        self.assertEqual(rc, 0, out)
        self.assertEqual(out["body"]["attempt"], 2)
        rows = self.wait_rows(sb, rid, 3)
        self.assertEqual([(r["step"], r["attempt"], r["status"]) for r in rows],
                         [("flaky", 1, "error"), ("flaky", 2, "ok"), ("js", 1, "ok")])
        self.assertEqual(rows[0]["error"], "attempt 1 fails")

        rc, out, rid = self.invoke(sb, "dead", {"n": 2})
        self.assertEqual(rc, 1, out)
        self.assertEqual((out["errorType"], out["errorMessage"], out["step"]),
                         ("KeyError", "'missing-thing'", "fail"))
        self.assertIn('raise KeyError("missing-thing")', out["stackTrace"][-1])
        self.assertEqual(len(self.wait_rows(sb, rid, 3)), 3)
        self.wait_settled(sb, 2)
        names = os.listdir(sb.path("dead"))
        self.assertEqual(len(names), 1)
        with open(os.path.join(sb.path("dead"), names[0])) as f:
            record = json.load(f)
        self.assertEqual(record["requestContext"]["condition"], "RetriesExhausted")
        self.assertEqual(record["responsePayload"]["errorType"], "KeyError")
        self.assertEqual(record["responsePayload"]["stackTrace"], out["stackTrace"])
        self.assertEqual(record["requestPayload"], {"n": 2})
        self.stop(d)

    def test_check_refuses_a_missing_interpreter(self):
        sb = self.sandbox(dict(harness.tcp_zmq_config(), python="/nonexistent/python3",
                               node="/nonexistent/node"))
        sb.drop("code/py/mid.py", MID_PY)
        sb.drop("code/js/last.js", LAST_JS)
        sb.add_pipeline(PIPELINE)
        r = sb.cli("check")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        text = r.stdout + r.stderr
        self.assertIn("/nonexistent/python3", text)
        self.assertIn("/nonexistent/node", text)


if __name__ == "__main__":
    harness.main()
