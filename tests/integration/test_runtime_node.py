"""Node.js handlers (runtimes/node/bootstrap.js) through a running daemon: async, callback
and plain handlers, CommonJS and ES modules; succeeding, throwing, rejecting, timing out,
logging a lot, returning each JSON type; the context object; cold starts (init_ms on the
first invocation only); syntax errors reported clearly; the users-js sample pipeline."""

import json
import os
import shutil
import textwrap
import time

import harness
from harness import process_gone
from cases import ScriptRuntimeCase, script_step

NODE = "/usr/bin/node" if os.access("/usr/bin/node", os.X_OK) else shutil.which("node")


def js_step(handler, name=None, code="code/js", **extra):
    return script_step("nodejs", handler, name, code, **extra)


APP = textwrap.dedent('''\
    const fs = require('fs');
    console.log('logged while loading');
    const loadedAt = Date.now();

    exports.handler = async (event, context) => {
      console.log('hello from', context.functionName, 'marker-js-stdout', { n: 1 });
      console.info('an info line');
      console.warn('a warning');
      console.error('an error line');
      process.stdout.write('written ');
      process.stdout.write('in parts marker-js-write\\n');
      return {
        statusCode: 201,
        event,
        context: {
          awsRequestId: context.awsRequestId, functionName: context.functionName,
          functionVersion: context.functionVersion, memoryLimitInMB: context.memoryLimitInMB,
          logGroupName: context.logGroupName, logStreamName: context.logStreamName,
          invokedFunctionArn: context.invokedFunctionArn,
          remaining: context.getRemainingTimeInMillis(),
          waits: context.callbackWaitsForEmptyEventLoop,
          pipeline: context.pipeline, step: context.step, config: context.config,
          attempt: context.attempt,
        },
        pid: process.pid,
      };
    };

    exports.echo = async (event) => event.v;
    exports.plain = (event) => ({ plain: event.v });
    exports.nothing = async () => {};

    exports.fail = async (event) => {
      const inner = () => { throw new TypeError(`bad input: ${event.x}`); };
      inner();
    };
    exports.reject = () => Promise.reject(new RangeError('rejected on purpose'));
    exports.bigint = async () => ({ n: 10n });
    exports.serverError = async () => ({ statusCode: 502, body: 'bad gateway' });

    exports.callback = (event, context, callback) => {
      setTimeout(() => callback(null, { via: 'callback', v: event.v }), 10);
    };
    exports.callbackError = (event, context, callback) => callback(new Error('callback failed'));
    // Lambda's rule: a callback answer waits for the event loop to empty...
    exports.waits = (event, context, callback) => {
      setTimeout(() => console.log('timer after the answer'), 300);
      callback(null, 'answered');
    };
    // ...unless callbackWaitsForEmptyEventLoop is false.
    exports.noWait = (event, context, callback) => {
      context.callbackWaitsForEmptyEventLoop = false;
      setTimeout(() => {}, 300);
      callback(null, 'answered at once');
    };

    exports.sleepy = async (event) => {
      if (event.pidfile) {
        fs.writeFileSync(event.pidfile, String(process.pid));
        await new Promise((resolve) => setTimeout(resolve, 30000));
      }
      return { pid: process.pid };
    };
    exports.busy = (event) => {
      fs.writeFileSync(event.pidfile, String(process.pid));
      for (;;) {}
    };
    exports.quick = async () => ({ pid: process.pid, loadedAt });
    exports.flood = async (event) => {
      for (let i = 0; i < event.n; i++) console.log('flood line', i);
      process.stdout.write('z'.repeat(100000) + '\\n');
      return { printed: event.n };
    };
''')

ESM = textwrap.dedent('''\
    import { basename } from 'node:path';
    const base = await Promise.resolve(basename(import.meta.url));
    export const handler = async (event, context) => ({ esm: true, base, id: context.awsRequestId });
''')


class NodeRuntime(ScriptRuntimeCase):

    interpreters = {"node": NODE}
    code_files = {"code/js/app.js": APP}

    def setUp(self):
        super().setUp()
        if not NODE:
            self.skipTest("node is not installed")

    # -- tests ------------------------------------------------------------------------

    def test_async_handler_succeeds_with_lambda_context_and_logs(self):
        sb, d = self.start({"name": "js", "memory_mb": 4096,
                            "steps": [js_step("app.handler", name="main", config={"k": "v"})]})
        rc, out, rid = self.invoke(sb, "js", {"hello": "world"})
        self.assertEqual(rc, 0, out)
        self.assertEqual(out["statusCode"], 201)
        body = out["body"]
        self.assertEqual(body["event"], {"hello": "world"})
        ctx = body["context"]
        self.assertEqual(ctx["awsRequestId"], rid)
        self.assertEqual(ctx["functionName"], "app.handler")
        self.assertEqual(ctx["functionVersion"], "$LATEST")
        self.assertEqual(ctx["memoryLimitInMB"], "4096")
        self.assertEqual(ctx["logGroupName"], "/sluice/js")
        self.assertIn("[$LATEST]", ctx["logStreamName"])
        self.assertTrue(ctx["invokedFunctionArn"].startswith("arn:"), ctx)
        self.assertTrue(0 < ctx["remaining"] <= 3000, ctx)
        self.assertIs(ctx["waits"], True)
        self.assertEqual((ctx["pipeline"], ctx["step"], ctx["attempt"]), ("js", "main", 1))
        self.assertEqual(ctx["config"], {"k": "v"})

        row = self.wait_rows(sb, rid)[0]
        self.assertEqual((row["status"], row["status_code"], row["step"]), ("ok", 201, "main"))
        self.assertGreater(row["max_memory_kb"], 1000)
        want = [("INFO", "logged while loading"),
                ("INFO", "hello from app.handler marker-js-stdout { n: 1 }"),
                ("INFO", "an info line"), ("WARN", "a warning"), ("ERROR", "an error line"),
                ("INFO", "written in parts marker-js-write")]
        self.wait_for(lambda: len(self.log_rows(sb, rid)) >= len(want) + 1,
                      what=lambda: "log lines (have %r)" % self.log_rows(sb, rid))
        logs = [(r["level"], r["message"]) for r in self.log_rows(sb, rid)]
        for line in want:
            self.assertIn(line, logs)
        self.stop(d)
        for marker in ("marker-js-stdout", "marker-js-write"):
            self.assertNotIn(marker, d.log(), "handler output reached the daemon's stdout")

    def test_returns_each_json_type(self):
        sb, d = self.start({"name": "echo", "steps": [js_step("app.echo")]},
                           {"name": "plain", "steps": [js_step("app.plain")]},
                           {"name": "nothing", "steps": [js_step("app.nothing")]},
                           {"name": "bigint", "steps": [js_step("app.bigint")]},
                           {"name": "s502", "steps": [js_step("app.serverError")]})
        self.check_echo_returns_each_json_type(sb)
        rc, out, _ = self.invoke(sb, "plain", {"v": 3})
        self.assertEqual((rc, out["body"]), (0, {"plain": 3}))
        rc, out, _ = self.invoke(sb, "nothing", {})
        self.assertEqual((rc, out["body"]), (0, None))
        rc, out, _ = self.invoke(sb, "bigint", {})
        self.assertEqual(rc, 1, out)
        self.assertEqual(out["errorType"], "Runtime.MarshalError")
        self.assertIn("BigInt", out["errorMessage"])
        rc, out, rid = self.invoke(sb, "s502", {})
        self.assertEqual((rc, out["status"]), (1, "error"))
        self.assertEqual(self.wait_rows(sb, rid)[0]["status_code"], 502)
        self.stop(d)

    def test_thrown_error_and_rejected_promise(self):
        sb, d = self.start({"name": "fail", "steps": [js_step("app.fail")]},
                           {"name": "reject", "steps": [js_step("app.reject")]},
                           {"name": "cberr", "steps": [js_step("app.callbackError")]})
        rc, out, rid = self.invoke(sb, "fail", {"x": 5})
        self.assertEqual(rc, 1, out)
        self.assertEqual(out["errorType"], "TypeError")
        self.assertEqual(out["errorMessage"], "bad input: 5")
        trace = out["stackTrace"]
        self.assertEqual(trace[0], "TypeError: bad input: 5")
        app = sb.path("code/js/app.js")
        self.assertTrue(any(app in line for line in trace[1:]), trace)
        self.assertFalse(any("bootstrap.js" in line for line in trace), trace)
        row = self.wait_rows(sb, rid)[0]
        self.assertEqual((row["status"], row["error"]), ("error", "bad input: 5"))
        self.wait_for(lambda: any(r["level"] == "ERROR" and "TypeError: bad input: 5" in
                                  r["message"] for r in self.log_rows(sb, rid)),
                      what="the error's log line")
        rc, out, _ = self.invoke(sb, "reject", {})
        self.assertEqual((rc, out["errorType"], out["errorMessage"]),
                         (1, "RangeError", "rejected on purpose"))
        rc, out, _ = self.invoke(sb, "cberr", {})
        self.assertEqual((rc, out["errorType"], out["errorMessage"]), (1, "Error", "callback failed"))
        self.stop(d)

    def test_callback_style_and_waiting_for_the_event_loop(self):
        sb, d = self.start({"name": "cb", "steps": [js_step("app.callback")]},
                           {"name": "waits", "steps": [js_step("app.waits")]},
                           {"name": "nowait", "steps": [js_step("app.noWait")]})
        rc, out, _ = self.invoke(sb, "cb", {"v": 9})
        self.assertEqual((rc, out["body"]), (0, {"via": "callback", "v": 9}))
        rc, out, rid = self.invoke(sb, "waits", {})
        self.assertEqual((rc, out["body"]), (0, "answered"))
        row = self.wait_rows(sb, rid)[0]
        self.assertGreaterEqual(row["duration_ms"], 250, "the answer waited for the timer")
        self.wait_for(lambda: any(r["message"] == "timer after the answer"
                                  for r in self.log_rows(sb, rid)), what="the timer's line")
        rc, out, rid = self.invoke(sb, "nowait", {})
        self.assertEqual((rc, out["body"]), (0, "answered at once"))
        self.assertLess(self.wait_rows(sb, rid)[0]["duration_ms"], 250)
        self.stop(d)

    def test_es_modules(self):
        files = {"code/js/app.js": APP, "code/mjs/index.mjs": ESM,
                 "code/typemod/package.json": '{"type": "module"}',
                 "code/typemod/index.js": ESM}
        sb, d = self.start({"name": "mjs", "steps": [js_step("index.handler", code="code/mjs")]},
                           {"name": "typemod",
                            "steps": [js_step("index.handler", code="code/typemod")]},
                           files=files)
        for name, base in (("mjs", "index.mjs"), ("typemod", "index.js")):
            rc, out, rid = self.invoke(sb, name, {})
            self.assertEqual(rc, 0, out)
            self.assertEqual(out["body"], {"esm": True, "base": base, "id": rid})
        self.stop(d)

    def test_timeout_kills_node_and_the_next_invocation_starts_cold(self):
        sb, d = self.start({"name": "slow", "concurrency": 1,
                            "steps": [js_step("app.sleepy", timeout_ms=400)]},
                           {"name": "busy", "concurrency": 1,
                            "steps": [js_step("app.busy", timeout_ms=400)]})
        for name in ("slow", "busy"):  # waiting on a timer; spinning the CPU
            pidfile = sb.path("pid-" + name)
            t0 = time.monotonic()
            rc, out, rid = self.invoke(sb, name, {"pidfile": pidfile})
            self.assertLess(time.monotonic() - t0, 10)
            self.assertEqual(rc, 1, out)
            self.assertEqual((out["status"], out["errorType"]), ("timeout", "Sandbox.Timedout"))
            self.assertEqual(self.wait_rows(sb, rid)[0]["status"], "timeout")
            with open(pidfile) as f:
                pid = int(f.read())
            self.wait_for(lambda: process_gone(pid), what="the timed-out node to be gone")
        rc, out, rid = self.invoke(sb, "slow", {})
        self.assertEqual(rc, 0, out)
        self.assertIsNotNone(self.wait_rows(sb, rid)[0]["init_ms"])
        self.stop(d)

    def test_logging_a_lot_is_bounded_and_the_daemon_keeps_serving(self):
        sb, d = self.start({"name": "flood", "concurrency": 1, "steps": [js_step("app.flood")]},
                           {"name": "fast", "steps": [js_step("app.quick")]})
        rc, out, rid = self.invoke(sb, "flood", {"n": 30000})
        self.assertEqual((rc, out["body"]), (0, {"printed": 30000}))
        self.wait_for(lambda: any("log output truncated" in r["message"]
                                  for r in self.log_rows(sb, rid)), what="the truncation line")
        n = sb.count("logs WHERE request_id = ?", (rid,))
        self.assertGreaterEqual(n, 10000)
        self.assertLessEqual(n, 10005)
        rc, out, _ = self.invoke(sb, "fast", {})
        self.assertEqual(rc, 0, out)
        rc, out, rid2 = self.invoke(sb, "flood", {"n": 3})
        self.assertEqual(rc, 0, out)
        self.wait_for(lambda: sum(len(r["message"]) for r in self.log_rows(sb, rid2)
                                  if r["message"].startswith("zzz")) >= 100000,
                      what="the long line, in pieces")
        lines = [r["message"] for r in self.log_rows(sb, rid2)]
        self.assertEqual([x for x in lines if x.startswith("flood")],
                         ["flood line %d" % i for i in range(3)])
        self.assertTrue(all(len(x) <= 16384 for x in lines))
        self.stop(d)
        self.assertNotIn("flood line", d.log())

    def test_init_ms_on_the_first_invocation_only(self):
        self.check_init_ms_on_the_first_invocation_only(js_step("app.quick"))

    def test_syntax_errors_are_reported_clearly(self):
        bad = "exports.handler = async (event) => {\n  return {a: 1\n};}}\n"
        files = {"code/cjs/index.js": bad, "code/esm/index.mjs": bad.replace(
            "exports.handler =", "export const handler ="),
            "code/missing/index.js": "const x = require('no-such-package-here');\n"
                                     "exports.handler = async () => x;\n"}
        sb, d = self.start({"name": "cjs", "concurrency": 1,
                            "steps": [js_step("index.handler", code="code/cjs")]},
                           {"name": "esm", "steps": [js_step("index.handler", code="code/esm")]},
                           {"name": "missing",
                            "steps": [js_step("index.handler", code="code/missing")]},
                           files=files)
        for name, file in (("cjs", "code/cjs/index.js"), ("esm", "code/esm/index.mjs")):
            rc, out, rid = self.invoke(sb, name, {})
            self.assertEqual(rc, 1, out)
            self.assertEqual(out["errorType"], "Runtime.UserCodeSyntaxError")
            self.assertIn("SyntaxError: Unexpected token '}'", out["errorMessage"])
            self.assertIn("%s, line 3" % sb.path(file), out["errorMessage"])
            self.assertIn("};}}", out["stackTrace"])
            row = self.wait_rows(sb, rid)[0]
            self.assertEqual(row["status"], "error")
            self.assertIn("line 3", row["error"])
        rc, out, _ = self.invoke(sb, "missing", {})
        self.assertEqual(out["errorType"], "Runtime.ImportModuleError")
        self.assertIn("Cannot find module 'no-such-package-here'", out["errorMessage"])
        # Fixed on disk: the next invocation loads the new file.
        sb.drop("code/cjs/index.js", "exports.handler = async () => ({fixed: true});\n")
        rc, out, _ = self.invoke(sb, "cjs", {})
        self.assertEqual((rc, out["body"]), (0, {"fixed": True}), out)
        self.assertTrue(d.alive())
        self.stop(d)

    def test_sample_users_pipeline(self):
        repo = harness.env_path("SLUICE_SOURCE_DIR")
        sb = self.sandbox(dict(harness.tcp_zmq_config(), node=NODE))
        shutil.copy(os.path.join(repo, "pipelines", "users-js.json"), sb.pipelines_dir)
        os.symlink(os.path.join(repo, "handlers"), sb.path("handlers"))
        check = sb.cli("check")
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        d = self.daemon(sb)
        rc, out, rid = self.invoke(sb, "users-js", {})
        self.assertEqual(rc, 0, out)
        self.assertEqual(out["statusCode"], 200)
        resp = out["body"]
        self.assertEqual(resp["statusCode"], 200)
        users = json.loads(resp["body"])
        self.assertEqual(len(users), 3)
        self.assertEqual(users[0]["name"], "Ada Lovelace")
        rc, out, _ = self.invoke(sb, "users-js", {"pathParameters": {"id": "2"}})
        self.assertEqual(json.loads(out["body"]["body"])["name"], "Alan Turing")
        rc, out, _ = self.invoke(sb, "users-js", {"pathParameters": {"id": "99"}})
        self.assertEqual((rc, out["statusCode"]), (0, 404))
        self.wait_for(lambda: any("3 users" in r["message"] for r in self.log_rows(sb, rid)),
                      what="the handler's log line")
        self.stop(d)


if __name__ == "__main__":
    harness.main()
