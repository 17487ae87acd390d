"""The exec plugin (plugins/exec) through a running daemon: real commands and
scripts, their stdout as the response, failures with stderr's tail, the
step deadline killing the whole process group, large pipes, the environment,
and the sample pipeline pipelines/exec_script.json."""

import json
import os
import stat
import sys
import time

import harness
from harness import process_gone, zmq_pipeline
from cases import PluginCase

PY = sys.executable  # an absolute path: commands do not depend on PATH


def zmq_config():
    """Unique loopback ports for the daemon's PULL and ROUTER sockets, so tests
    can run in parallel."""
    return harness.tcp_zmq_config(max_message_bytes=8 << 20)


def exec_step(config, name="run", **extra):
    s = {"name": name, "handler": "exec.handler", "config": config}
    s.update(extra)
    return s


class ExecPlugin(PluginCase):

    invoke_timeout_ms = 30000

    def start(self, *pipelines):
        sb = self.sandbox(zmq_config())
        for p in pipelines:
            sb.add_pipeline(p)
        return sb, self.daemon(sb)

    def write_script(self, sb, name, body):
        path = sb.path(name)
        with open(path, "w") as f:
            f.write("#!%s\n%s" % (PY, body))
        os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
        return path

    # -- success ----------------------------------------------------------
    def test_json_stdout_is_the_response_and_the_environment_is_set(self):
        script = ("import json, os, sys\n"
                  "event = json.load(sys.stdin)\n"
                  "keys = ['SLUICE_REQUEST_ID', 'SLUICE_PIPELINE', 'SLUICE_STEP',\n"
                  "        'SLUICE_FUNCTION', 'SLUICE_ATTEMPT', 'GREETING', 'HOME_SEEN']\n"
                  "env = {k: os.environ.get(k) for k in keys}\n"
                  "env['REMAINING'] = int(os.environ['SLUICE_REMAINING_MS'])\n"
                  "print(json.dumps({'got': event, 'env': env, 'cwd': os.getcwd()}))\n")
        for isolation in ("process", "thread"):
            with self.subTest(isolation=isolation):
                name = "env_" + isolation
                sb, d = self.start(zmq_pipeline(name, [exec_step({
                    "command": [PY, "-c", script],
                    "env": {"GREETING": "hello world", "HOME_SEEN": "yes"},
                    "cwd": "/tmp"}, timeout_ms=8000)], isolation=isolation))
                body = self.invoke_ok(sb, name, {"id": 7, "text": "naïve"})
                self.assertEqual(body["got"], {"id": 7, "text": "naïve"})
                env = body["env"]
                rid = env.pop("SLUICE_REQUEST_ID")
                self.assertEqual(env, {"SLUICE_PIPELINE": name, "SLUICE_STEP": "run",
                                       "SLUICE_FUNCTION": "exec.handler", "SLUICE_ATTEMPT": "1",
                                       "GREETING": "hello world", "HOME_SEEN": "yes",
                                       "REMAINING": env["REMAINING"]})
                self.assertTrue(0 < env["REMAINING"] <= 8000, env)
                self.assertEqual(body["cwd"], "/tmp")
                inv = self.invocations(sb, name, 1)
                self.assertEqual([(r["status"], r["request_id"]) for r in inv], [("ok", rid)])
                logs = self.logs_n(sb, name, 1)
                self.assertEqual(len(logs), 1, logs)
                self.assertRegex(logs[0], r'^command ".*python3?[^"]*" exited with status 0 '
                                 r'after \d+ ms \(pid \d+, stdout \d+ bytes, stderr 0 bytes\)$')
                self.stop(d)

    def test_a_script_file_on_a_directory_trigger_replaces_incron(self):
        """A real script on disk, fired by a dropped file: it reads the S3
        event, writes a result file in its cwd and prints JSON."""
        sb = self.sandbox(zmq_config())
        os.makedirs(sb.path("out"))
        script = self.write_script(sb, "count_lines.py", (
            "import json, os, sys\n"
            "rec = json.load(sys.stdin)['Records'][0]['s3']['object']\n"
            "with open(rec['path'], 'rb') as f:\n"
            "    lines = f.read().count(b'\\n')\n"
            "with open(os.path.basename(rec['path']) + '.lines', 'w') as f:\n"
            "    f.write(str(lines))\n"
            "print(json.dumps({'key': rec['key'], 'lines': lines}))\n"))
        sb.add_pipeline({"name": "lines", "trigger": {"directory": "inbox"},
                         "steps": [exec_step({"command": [script], "cwd": sb.path("out")})]})
        d = self.daemon(sb)
        sb.drop("inbox/a file.txt", "one\ntwo\nthree\n")
        self.wait_events(sb, 1, pipeline="lines")
        with open(sb.path("out", "a file.txt.lines")) as f:
            self.assertEqual(f.read(), "3")
        inv = self.invocations(sb, "lines", 1)
        self.assertEqual([r["status"] for r in inv], ["ok"])
        self.assertEqual(inv[0]["output_bytes"], len('{"key": "a+file.txt", "lines": 3}'))
        self.stop(d)

    def test_text_stdout_and_empty_stdout(self):
        sb, d = self.start(
            zmq_pipeline("text", [exec_step({"command": ["/usr/bin/printf", "caf\\351 %s\\n\\n",
                                                         "ok"], "stdout": "text"})]),
            zmq_pipeline("shelltext", [exec_step({"shell": True, "command": "tr a-z A-Z",
                                                  "stdout": "text"})], isolation="thread"),
            zmq_pipeline("quiet", [exec_step({"command": ["/bin/true"]})]))
        # Latin-1 bytes are not UTF-8: replaced, and trailing newlines dropped.
        self.assertEqual(self.invoke_ok(sb, "text", {}), "caf\ufffd ok")
        self.assertEqual(self.invoke_ok(sb, "shelltext", '{"a": "b"}'), '{"A": "B"}')
        self.assertIsNone(self.invoke_ok(sb, "quiet", {"x": 1}))
        self.wait_for(lambda: any("not UTF-8" in m for m in self.logs(sb, "text")),
                      what="the warning about stdout that is not UTF-8")
        self.stop(d)

    def test_large_stdin_and_stdout_flow_together_without_deadlock(self):
        """cat echoes a 3 MiB event: both pipes fill many times over, so a
        writer that did not also read would deadlock until the deadline."""
        sb, d = self.start(zmq_pipeline("cat", [exec_step({"command": ["/bin/cat"]},
                                                          timeout_ms=20000)]),
                           zmq_pipeline("big", [exec_step({"command": [PY, "-c", (
                               "import json, sys; sys.stdin.read(); "
                               "print(json.dumps(['x' * 1000] * 5000))")]},
                               timeout_ms=20000)], isolation="thread"))
        event = {"blob": "0123456789abcdef" * (3 << 16)}
        started = time.monotonic()
        self.assertEqual(self.invoke_ok(sb, "cat", event), event)
        self.assertLess(time.monotonic() - started, 15)
        body = self.invoke_ok(sb, "big", {"blob": "y" * 200000})
        self.assertEqual(len(body), 5000)
        self.stop(d)

    def test_a_command_that_ignores_stdin_is_fine(self):
        """/bin/true never reads a 1 MiB event: the write gets EPIPE (never a
        SIGPIPE that would kill the worker) and the step still succeeds."""
        sb, d = self.start(zmq_pipeline("noread", [exec_step({"command": ["/bin/true"]})]),
                           zmq_pipeline("noread_t", [exec_step({"command": ["/bin/true"]})],
                                        isolation="thread"))
        event = {"blob": "z" * (1 << 20)}
        for name in ("noread", "noread_t"):
            for _ in range(3):
                self.assertIsNone(self.invoke_ok(sb, name, event))
            self.assertEqual([r["status"] for r in self.invocations(sb, name, 3)], ["ok"] * 3)
        self.stop(d)

    def test_concurrent_runs_in_threads(self):
        sb, d = self.start(zmq_pipeline("par", [exec_step({"command": [PY, "-c", (
            "import json, sys, time; e = json.load(sys.stdin); time.sleep(0.2); "
            "print(json.dumps({'n': e['n']}))")]}, timeout_ms=10000)],
            isolation="thread", concurrency=4))
        n = 12
        for i in range(n):
            r = sb.cli("publish", "par.x", json.dumps({"n": i}))
            self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_events(sb, n, pipeline="par", timeout=30)
        inv = self.invocations(sb, "par", n)
        self.assertEqual([r["status"] for r in inv], ["ok"] * n)
        self.assertEqual(sorted(r["output_bytes"] for r in inv),
                         sorted(len(json.dumps({"n": i})) for i in range(n)))
        self.stop(d)

    # -- failures ---------------------------------------------------------
    def test_a_non_zero_exit_fails_with_the_tail_of_stderr(self):
        code = ("import sys\n"
                "sys.stderr.write('BEGINNING-OF-STDERR\\n' + 'noise line\\n' * 500)\n"
                "sys.stderr.write('Traceback: ValueError: bad input in record 3\\n')\n"
                "print('{\"ignored\": true}')\n"
                "sys.exit(3)\n")
        for isolation in ("process", "thread"):
            with self.subTest(isolation=isolation):
                name = "exit_" + isolation
                sb, d = self.start(zmq_pipeline(name, [exec_step({"command": [PY, "-c", code]})],
                                                isolation=isolation))
                msg = self.invoke_fails(sb, name, {"n": 1}, "CommandFailed")
                self.assertRegex(msg, r'^command "[^"]+" exited with status 3 after \d+ ms; '
                                 r'stderr \(last \d+ of \d+ bytes\): ')
                self.assertTrue(msg.endswith("ValueError: bad input in record 3"), msg)
                self.assertNotIn("BEGINNING-OF-STDERR", msg)
                inv = self.invocations(sb, name, 1)
                self.assertEqual([r["status"] for r in inv], ["error"])
                self.assertTrue(inv[0]["error"].endswith("bad input in record 3"), inv[0]["error"])
                logs = self.logs_n(sb, name, 2)
                self.assertEqual(len(logs), 2, logs)
                self.assertIn("exited with status 3", logs[0])
                self.assertIn("stderr (last 2048 of", logs[1])
                self.assertTrue(logs[1].endswith("bad input in record 3"), logs[1])
                self.stop(d)

    def test_a_crash_by_signal_is_named(self):
        sb, d = self.start(zmq_pipeline("sig", [exec_step({
            "shell": True, "command": "echo about to die >&2; kill -SEGV $$"})]))
        msg = self.invoke_fails(sb, "sig", {}, "CommandFailed")
        self.assertRegex(msg, r'was killed by signal 11 \(SIGSEGV\) after \d+ ms; '
                         r'stderr: about to die$')
        self.stop(d)

    def test_the_deadline_kills_the_whole_process_group(self):
        """A shell that started a background job and then hangs: at timeout_ms
        both die, the step fails as a timeout, and the daemon answers on time."""
        for isolation in ("process", "thread"):
            with self.subTest(isolation=isolation):
                name = "hang_" + isolation
                sb = self.sandbox(zmq_config())
                pids = sb.path("pids")
                sb.add_pipeline(zmq_pipeline(name, [exec_step({
                    "shell": True,
                    "command": "sleep 60 & echo $! > %s.bg; echo $$ > %s.sh; "
                               "echo still working >&2; wait" % (pids, pids)},
                    timeout_ms=700)], isolation=isolation))
                d = self.daemon(sb)
                started = time.monotonic()
                msg = self.invoke_fails(sb, name, {}, "Sandbox.Timedout")
                elapsed = time.monotonic() - started
                self.assertLess(elapsed, 5, "the timeout took %.1f s" % elapsed)
                self.assertRegex(msg, r'^shell command "sleep 60 & .*" was still running at the '
                                 r"step's deadline and was killed \(SIGKILL to its process "
                                 r'group\) after \d+ ms; raise the step\'s "timeout_ms" or make '
                                 r"the command faster; stderr: still working$")
                for f in (pids + ".bg", pids + ".sh"):
                    with open(f) as pid_file:
                        pid = int(pid_file.read())
                    self.wait_for(lambda: process_gone(pid), timeout=5,
                                  what="process %d (%s) to be killed" % (pid, f))
                inv = self.invocations(sb, name, 1)
                self.assertEqual(len(inv), 1)
                self.assertLess(inv[0]["duration_ms"], 700 + 1000)
                # exec reported its own deadline (Sandbox.Timedout): a timeout,
                # and the worker survived (the daemon did not have to kill it).
                self.assertEqual(inv[0]["status"], "timeout", inv[0])
                self.assertNotIn("worker", inv[0]["error"])
                self.stop(d)

    def test_output_that_is_not_json_or_too_large_fails_clearly(self):
        sb, d = self.start(
            zmq_pipeline("plain", [exec_step({"command": ["/bin/echo", "hello", "world"]})]),
            zmq_pipeline("two", [exec_step({"shell": True, "command": "echo '{\"a\":1}'; "
                                            "echo '{\"b\":2}'"})]),
            zmq_pipeline("flood", [exec_step({"command": [PY, "-c",
                                                          "print('[' + '1,' * 5000 + '1]')"],
                                              "max_stdout_bytes": 1000})], isolation="thread"))
        msg = self.invoke_fails(sb, "plain", {}, "InvalidOutput")
        self.assertEqual(msg, 'command "/bin/echo" exited with status 0, but its stdout is not '
                         "one JSON value: an unexpected character where a JSON value should "
                         'start, at byte 0 of 12; stdout begins "hello world". Print exactly one '
                         "JSON value (e.g. json.dumps in Python), or set \"stdout\": \"text\" in "
                         "the step config to get stdout as a JSON string")
        msg = self.invoke_fails(sb, "two", {}, "InvalidOutput")
        self.assertIn("more text after the JSON value (print exactly one value), at byte 8 of 16",
                      msg)
        msg = self.invoke_fails(sb, "flood", {}, "OutputTooLarge")
        self.assertRegex(msg, r'wrote more than 1000 bytes to stdout \(max_stdout_bytes\) and was '
                         r'killed after \d+ ms; raise "max_stdout_bytes"')
        self.stop(d)

    def test_configuration_and_start_errors_say_how_to_fix_them(self):
        # What the declared keys settle: `sluice check`, before anything runs.
        checked = [
            ({}, 'config: missing required key "command": the program and its arguments'),
            ({"command": ["ls"], "comand": 1}, 'config: unknown key "comand" (did you mean '
             '"command"?)'),
            ({"command": ["ls"], "shell": "yes"}, "config.shell: expected true or false, got a "
             "string"),
            ({"command": ["ls"], "env": ["A=1"]}, "config.env: expected an object, got an array"),
            ({"command": ["ls"], "max_stdout_bytes": 1.5}, "config.max_stdout_bytes: expected "
             "an integer, got a number"),
        ]
        sb = self.sandbox(zmq_config())
        self.check_refuses(sb, checked, exec_step)
        # What the plugin's create refuses (Runtime.InitError, every time) and
        # what only running the command shows.
        init = "Runtime.InitError"
        cases = [
            ({"command": "ls -l"}, init,
             'config.command is a string, but "shell" is not true'),
            ({"command": ["ls", 3]}, init,
             "config.command[1] must be a string, not a number (quote every argument)"),
            ({"command": []}, init, "config.command must be a non-empty array"),
            ({"command": ["ls"], "env": {"N": 1}}, init,
             'config.env.N must be a string, not a number (quote it: "N": "...")'),
            ({"command": ["ls"], "env": {"SLUICE_STEP": "x"}}, init,
             "config.env: SLUICE_STEP is set by sluice for every run and cannot be overridden"),
            ({"command": ["ls"], "env": {"A-B": "x"}}, init,
             'config.env: "A-B" is not a usable variable name'),
            ({"command": ["ls"], "cwd": "/nonexistent/dir"}, init,
             'config.cwd "/nonexistent/dir": No such file or directory'),
            ({"command": ["ls"], "stdout": "xml"}, init,
             'config.stdout must be "json"'),
            ({"command": ["/nonexistent/prog"]}, "SpawnError",
             'cannot start "/nonexistent/prog": no such file'),
            ({"command": ["no-such-program-here"]}, "SpawnError",
             "cannot start \"no-such-program-here\": not found on the daemon's PATH"),
            ({"command": ["NOT_EXECUTABLE"]}, "SpawnError",
             'cannot start "NOT_EXECUTABLE": permission denied (is it an executable file? '
             'chmod +x it)'),
            ({"command": ["NO_SHEBANG"]}, "SpawnError",
             'cannot start "NO_SHEBANG": not a program this system can run (a script needs a '
             '#! line naming its interpreter)'),
        ]
        sb = self.sandbox(zmq_config())
        files = {"NOT_EXECUTABLE": (0o644, "#!/bin/sh\necho '{}'\n"),
                 "NO_SHEBANG": (0o755, "\x7fELF not really\n")}
        for name, (mode, text) in files.items():
            with open(sb.path(name), "w") as f:
                f.write(text)
            os.chmod(sb.path(name), mode)

        def real(value):
            if isinstance(value, str):
                return sb.path(value) if value in files else value
            return [real(v) for v in value] if isinstance(value, list) else value

        for i, (cfg, _, _) in enumerate(cases):
            sb.add_pipeline(zmq_pipeline("c%d" % i, [exec_step(
                {k: real(v) for k, v in cfg.items()})]))
        d = self.daemon(sb)
        for i, (cfg, error_type, want) in enumerate(cases):
            with self.subTest(config=cfg):
                msg = self.invoke_fails(sb, "c%d" % i, {}, error_type)
                for name in files:
                    want = want.replace('"%s"' % name, '"%s"' % sb.path(name))
                self.assertIn(want, msg)
        self.stop(d)

    # -- the sample pipeline ----------------------------------------------
    def test_the_sample_pipeline_works_as_shipped(self):
        sb = self.sandbox(zmq_config())
        sample = self.copy_sample(sb, "exec_script.json")
        self.assertEqual(sb.cli("check").returncode, 0, sb.cli("check").stderr)
        d = self.daemon(sb)
        sb.drop(os.path.join(sample["trigger"]["directory"], "report.csv"), "a,b\n1,2\n")
        self.wait_events(sb, 1, pipeline=sample["name"])
        inv = self.invocations(sb, sample["name"], len(sample["steps"]))
        self.assertEqual([r["status"] for r in inv], ["ok"] * len(sample["steps"]))
        # The command's own JSON answer, as the next step received it.
        body = self.invoke_ok(sb, sample["name"], {"Records": [{"s3": {"object": {
            "key": "report.csv", "path": sb.path(sample["trigger"]["directory"], "report.csv"),
            "size": 8}}}]})
        self.assertEqual(body, {"key": "report.csv", "lines": 2, "bytes": 8})
        self.stop(d)


if __name__ == "__main__":
    harness.main()
