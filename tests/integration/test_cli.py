"""The command line: check, --help, logs, stats, run's refusals, and SIGHUP
reloads."""

import os
import re
import signal
import subprocess

import harness
from harness import SluiceTestCase, echo_pipeline


def fail_pipeline(name, directory):
    return {
        "name": name,
        "trigger": {"directory": directory},
        "steps": [{"name": "boom", "handler": "fail.error"}],
        "isolation": "thread",
    }


class Check(SluiceTestCase):

    def test_check_reports_every_broken_pipeline_with_its_file(self):
        sb = self.sandbox()
        good = sb.add_pipeline(echo_pipeline("good", "inbox/good"))
        broken = {}

        def add(key, pipeline, want):
            broken[key] = (sb.add_pipeline(pipeline, file_name=key), want)

        add("unknown_key", dict(echo_pipeline("u", "inbox/u"), colour="blue"), r"colour")
        add("wrong_type", dict(echo_pipeline("w", "inbox/w"), concurrency="four"),
            r"concurrency")
        add("missing_handler", dict(echo_pipeline("m", "inbox/m"),
                                    steps=[{"name": "nothing"}]), r"handler")
        add("dup_a", echo_pipeline("twin", "inbox/twin-a"), None)
        add("dup_b", echo_pipeline("twin", "inbox/twin-b"), r"twin")
        add("missing_plugin", dict(echo_pipeline("mp", "inbox/mp"),
                                   steps=[{"handler": "nosuchplugin.handler"}]),
            r"nosuchplugin")
        add("wrong_abi", dict(echo_pipeline("wa", "inbox/wa"),
                              steps=[{"handler": "wrong_abi.handler"}]), r"(?i)ABI")
        add("no_descriptor", dict(echo_pipeline("nd", "inbox/nd"),
                                  steps=[{"handler": "no_descriptor.handler"}]),
            r"no_descriptor")
        add("unknown_function", dict(echo_pipeline("uf", "inbox/uf"),
                                     steps=[{"handler": "echo.nosuchfunction"}]),
            r"nosuchfunction")
        add("dup_steps", dict(echo_pipeline("ds", "inbox/ds"),
                              steps=[{"name": "x", "handler": "echo.handler"},
                                     {"name": "x", "handler": "echo.handler"}]), r'"x"')
        sb.drop("not-a-folder", "a file where a folder should be")
        add("not_a_folder", echo_pipeline("nf", "not-a-folder"), r"not-a-folder")
        add("bad_retry", dict(echo_pipeline("br", "inbox/br"),
                              steps=[{"handler": "echo.handler",
                                      "retry": {"max_attempts": 0}}]), r"max_attempts")
        invalid = sb.add_pipeline_text("invalid_json.json", '{"name": "bad", "steps": [')
        broken["invalid_json"] = (invalid, r"(?i)JSON")

        r = sb.cli("check")
        self.assertEqual(r.returncode, 1, "exit status\nstdout:\n%s\nstderr:\n%s"
                         % (r.stdout, r.stderr))
        lines = r.stderr.splitlines()
        context = "\nstderr:\n" + r.stderr
        for key, (path, want) in broken.items():
            if want is None:
                continue
            mine = [l for l in lines if l.startswith(path + ": ")]
            self.assertTrue(mine, "no line starting with %s: for %s%s" % (path, key, context))
            self.assertTrue(any(re.search(want, l) and ": warning: " not in l for l in mine),
                            "%s: no error line matches %r%s" % (key, want, context))
        # the duplicate names the file it collides with
        dup_b_lines = [l for l in lines if l.startswith(broken["dup_b"][0] + ": ")]
        self.assertTrue(any(broken["dup_a"][0] in l for l in dup_b_lines), context)
        # the good pipeline and the first twin have no error line
        for path in (good, broken["dup_a"][0]):
            errors = [l for l in lines if l.startswith(path + ": ") and ": warning: " not in l]
            self.assertEqual(errors, [], "unexpected error for a valid pipeline" + context)
        # every problem line names a file
        problem_lines = [l for l in lines if not re.match(r"^\d+ errors?$", l)]
        for l in problem_lines:
            self.assertRegex(l, r"^/[^:]+: ", "a line without a file" + context)

    def test_check_on_a_clean_sandbox_exits_0(self):
        sb = self.sandbox()
        sb.add_pipeline(echo_pipeline("echo", "inbox/echo"))
        sb.add_pipeline({"name": "chain", "trigger": {"directory": "inbox/chain",
                                                      "match": {"suffix": [".txt"]}},
                         "steps": [{"name": "info", "handler": "ok.info",
                                    "config": {"greeting": "hi"}, "timeout_ms": 1000,
                                    "retry": {"max_attempts": 2, "interval_ms": 10,
                                              "backoff_rate": 2.0}},
                                   {"name": "sum", "handler": "checksum.handler"}],
                         "on_failure": {"directory": "dead/chain"},
                         "concurrency": 2, "isolation": "thread"})
        r = sb.cli("check")
        self.assertEqual(r.returncode, 0, "stdout:\n%s\nstderr:\n%s" % (r.stdout, r.stderr))
        self.assertEqual([l for l in r.stderr.splitlines() if "warning" not in l], [],
                         "stderr:\n" + r.stderr)
        self.assertIn("ok", r.stdout)

    def test_check_accepts_both_isolations_and_refuses_others(self):
        sb = self.sandbox()
        sb.add_pipeline(dict(echo_pipeline("proc", "inbox/proc"), isolation="process"))
        sb.add_pipeline(dict(echo_pipeline("thr", "inbox/thr"), isolation="thread"))
        r = sb.cli("check")
        self.assertEqual(r.returncode, 0, "stderr:\n" + r.stderr)
        bad = sb.add_pipeline(dict(echo_pipeline("vm", "inbox/vm"), isolation="vm"))
        r = sb.cli("check")
        self.assertEqual(r.returncode, 1, "stderr:\n" + r.stderr)
        self.assertTrue(any(l.startswith(bad + ": ") and "isolation" in l
                            for l in r.stderr.splitlines()), r.stderr)

    def test_check_reports_config_problems(self):
        sb = self.sandbox({"workers": "many", "colour": "blue"})
        sb.add_pipeline(echo_pipeline("echo", "inbox/echo"))
        r = sb.cli("check")
        self.assertEqual(r.returncode, 1, "stderr:\n" + r.stderr)
        lines = [l for l in r.stderr.splitlines() if l.startswith(sb.config_path + ": ")]
        self.assertTrue(any("workers" in l for l in lines), r.stderr)
        self.assertTrue(any("colour" in l for l in lines), r.stderr)


class Usage(SluiceTestCase):

    def run_bin(self, *args):
        return subprocess.run([harness.sluice_bin()] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=30)

    def test_help(self):
        r = self.run_bin("--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("usage", r.stdout.lower())
        for cmd in ("run", "check", "logs", "stats"):
            self.assertIn(cmd, r.stdout)
        for cmd in ("run", "check", "logs", "stats"):
            for flag in ("--help", "-h"):
                r = self.run_bin(cmd, flag)
                self.assertEqual(r.returncode, 0, "%s %s: %s" % (cmd, flag, r.stderr))
                self.assertIn("usage: sluice " + cmd, r.stdout, "%s %s" % (cmd, flag))

    def test_unknown_command_exits_2(self):
        r = self.run_bin("frobnicate")
        self.assertEqual(r.returncode, 2)
        self.assertIn("frobnicate", r.stderr)
        self.assertIn("usage", r.stderr.lower())
        self.assertEqual(r.stdout, "")

    def test_no_command_prints_usage_and_fails(self):
        r = self.run_bin()
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("usage", r.stderr.lower())

    def test_unknown_option_exits_2(self):
        sb = self.sandbox()
        r = sb.cli("logs", "--frob")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--frob", r.stderr)
        r = sb.cli("logs", "--limit", "zero")
        self.assertEqual(r.returncode, 2, r.stderr)


class LogsAndStats(SluiceTestCase):

    def test_logs_filters_and_stats_lists_pipelines(self):
        sb = self.sandbox()
        sb.add_pipeline(echo_pipeline("good", "inbox/good"))
        sb.add_pipeline(fail_pipeline("bad", "inbox/bad"))
        d = self.daemon(sb)
        for i in range(3):
            sb.drop("inbox/good/%d.txt" % i)
        for i in range(2):
            sb.drop("inbox/bad/%d.txt" % i)
        self.wait_events(sb, 3, pipeline="good")
        self.wait_events(sb, 2, state="dead", pipeline="bad")
        rows = sb.db_rows("SELECT * FROM invocations ORDER BY id")
        self.assertEqual(len(rows), 5)

        def lines(*args):
            r = sb.cli("logs", *args)
            self.assertEqual(r.returncode, 0, "logs %s: %s" % (args, r.stderr))
            return [l for l in r.stdout.splitlines() if l.strip()]

        # the daemon is still running: logs reads alongside it
        everything = lines()
        self.assertEqual(len(everything), 5, "\n".join(everything))
        for row in rows:
            self.assertEqual(sum(row["request_id"] in l for l in everything), 1)

        good = lines("--pipeline", "good")
        self.assertEqual(len(good), 3, "\n".join(good))
        self.assertTrue(all("good/echo" in l and " ok " in l for l in good), "\n".join(good))

        failed = lines("--failed")
        self.assertEqual(len(failed), 2, "\n".join(failed))
        self.assertTrue(all("bad/boom" in l and "error" in l and "failing on purpose" in l
                            for l in failed), "\n".join(failed))

        self.assertEqual(lines("--pipeline", "good", "--failed"), [])
        self.assertEqual(lines("--pipeline", "nosuch"), [])

        last2 = lines("--limit", "2")
        self.assertEqual(len(last2), 2, "\n".join(last2))
        for row, line in zip(rows[-2:], last2):  # the most recent, oldest first
            self.assertIn(row["request_id"], line)

        one = lines("--pipeline", "bad", "--limit", "1")
        self.assertEqual(len(one), 1)
        self.assertIn([r for r in rows if r["pipeline"] == "bad"][-1]["request_id"], one[0])

        self.stop(d)
        # and after the daemon stopped
        self.assertEqual(len(lines()), 5)

        r = sb.cli("stats")
        self.assertEqual(r.returncode, 0, r.stderr)
        table = {}
        for l in r.stdout.splitlines()[1:]:
            m = re.match(r"^(\S+/\S+)\s+(\d+)\s+(\d+)\s", l)
            if m:
                table[m.group(1)] = [m.group(2), m.group(3)]
        self.assertEqual(sorted(table), ["bad/boom", "good/echo"], r.stdout)
        self.assertEqual(table["good/echo"][:2], ["3", "0"], r.stdout)   # count, errors
        self.assertEqual(table["bad/boom"][:2], ["2", "2"], r.stdout)

    def test_logs_accepts_options_in_any_order(self):
        """`sluice logs --failed -c FILE` is as valid as `sluice logs -c FILE
        --failed`: the usage lists them as independent options."""
        sb = self.sandbox()
        sb.add_pipeline(fail_pipeline("bad", "inbox/bad"))
        d = self.daemon(sb)
        sb.drop("inbox/bad/a.txt")
        self.wait_events(sb, 1, state="dead", pipeline="bad")
        self.stop(d)
        for argv in (["logs", "--failed", "-c", sb.config_path],
                     ["logs", "--pipeline", "bad", "--limit", "5", "-c", sb.config_path],
                     ["stats", "-c", sb.config_path]):
            r = sb.cli(*argv, with_config=False)
            self.assertEqual(r.returncode, 0, "sluice %s\nstderr:\n%s"
                             % (" ".join(argv), r.stderr))
            self.assertIn("bad/boom", r.stdout, " ".join(argv))

    def test_logs_without_a_database_fails_clearly(self):
        sb = self.sandbox()
        r = sb.cli("logs")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("sluice.db", r.stderr)


class RunRefusals(SluiceTestCase):

    def test_run_with_a_broken_pipeline_exits_non_zero(self):
        sb = self.sandbox()
        sb.add_pipeline(echo_pipeline("fine", "inbox/fine"))
        path = sb.add_pipeline(dict(echo_pipeline("broken", "inbox/broken"),
                                    steps=[{"handler": "echo.nosuchfunction"}]))
        d = self.daemon(sb, start=False)
        d.start(wait_running=False)
        rc = d.wait_exit(timeout=30)
        log = d.log()
        self.assertNotEqual(rc, 0, log)
        self.assertNotIn("sluice info: running", log)
        self.assertTrue(any(path in l and "nosuchfunction" in l for l in log.splitlines()), log)
        self.assertFalse(d.sanitizer_report(), log)

    def test_run_with_a_missing_config_exits_non_zero(self):
        sb = self.sandbox()
        r = subprocess.run([harness.sluice_bin(), "run", "-c", sb.path("nope.json")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("nope.json", r.stderr)


class Reload(SluiceTestCase):

    def reloads(self, d, word):
        return len(re.findall(word, d.log()))

    def test_sighup_adds_a_new_pipeline(self):
        sb = self.sandbox()
        sb.add_pipeline(echo_pipeline("first", "inbox/first"))
        d = self.daemon(sb)
        sb.drop("inbox/first/a.txt")
        self.wait_events(sb, 1, pipeline="first")

        sb.add_pipeline(echo_pipeline("second", "inbox/second"))
        sb.drop("inbox/second/waiting.txt")   # there before the reload: found by its scan
        d.send_signal(signal.SIGHUP)
        self.wait_for(lambda: "reloaded: 2 pipelines" in d.log(), what="the reload")
        sb.drop("inbox/second/b.txt")          # after the reload: seen by inotify
        self.wait_events(sb, 2, pipeline="second")
        sb.drop("inbox/first/c.txt")           # the old pipeline still serves
        self.wait_events(sb, 2, pipeline="first")
        self.stop(d)
        inv = sb.db_rows("SELECT pipeline, count(*) AS n FROM invocations GROUP BY pipeline"
                         " ORDER BY pipeline")
        self.assertEqual(inv, [{"pipeline": "first", "n": 2}, {"pipeline": "second", "n": 2}],
                         "a.txt must not run again after the reload")

    def test_sighup_with_a_broken_pipeline_keeps_the_old_ones(self):
        sb = self.sandbox()
        sb.add_pipeline(echo_pipeline("first", "inbox/first"))
        d = self.daemon(sb)
        broken = sb.add_pipeline(dict(echo_pipeline("broken", "inbox/broken"), colour="blue"))
        d.send_signal(signal.SIGHUP)
        self.wait_for(lambda: "reload refused" in d.log(), what="the refused reload")
        self.assertIn(broken, d.log())
        self.assertIn("colour", d.log())
        sb.drop("inbox/first/a.txt")
        self.wait_events(sb, 1, pipeline="first")
        # fixed, and reloaded again: now both run
        sb.add_pipeline(echo_pipeline("broken", "inbox/broken"))
        d.send_signal(signal.SIGHUP)
        self.wait_for(lambda: "reloaded: 2 pipelines" in d.log(), what="the second reload")
        sb.drop("inbox/broken/b.txt")
        self.wait_events(sb, 1, pipeline="broken")
        self.stop(d)
        self.assertEqual(sb.count("invocations"), 2)

    def test_sighup_under_load_loses_and_repeats_nothing(self):
        sb = self.sandbox()
        sb.add_pipeline({"name": "slow", "trigger": {"directory": "inbox/slow"},
                         "steps": [{"handler": "fail.slow", "timeout_ms": 5000}],
                         "concurrency": 4, "isolation": "thread"})
        d = self.daemon(sb)
        names = ["%02d.txt" % i for i in range(16)]
        for name in names[:8]:
            sb.drop("inbox/slow/" + name)
        self.wait_for(lambda: sb.count("events") == 8, what="8 events journaled")
        d.send_signal(signal.SIGHUP)
        for name in names[8:]:
            sb.drop("inbox/slow/" + name)
        d.send_signal(signal.SIGHUP)
        self.wait_for(lambda: self.reloads(d, "reloaded: 1 pipeline") >= 1,
                      what="the reloads")
        self.wait_events(sb, len(names), timeout=40)
        self.stop(d)
        per_event = sb.db_rows("SELECT e.event_id, count(i.id) AS n FROM events e"
                               " LEFT JOIN invocations i ON i.event_id = e.event_id"
                               " GROUP BY e.event_id")
        self.assertEqual(len(per_event), 16)
        self.assertEqual([r for r in per_event if r["n"] != 1], [],
                         "each event ran exactly once across reloads")


class Invocation(SluiceTestCase):
    """How the daemon finds its config and how it stops."""

    def test_relative_config_and_no_config_argument(self):
        sb = self.sandbox()
        sb.add_pipeline(echo_pipeline("files", "inbox"))
        # `-c sluice.json` from the sandbox: relative paths still resolve
        # against the config's folder, and the event holds absolute paths
        d = self.daemon(sb, argv=["run", "-c", "sluice.json"], cwd=sb.root)
        sb.drop("inbox/a.txt")
        self.wait_events(sb, 1)
        self.stop(d)
        # no -c at all: ./sluice.json is read
        d = self.daemon(sb, argv=["run"], cwd=sb.root)
        sb.drop("inbox/b.txt")
        self.wait_events(sb, 2)
        self.stop(d)
        paths = [r["p"] for r in sb.db_rows(
            "SELECT json_extract(payload, '$.Records[0].s3.object.path') AS p FROM events"
            " ORDER BY id")]
        self.assertEqual(paths, [sb.path("inbox", "a.txt"), sb.path("inbox", "b.txt")])
        r = sb.cli("check", with_config=False, cwd=sb.root)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_sigint_stops_cleanly_too(self):
        sb = self.sandbox()
        sb.add_pipeline(echo_pipeline("files", "inbox"))
        d = self.daemon(sb)
        sb.drop("inbox/a.txt")
        self.wait_events(sb, 1)
        log = self.stop(d, sig=signal.SIGINT)
        self.assertIn("stopped cleanly", log)

    def test_bundled_sample_pipelines_run(self):
        """The repository's sample pipelines (echo, checksums), copied into a
        sandbox, check clean and process files; checksum logs the SHA-256."""
        src = os.path.join(harness.env_path("SLUICE_SOURCE_DIR"), "pipelines")
        sb = self.sandbox()
        for name in ("echo.json", "checksums.json"):
            with open(os.path.join(src, name)) as f:
                sb.add_pipeline_text(name, f.read())
        r = sb.cli("check")
        self.assertEqual(r.returncode, 0, r.stderr)
        d = self.daemon(sb)
        sb.drop("var/inbox/echo/hello.txt", "hello")
        sb.drop("var/inbox/checksums/sub/abc.txt", "abc")
        self.wait_events(sb, 1, pipeline="echo")
        self.wait_events(sb, 1, pipeline="checksums")
        self.stop(d)
        steps = sb.db_rows("SELECT step, status FROM invocations WHERE pipeline = 'checksums'"
                           " ORDER BY id")
        self.assertEqual([(s["step"], s["status"]) for s in steps],
                         [("sha256", "ok"), ("record", "ok")])
        lines = [r["message"] for r in sb.db_rows("SELECT message FROM logs")]
        self.assertTrue(any(
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" in l
            and "abc.txt" in l for l in lines), lines)


if __name__ == "__main__":
    harness.main()
