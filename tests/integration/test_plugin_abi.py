"""Plugin ABI 2 through a running daemon (issue 20), and the containment
items of issue 21 that live in the plugin host: an ABI 1 plugin (ok.so,
built from the frozen ABI 1 header) and an ABI 2 one (v2.so) side by side in
both isolations, the read-only context's event id staying the same across a
retry, what a C handler prints becoming its invocation's log lines (capped),
the seccomp sandbox refusing a signal to the daemon, and checksum reading only
inside its trigger folder or config.allow."""

import json
import os

import harness
from harness import step, zmq_pipeline
from cases import PluginCase


def under_asan():
    """Is sluice built with AddressSanitizer? (Its leak checks need ptrace.)"""
    return harness.sanitizer() == "asan"


def s3_event(path):
    return {"Records": [{"s3": {"object": {"key": os.path.basename(path), "path": path}}}]}


class PluginAbi(PluginCase):

    ok_status = None  # invoke_ok: the exit status only

    def new_sandbox(self):
        return self.sandbox()  # ZeroMQ endpoints of its own: see harness.Sandbox

    def rows(self, sb, sql, params=(), n=1):
        """Rows of sql once there are at least n (rows are committed in
        batches, shortly after `invoke` answers)."""
        self.wait_for(lambda: len(sb.db_rows(sql, params)) >= n, what="%d rows of %s" % (n, sql))
        return sb.db_rows(sql, params)

    # -- ABI 1 and ABI 2 --------------------------------------------------
    def test_abi1_and_abi2_plugins_run_side_by_side_in_both_isolations(self):
        sb = self.new_sandbox()
        memory_mb = 0 if harness.sanitizer() else 512  # shadow memory: no RLIMIT_AS
        for iso in ("process", "thread"):
            sb.add_pipeline(zmq_pipeline("both_" + iso, [
                step("v2.info", "new", {"greeting": "hi " + iso}),
                step("ok.info", "old", {"from": "v1"}),
            ], isolation=iso))
            limits = {"memory_mb": memory_mb} if memory_mb and iso == "process" else {}
            sb.add_pipeline(zmq_pipeline("new_" + iso, [
                step("v2.info", "new", {"greeting": "hi " + iso})], isolation=iso, **limits))
        d = self.daemon(sb)
        for iso in ("process", "thread"):
            with self.subTest(isolation=iso):
                # the ABI 1 handler answers as it always did
                old = self.invoke_ok(sb, "both_" + iso, {"n": 1})
                self.assertEqual(old["config"], {"from": "v1"})
                self.assertEqual((old["pipeline"], old["step"], old["function"]),
                                 ("both_" + iso, "old", "ok.info"))
                # the ABI 2 one sees its instance and the whole context
                body = self.invoke_ok(sb, "new_" + iso, {"n": 2})
                again = self.invoke_ok(sb, "new_" + iso, {"n": 3})
                self.assertEqual(body["greeting"], "hi " + iso)
                self.assertEqual(body["limit"], 2.5)  # the declared default
                if iso == "thread":  # the daemon's one instance of the step
                    self.assertEqual(again["serial"], body["serial"])
                    self.assertEqual(again["calls"], body["calls"] + 1)
                else:  # each worker made its own, once (workers take turns)
                    self.assertEqual((body["creates"], again["creates"]), (1, 1))
                self.assertEqual((body["function"], body["pipeline"], body["step"]),
                                 ("v2.info", "new_" + iso, "new"))
                self.assertEqual(body["attempt"], 1)
                self.assertTrue(body["source"].startswith("invoke"), body["source"])
                self.assertGreater(body["remaining_ms"], 0)
                # the worker's memory limit (the pipeline's memory_mb, else Lambda's
                # default 128, as the script runtimes report it); threads have none
                self.assertEqual(body["memory_limit_mb"],
                                 (memory_mb or 128) if iso == "process" else 0)
                inv = self.rows(sb, "SELECT request_id, event_id FROM invocations WHERE "
                                "pipeline = ? ORDER BY id", ("new_" + iso,), n=2)
                self.assertEqual((body["request_id"], body["event_id"]),
                                 (inv[0]["request_id"], inv[0]["event_id"]))
                self.assertNotEqual(body["event_id"], again["event_id"])
        self.stop(d)

    def test_the_event_id_stays_the_same_across_retries(self):
        sb = self.sandbox()
        for iso in ("process", "thread"):
            sb.add_pipeline({"name": "flaky_" + iso, "trigger": {"directory": "inbox/" + iso},
                             "isolation": iso, "steps": [step(
                                 "v2.flaky", "flaky", {"greeting": "again"},
                                 retry={"max_attempts": 2, "interval_ms": 10})],
                             "on_success": {"directory": "done/" + iso}})
        d = self.daemon(sb)
        for iso in ("process", "thread"):
            sb.drop("inbox/%s/a.txt" % iso)
        self.wait_events(sb, 2)
        for iso in ("process", "thread"):
            with self.subTest(isolation=iso):
                inv = sb.db_rows("SELECT attempt, status, event_id, error FROM invocations "
                                 "WHERE pipeline = ? ORDER BY id", ("flaky_" + iso,))
                self.assertEqual([(r["attempt"], r["status"]) for r in inv],
                                 [(1, "error"), (2, "ok")])
                event_id = inv[0]["event_id"]
                self.assertEqual(inv[1]["event_id"], event_id)
                # what the handler saw, both times: the event's own id
                self.assertEqual(inv[0]["error"], "attempt 1 of event %s fails" % event_id)
                done = os.listdir(sb.path("done", iso))
                with open(sb.path("done", iso, done[0])) as f:
                    record = json.load(f)
                payload = record.get("responsePayload", record)
                self.assertEqual(payload["event_id"], event_id, record)
                self.assertEqual(payload["attempt"], 2)
                self.assertEqual(payload["source"], "directory:inbox/" + iso)
        self.stop(d)

    # -- issue 21: containment --------------------------------------------
    def test_what_a_c_handler_prints_becomes_its_log_lines_capped(self):
        sb = self.new_sandbox()
        sb.add_pipeline(zmq_pipeline("chatty", [step("crash.print", "print")]))
        d = self.daemon(sb)
        self.invoke_ok(sb, "chatty", {"lines": 2})
        rid = self.rows(sb, "SELECT request_id FROM invocations WHERE pipeline = 'chatty'")[0][
            "request_id"]
        logs = self.rows(sb, "SELECT level, message FROM logs WHERE request_id = ? ORDER BY id",
                         (rid,), n=4)
        lines = [(r["level"], r["message"]) for r in logs]
        self.assertIn(("INFO", "out line 0"), lines)
        self.assertIn(("INFO", "out line 1"), lines)
        self.assertIn(("INFO", "no newline"), lines)
        self.assertIn(("ERROR", "err line"), lines)
        # a flood is cut, with one line saying how much
        self.invoke_ok(sb, "chatty", {"lines": 30000})
        rid = self.rows(sb, "SELECT request_id FROM invocations WHERE pipeline = 'chatty' "
                        "ORDER BY id", n=2)[1]["request_id"]
        self.wait_for(lambda: sb.count("logs WHERE request_id = ? AND message LIKE "
                                       "'[sluice: % more bytes of output cut%'", (rid,)) == 1,
                      what="the line that says the output was cut")
        self.assertEqual(sb.count("logs WHERE request_id = ? AND message LIKE 'out line %'",
                                  (rid,)), 10000)
        self.stop(d)
        # none of it went to the daemon's own output
        self.assertNotIn("out line", d.log())
        self.assertNotIn("err line", d.log())

    def test_a_sandboxed_handler_cannot_signal_the_daemon(self):
        if under_asan():  # its leak check stops the world with ptrace, which the sandbox refuses
            self.skipTest("LeakSanitizer cannot run in a seccomp-sandboxed worker")
        sb = self.new_sandbox()
        sb.add_pipeline(zmq_pipeline("signal", [step("crash.kill_parent", "kill")],
                                     sandbox=True))
        sb.add_pipeline(zmq_pipeline("self_abort", [step("crash.abort", "abort")],
                                     sandbox=True))
        d = self.daemon(sb)
        body = self.invoke_ok(sb, "signal", {})
        self.assertEqual(body, {"errno": 1})  # EPERM
        self.assertTrue(d.alive())
        # a signal to itself is still the handler's business: abort() works
        self.invoke_fails(sb, "self_abort", {}, "Runtime.ExitError")
        body = self.invoke_ok(sb, "signal", {})
        self.assertEqual(body, {"errno": 1})
        self.assertTrue(d.alive())
        self.stop(d)

    def test_checksum_reads_only_its_trigger_folder_or_config_allow(self):
        sb = self.new_sandbox()
        secret = sb.drop("secret/key.txt", "secret\n")
        sb.drop("inbox/seen.txt", "seen\n")
        os.symlink(secret, sb.path("inbox/link.txt"))
        sb.add_pipeline(zmq_pipeline("sums", [step("checksum.handler", "sum")]))
        sb.add_pipeline(zmq_pipeline("allowed", [step("checksum.handler", "sum",
                                                      {"allow": [sb.path("inbox")]})]))
        d = self.daemon(sb)
        # no trigger folder, no config.allow: nothing is read
        msg = self.invoke_fails(sb, "sums", s3_event(sb.path("inbox/seen.txt")), "PathNotAllowed")
        self.assertIn("the pipeline has no trigger folder and config.allow names none", msg)
        for path in (secret, "/etc/passwd", sb.path("inbox/link.txt"),
                     sb.path("inbox/../secret/key.txt")):
            with self.subTest(path=path):
                msg = self.invoke_fails(sb, "allowed", s3_event(path), "PathNotAllowed")
                self.assertIn("refusing to read", msg)
        body = self.invoke_ok(sb, "allowed", s3_event(sb.path("inbox/seen.txt")))
        self.assertEqual(body["files"][0]["size"], 5)
        self.stop(d)


if __name__ == "__main__":
    harness.main()
