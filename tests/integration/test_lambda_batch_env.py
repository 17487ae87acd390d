"""Lambda handlers that people already have run unchanged (issue 16, items 4-6):
batches shaped like SQS with Lambda's batchItemFailures rules, a worker
environment built from scratch with Lambda's variables, `environment`,
`pass_env` and `region`, and dependencies beside the handler and in layers.
Every handler is written as Lambda's documentation writes it."""

import json
import os
import shutil
import subprocess

import harness
from harness import SluiceTestCase

PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else shutil.which("python3")
NODE = "/usr/bin/node" if os.access("/usr/bin/node", os.X_OK) else shutil.which("node")
DIST = "/usr/lib/python3/dist-packages"

# AWS's "Implementing partial batch responses" example, with a process() that
# fails for files whose name says so.
SQS_APP = r'''
import json

def process_message(record):
    s3 = json.loads(record["body"])["Records"][0]["s3"]
    if "bad" in s3["object"]["key"]:
        raise ValueError("cannot process " + s3["object"]["key"])

def lambda_handler(event, context):
    if event:
        batch_item_failures = []
        sqs_batch_response = {}
        for record in event["Records"]:
            try:
                process_message(record)
            except Exception as e:
                batch_item_failures.append({"itemIdentifier": record["messageId"]})
        sqs_batch_response["batchItemFailures"] = batch_item_failures
        return sqs_batch_response

def wrong_identifier(event, context):
    # an identifier that names no message of the batch (a typo, a stale id)
    return {"batchItemFailures": [{"itemIdentifier": "no-such-message"}]}

def empty_identifier(event, context):
    return {"batchItemFailures": [{"itemIdentifier": ""}]}

def raises(event, context):
    raise RuntimeError("the table is not reachable")

def shape(event, context):
    r = event["Records"][0]
    return {"keys": sorted(r), "attributes": sorted(r["attributes"]),
            "body_is_text": isinstance(r["body"], str), "eventSource": r["eventSource"],
            "receiveCount": r["attributes"]["ApproximateReceiveCount"]}
'''

ENV_APP = r'''
import os

def lambda_handler(event, context):
    return {"env": dict(os.environ), "memory": context.memory_limit_in_mb,
            "function": context.function_name, "stream": context.log_stream_name}

def second(event, context):
    return {"env": dict(os.environ)}
'''

ENV_JS = r'''
exports.handler = async (event, context) => ({
  env: { ...process.env },
  memory: context.memoryLimitInMB,
});
'''

DEPS_PY = r'''
import distro
import blinker

def lambda_handler(event, context):
    return {"distro": distro.__file__, "blinker": blinker.__file__}
'''

DEPS_JS = r'''
const ms = require('ms');
const leftPad = require('left-pad');

exports.handler = async () => ({
  ms: ms('2 days'),
  pad: leftPad('7', 3, '0'),
  msFile: require.resolve('ms'),
  padFile: require.resolve('left-pad'),
});
'''


class LambdaCase(SluiceTestCase):

    def setUp(self):
        super().setUp()
        if not PYTHON:
            self.skipTest("python3 is not installed")

    def start(self, pipelines, files, config=None, env=None):
        cfg = {"zmq": {"pull": harness.endpoint(), "router": harness.endpoint()},
               "python": PYTHON}
        if NODE:
            cfg["node"] = NODE
        cfg.update(config or {})
        sb = self.sandbox(cfg)
        for rel, text in files.items():
            sb.drop(rel, text)
        for p in pipelines:
            sb.add_pipeline(p)
        saved = {k: os.environ.get(k) for k in (env or {})}
        os.environ.update(env or {})
        try:
            d = self.daemon(sb)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return sb, d

    def invoke(self, sb, pipeline, event):
        p = subprocess.run([harness.sluice_bin(), "invoke", "-c", sb.config_path, pipeline,
                            json.dumps(event)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=90, cwd=sb.cwd)
        self.assertEqual(p.returncode, 0, "invoke failed: %s %s" % (p.stdout, p.stderr))
        return json.loads(p.stdout)["body"]


def py_step(handler, code="code/py", **extra):
    s = {"name": handler.split(".")[-1], "runtime": "python3", "code": code, "handler": handler}
    s.update(extra)
    return s


def batch_pipeline(name, handler, max_attempts=2):
    return {"name": name, "trigger": {"directory": "in/" + name},
            "batch": {"size": 10, "window_ms": 500}, "concurrency": 1,
            "steps": [py_step(handler, retry={"max_attempts": max_attempts, "interval_ms": 10})]}


class Batches(LambdaCase):

    def drop_all(self, sb, name, names):
        for n in names:
            sb.drop("in/%s/%s" % (name, n), n + "\n")

    def states(self, sb, name):
        return {json.loads(r["payload"])["Records"][0]["s3"]["object"]["key"]:
                (r["state"], r["attempts"])
                for r in sb.db_rows("SELECT * FROM events WHERE pipeline = ?", (name,))}

    def test_records_have_the_sqs_shape(self):
        sb, d = self.start([{"name": "shape", "batch": {"size": 5}, "steps": [
            py_step("app.shape")]}], {"code/py/app.py": SQS_APP})
        out = self.invoke(sb, "shape", {"order": 1})
        self.assertEqual(out["keys"], sorted(["messageId", "receiptHandle", "body", "attributes",
                                              "messageAttributes", "eventSource",
                                              "eventSourceARN", "awsRegion"]))
        self.assertEqual(out["attributes"], sorted(["ApproximateReceiveCount", "SentTimestamp",
                                                    "SenderId",
                                                    "ApproximateFirstReceiveTimestamp"]))
        self.assertIs(out["body_is_text"], True, "the body is the message as sent, a string")
        self.assertEqual((out["eventSource"], out["receiveCount"]), ("aws:sqs", "1"))
        self.stop(d)

    def test_partial_failures_retry_only_the_named_records(self):
        sb, d = self.start([batch_pipeline("part", "app.lambda_handler")],
                           {"code/py/app.py": SQS_APP})
        names = ["ok-1.txt", "ok-2.txt", "bad-1.txt", "ok-3.txt"]
        self.drop_all(sb, "part", names)
        self.wait_settled(sb, 4, pipeline="part")
        st = self.states(sb, "part")
        self.assertEqual(st["bad-1.txt"], ("dead", 2), st)
        for n in ("ok-1.txt", "ok-2.txt", "ok-3.txt"):
            self.assertEqual(st[n], ("done", 1), st)
        self.stop(d)

    def test_an_identifier_not_in_the_batch_or_empty_fails_the_whole_batch(self):
        sb, d = self.start([batch_pipeline("wrong", "app.wrong_identifier"),
                            batch_pipeline("empty", "app.empty_identifier")],
                           {"code/py/app.py": SQS_APP})
        for name in ("wrong", "empty"):
            self.drop_all(sb, name, ["a.txt", "b.txt", "c.txt"])
        self.wait_settled(sb, 3, pipeline="wrong")
        self.wait_settled(sb, 3, pipeline="empty")
        for name, why in (("wrong", "not a messageId of this batch"),
                          ("empty", "empty or not a string")):
            st = self.states(sb, name)
            self.assertEqual(set(st.values()), {("dead", 2)},
                             "%s: every record is retried, then dead-lettered: %r" % (name, st))
            errors = {r["error"] for r in sb.db_rows(
                "SELECT error FROM events WHERE pipeline = ?", (name,))}
            self.assertTrue(all(why in e for e in errors), errors)
            logs = [r["message"] for r in sb.db_rows(
                "SELECT message FROM logs WHERE pipeline = ?", (name,))]
            self.assertTrue(any(why in m for m in logs), logs)
        self.stop(d)

    def test_a_handler_error_fails_the_whole_batch(self):
        sb, d = self.start([batch_pipeline("boom", "app.raises")], {"code/py/app.py": SQS_APP})
        self.drop_all(sb, "boom", ["a.txt", "b.txt"])
        self.wait_settled(sb, 2, pipeline="boom")
        self.assertEqual(set(self.states(sb, "boom").values()), {("dead", 2)})
        self.stop(d)


class Environment(LambdaCase):

    def test_a_clean_environment_with_lambdas_variables(self):
        two = {"name": "envtwo", "environment": {"STAGE": "pipeline"},
               "steps": [py_step("app.lambda_handler", environment={"STAGE": "first"}),
                         py_step("app.second", environment={"ONLY_SECOND": "yes"})]}
        one = {"name": "envone", "memory_mb": 512,
               "environment": {"TABLE_NAME": "users", "STAGE": "pipeline"},
               "steps": [py_step("app.lambda_handler", environment={"STAGE": "first"})]}
        sb, d = self.start([two, one], {"code/py/app.py": ENV_APP},
                           config={"region": "eu-test-1", "pass_env": ["SLUICE_IT_PASSED"]},
                           env={"SLUICE_IT_SECRET": "do-not-leak", "SLUICE_IT_PASSED": "handed"})
        out = self.invoke(sb, "envone", {})
        env = out["env"]
        self.assertNotIn("SLUICE_IT_SECRET", env, "workers start from a clean environment")
        self.assertEqual(env.get("SLUICE_IT_PASSED"), "handed", "pass_env hands it through")
        for k in ("SLUICE_BIN", "HOME", "ASAN_OPTIONS"):
            self.assertNotIn(k, env)
        self.assertEqual(env["TABLE_NAME"], "users")
        self.assertEqual(env["STAGE"], "first", "the step's environment wins")
        self.assertEqual(env["AWS_LAMBDA_FUNCTION_NAME"], out["function"])
        self.assertEqual(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST")
        self.assertEqual(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "512")
        self.assertEqual(out["memory"], "512", "context.memory_limit_in_mb is the step's limit")
        self.assertEqual(env["_HANDLER"], "app.lambda_handler")
        self.assertTrue(env["LAMBDA_TASK_ROOT"].endswith("/code/py"), env["LAMBDA_TASK_ROOT"])
        self.assertEqual((env["AWS_REGION"], env["AWS_DEFAULT_REGION"]), ("eu-test-1",) * 2)
        self.assertEqual(env["AWS_LAMBDA_LOG_GROUP_NAME"], "/sluice/envone")
        self.assertEqual(env["AWS_LAMBDA_LOG_STREAM_NAME"], out["stream"])
        self.assertEqual(env["TZ"], ":UTC")
        self.assertIn("/usr/bin", env["PATH"])

        # one worker serves both steps of envtwo: each sees its own variables
        second = self.invoke(sb, "envtwo", {})["env"]
        self.assertEqual(second.get("ONLY_SECOND"), "yes")
        self.assertEqual(second.get("STAGE"), "pipeline", "the first step's value is not kept")
        self.assertEqual(second.get("_HANDLER"), "app.second")
        self.stop(d)

    def test_node_sees_the_same_and_default_memory_is_lambdas(self):
        if not NODE:
            self.skipTest("node is not installed")
        sb, d = self.start([{"name": "js", "environment": {"API_URL": "http://x"}, "steps": [{
            "name": "h", "runtime": "nodejs", "code": "code/js", "handler": "index.handler"}]}],
            {"code/js/index.js": ENV_JS}, env={"SLUICE_IT_SECRET": "do-not-leak"})
        out = self.invoke(sb, "js", {})
        env = out["env"]
        self.assertNotIn("SLUICE_IT_SECRET", env)
        self.assertEqual(env["API_URL"], "http://x")
        self.assertEqual(env["AWS_REGION"], "local")
        self.assertEqual(env["_HANDLER"], "index.handler")
        self.assertEqual((out["memory"], env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]), ("128", "128"),
                         "no memory_mb: Lambda's default, not the machine's RAM")
        self.stop(d)

    def test_check_refuses_reserved_names_and_values_that_are_not_text(self):
        sb = self.sandbox({"zmq": {"pull": harness.endpoint(), "router": harness.endpoint()},
                           "python": PYTHON})
        sb.drop("code/py/app.py", ENV_APP)
        sb.add_pipeline({"name": "bad", "environment": {"AWS_REGION": "x", "PORT": 8080,
                                                        "1ABC": "y"},
                         "layers": ["no/such/folder"],
                         "steps": [py_step("app.lambda_handler")]})
        r = sb.cli("check")
        text = r.stdout + r.stderr
        self.assertNotEqual(r.returncode, 0, text)
        for want in ("AWS_REGION is set by sluice", "environment.PORT: values are strings",
                     "\"1ABC\" is not a variable name", "layers[0]"):
            self.assertIn(want, text)


class Dependencies(LambdaCase):

    def test_python_finds_vendor_and_layer_packages_first(self):
        for pkg in ("distro", "blinker"):
            if not os.path.isdir(os.path.join(DIST, pkg)):
                self.skipTest("the Debian package python3-%s is not installed" % pkg)
        sb = self.sandbox({"zmq": {"pull": harness.endpoint(), "router": harness.endpoint()},
                           "python": PYTHON})
        sb.drop("code/py/app.py", DEPS_PY)
        # a deployment package's vendor/ folder, and a layer laid out as Lambda's /opt
        shutil.copytree(os.path.join(DIST, "distro"), sb.path("code/py/vendor/distro"))
        shutil.copytree(os.path.join(DIST, "blinker"), sb.path("layers/common/python/blinker"))
        sb.add_pipeline({"name": "deps", "layers": ["layers/common"],
                         "steps": [py_step("app.lambda_handler")]})
        d = self.daemon(sb)
        out = self.invoke(sb, "deps", {})
        self.assertTrue(out["distro"].startswith(sb.path("code/py/vendor/")), out)
        self.assertTrue(out["blinker"].startswith(sb.path("layers/common/python/")), out)
        self.stop(d)

    def test_node_finds_node_modules_beside_the_handler_and_in_layers(self):
        npm = shutil.which("npm")
        if not NODE or not npm:
            self.skipTest("node and npm are needed (apt-get install nodejs npm)")
        sb = self.sandbox({"zmq": {"pull": harness.endpoint(), "router": harness.endpoint()},
                           "python": PYTHON, "node": NODE})
        sb.drop("code/js/index.js", DEPS_JS)
        for prefix, pkg in (("code/js", "ms@2.1.3"), ("layers/js/nodejs", "left-pad@1.3.0")):
            r = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix",
                                sb.path(prefix), pkg], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, timeout=300)
            if r.returncode != 0:
                self.skipTest("npm could not install %s (no registry?): %s" % (pkg, r.stderr[-300:]))
        sb.add_pipeline({"name": "deps", "layers": ["layers/js"], "steps": [{
            "name": "h", "runtime": "nodejs", "code": "code/js", "handler": "index.handler"}]})
        d = self.daemon(sb)
        out = self.invoke(sb, "deps", {})
        self.assertEqual((out["ms"], out["pad"]), (172800000, "007"))
        self.assertTrue(out["msFile"].startswith(sb.path("code/js/node_modules/")), out)
        self.assertTrue(out["padFile"].startswith(sb.path("layers/js/nodejs/node_modules/")), out)
        self.stop(d)


if __name__ == "__main__":
    harness.main()
