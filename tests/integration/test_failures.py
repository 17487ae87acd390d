"""Failing handlers: statuses, retries, dead letters, multi-step runs, handler
logs and cold starts, with the fixture plugins (tests/plugins/*.c)."""

import datetime
import glob
import json
import os
import sqlite3
import time

import harness
from harness import SluiceTestCase, echo_pipeline, step


def pipeline(name, steps, directory=None, dead_letter=True, **extra):
    p = {
        "name": name,
        "trigger": {"directory": directory or "inbox/" + name},
        "steps": steps,
        "isolation": "thread",
    }
    if dead_letter:
        p["on_failure"] = {"directory": "dead/" + name}
    p.update(extra)
    return p


class Failures(SluiceTestCase):

    def run_one(self, steps, name="p", files=("input.txt",), settle=True, **extra):
        """Sandbox + daemon with one pipeline; drop files; wait until all
        are finished (done or dead)."""
        sb = self.sandbox()
        sb.add_pipeline(pipeline(name, steps, **extra))
        d = self.daemon(sb)
        for f in files:
            sb.drop("inbox/%s/%s" % (name, f), "content of %s\n" % f)
        if settle:
            self.wait_settled(sb, len(files), pipeline=name)
        return sb, d

    def dead_letters(self, sb, name="p"):
        out = []
        for path in sorted(glob.glob(sb.path("dead", name, "*"))):
            with open(path) as f:
                out.append((path, json.load(f)))
        return out

    def only_event(self, sb, name="p"):
        rows = sb.db_rows("SELECT * FROM events WHERE pipeline = ?", (name,))
        self.assertEqual(len(rows), 1, "one event")
        return rows[0]

    def invocations(self, sb, name="p"):
        return sb.db_rows("SELECT * FROM invocations WHERE pipeline = ? ORDER BY id", (name,))

    # ------------------------------------------------------------------
    def test_error_goes_dead_with_a_dead_letter_record(self):
        sb, d = self.run_one([step("fail.error", "boom")])
        inv = self.invocations(sb)
        self.assertEqual(len(inv), 1)
        self.assertEqual(inv[0]["status"], "error")
        self.assertEqual(inv[0]["attempt"], 1)
        self.assertIn("failing on purpose", inv[0]["error"])
        ev = self.only_event(sb)
        self.assertEqual(ev["state"], "dead")
        self.assertEqual(ev["attempts"], 1)
        self.assertIn("failing on purpose", ev["error"] or "")
        self.assertIsNotNone(ev["finished_at"])

        # the dead letter is written before the event is marked dead
        letters = self.dead_letters(sb)
        self.assertEqual(len(letters), 1, "one dead-letter file in dead/p")
        path, rec = letters[0]
        self.assertTrue(path.endswith(".json"), path)
        self.assertEqual(rec["requestContext"]["condition"], "RetriesExhausted")
        self.assertEqual(rec["requestContext"]["requestId"], inv[0]["request_id"])
        self.assertEqual(rec["requestContext"]["approximateInvokeCount"], 1)
        self.assertEqual(rec["requestPayload"], json.loads(ev["payload"]))
        self.assertIn("failing on purpose", rec["responsePayload"]["errorMessage"])
        self.assertEqual(rec["responsePayload"]["errorType"], "TestError")
        # no temporary file is left beside it
        self.assertEqual(os.listdir(sb.path("dead", "p")), [os.path.basename(path)])
        # and the failures view shows it
        view = sb.db_rows("SELECT * FROM failures")
        self.assertEqual([(r["pipeline"], r["step"], r["status"]) for r in view],
                         [("p", "boom", "error")])
        self.stop(d)

    def test_retry_three_attempts_then_dead(self):
        sb, d = self.run_one([step("fail.error", retry={"max_attempts": 3, "interval_ms": 20,
                                                          "backoff_rate": 1.5})])
        inv = self.invocations(sb)
        self.assertEqual([(r["attempt"], r["status"]) for r in inv],
                         [(1, "error"), (2, "error"), (3, "error")])
        self.assertEqual(len({r["request_id"] for r in inv}), 1, "one request id for the run")
        ev = self.only_event(sb)
        self.assertEqual(ev["state"], "dead")
        self.assertEqual(ev["attempts"], 3)
        self.assertEqual({r["event_id"] for r in inv}, {ev["event_id"]})
        letters = self.dead_letters(sb)
        self.assertEqual(len(letters), 1, "one dead letter for the event, not one per attempt")
        self.assertEqual(letters[0][1]["requestContext"]["approximateInvokeCount"], 3)
        self.stop(d)

    def test_flaky_succeeds_on_second_attempt(self):
        sb, d = self.run_one([step("fail.flaky", retry={"max_attempts": 2, "interval_ms": 10})])
        inv = self.invocations(sb)
        self.assertEqual([(r["attempt"], r["status"]) for r in inv], [(1, "error"), (2, "ok")])
        self.assertIn("first attempt fails", inv[0]["error"])
        self.assertIsNone(inv[1]["error"])
        self.assertEqual(inv[1]["status_code"], 200)
        self.assertEqual(inv[1]["output_bytes"], inv[1]["input_bytes"])
        ev = self.only_event(sb)
        self.assertEqual(ev["state"], "done")
        self.assertEqual(ev["attempts"], 2)
        self.assertEqual(self.dead_letters(sb), [])
        self.stop(d)

    def test_status_500_and_up_is_an_error(self):
        sb, d = self.run_one([step("fail.status500")])
        inv = self.invocations(sb)
        self.assertEqual(len(inv), 1)
        self.assertEqual(inv[0]["status"], "error")
        self.assertEqual(inv[0]["status_code"], 503)
        self.assertIn("503", inv[0]["error"] or "")
        self.assertEqual(self.only_event(sb)["state"], "dead")
        letters = self.dead_letters(sb)
        self.assertEqual(len(letters), 1)
        self.assertEqual(letters[0][1]["responseContext"]["statusCode"], 503)
        self.stop(d)

    def test_garbage_response_fails_clearly(self):
        sb, d = self.run_one([step("fail.garbage")])
        inv = self.invocations(sb)
        self.assertEqual(len(inv), 1)
        self.assertEqual(inv[0]["status"], "error")
        self.assertIn("not JSON", inv[0]["error"] or "")
        self.assertEqual(self.only_event(sb)["state"], "dead")
        self.stop(d)

    def test_slow_past_timeout_is_a_timeout(self):
        sb, d = self.run_one([step("fail.slow", timeout_ms=50)])
        inv = self.invocations(sb)
        self.assertEqual(len(inv), 1)
        self.assertEqual(inv[0]["status"], "timeout")
        self.assertIn("timeout", (inv[0]["error"] or "").lower())
        self.assertIn("50", inv[0]["error"] or "")
        self.assertGreaterEqual(inv[0]["duration_ms"], 50)
        ev = self.only_event(sb)
        self.assertEqual(ev["state"], "dead")
        letters = self.dead_letters(sb)
        self.assertEqual(len(letters), 1)
        self.assertEqual(letters[0][1]["sluice"]["status"], "timeout")
        self.stop(d)

    def test_slow_within_timeout_is_ok(self):
        sb, d = self.run_one([step("fail.slow", timeout_ms=5000)])
        inv = self.invocations(sb)
        self.assertEqual([r["status"] for r in inv], ["ok"])
        self.assertGreaterEqual(inv[0]["duration_ms"], 250)
        self.assertEqual(self.only_event(sb)["state"], "done")
        self.stop(d)

    def test_bad_init_fails_cleanly_and_other_pipelines_keep_serving(self):
        sb = self.sandbox()
        sb.add_pipeline(pipeline("broken", [step("bad_init.handler", "h")]))
        sb.add_pipeline(echo_pipeline("fine", "inbox/fine"))
        d = self.daemon(sb)
        sb.drop("inbox/broken/one.txt")
        sb.drop("inbox/fine/one.txt")
        self.wait_settled(sb, 1, pipeline="broken")
        self.wait_events(sb, 1, pipeline="fine")
        # a second event of the broken pipeline fails the same way
        sb.drop("inbox/broken/two.txt")
        self.wait_settled(sb, 2, pipeline="broken")
        inv = self.invocations(sb, "broken")
        self.assertEqual([r["status"] for r in inv], ["error", "error"])
        for r in inv:
            self.assertIn("license server", r["error"] or "")
        self.assertEqual(sb.count("events WHERE pipeline = 'broken' AND state = 'dead'"), 2)
        self.assertEqual(len(self.dead_letters(sb, "broken")), 2)
        # the daemon is still serving the other pipeline
        sb.drop("inbox/fine/two.txt")
        self.wait_events(sb, 2, pipeline="fine")
        self.assertEqual([r["status"] for r in self.invocations(sb, "fine")], ["ok", "ok"])
        self.stop(d)

    def test_multi_step_failure_stops_the_run_and_chains_bodies(self):
        sb, d = self.run_one([step("ok.info", "first"), step("fail.error", "second"),
                              step("echo.handler", "third")])
        inv = self.invocations(sb)
        self.assertEqual([(r["step"], r["status"]) for r in inv],
                         [("first", "ok"), ("second", "error")], "the third step never runs")
        first, second = inv
        self.assertEqual(first["request_id"], second["request_id"])
        self.assertEqual(first["handler"], "ok.info")
        self.assertEqual(second["handler"], "fail.error")
        ev = self.only_event(sb)
        self.assertEqual(first["input_bytes"], len(ev["payload"].encode()))
        self.assertGreater(first["output_bytes"], 0)
        self.assertEqual(second["input_bytes"], first["output_bytes"],
                         "step 1's response body is step 2's event")
        self.assertEqual(ev["state"], "dead")
        letters = self.dead_letters(sb)
        self.assertEqual(len(letters), 1)
        rec = letters[0][1]
        self.assertEqual(rec["sluice"]["step"], "second")
        self.assertEqual(rec["requestPayload"], json.loads(ev["payload"]),
                         "the dead letter carries the event that entered the pipeline")
        self.stop(d)

    def test_multi_step_success_runs_every_step_in_order(self):
        sb, d = self.run_one([step("echo.handler", "one"), step("ok.info", "two"),
                              step("echo.handler", "three")])
        inv = self.invocations(sb)
        self.assertEqual([(r["step"], r["status"]) for r in inv],
                         [("one", "ok"), ("two", "ok"), ("three", "ok")])
        self.assertEqual(len({r["request_id"] for r in inv}), 1)
        for prev, nxt in zip(inv, inv[1:]):
            self.assertEqual(nxt["input_bytes"], prev["output_bytes"])
        self.assertEqual(self.only_event(sb)["state"], "done")
        self.assertEqual(self.dead_letters(sb), [])
        self.stop(d)

    def test_handler_log_lines_land_in_logs_by_request_id(self):
        sb, d = self.run_one([step("ok.info", "info")], files=("a.txt", "b.txt"))
        inv = self.invocations(sb)
        self.assertEqual(len(inv), 2)
        self.wait_for(lambda: sb.count("logs") >= 2, what="two handler log lines")
        for r in inv:
            lines = sb.db_rows("SELECT * FROM logs WHERE request_id = ?", (r["request_id"],))
            self.assertEqual(len(lines), 1, "one log line for request %s" % r["request_id"])
            self.assertEqual(lines[0]["message"], "ok.info ran")
            self.assertEqual(lines[0]["level"], "INFO")
            self.assertEqual(lines[0]["pipeline"], "p")
            self.assertEqual(lines[0]["step"], "info")
            self.assertRegex(lines[0]["at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.stop(d)

    def test_init_ms_only_on_the_first_invocation_of_a_plugin(self):
        files = tuple("f%d.txt" % i for i in range(5))
        sb, d = self.run_one([step("ok.info", "info"), step("echo.handler", "echo")],
                             files=files, concurrency=1)
        inv = self.invocations(sb)
        self.assertEqual(len(inv), 10)
        info = [r for r in inv if r["step"] == "info"]
        echo = [r for r in inv if r["step"] == "echo"]
        self.assertIsNotNone(info[0]["init_ms"], "the first ok.info invocation is a cold start")
        self.assertGreaterEqual(info[0]["init_ms"], 0)
        self.assertEqual([r["init_ms"] for r in info[1:]], [None] * 4)
        # echo has no init, but its first invocation still is its cold start
        # (the plugin was loaded for it); never more than one per plugin
        self.assertLessEqual(sum(r["init_ms"] is not None for r in echo), 1)
        for r in echo[1:]:
            self.assertIsNone(r["init_ms"])
        stats = sb.db_rows("SELECT step, invocations, cold_starts FROM pipeline_stats"
                           " WHERE pipeline = 'p' ORDER BY step")
        self.assertEqual([(s["step"], s["invocations"]) for s in stats],
                         [("echo", 5), ("info", 5)])
        self.assertEqual([s["cold_starts"] for s in stats if s["step"] == "info"], [1])
        self.stop(d)

    def test_init_runs_once_per_plugin_across_pipelines(self):
        sb = self.sandbox()
        sb.add_pipeline(pipeline("a", [step("ok.info", "info")], concurrency=2))
        sb.add_pipeline(pipeline("b", [step("ok.info", "info")], concurrency=2))
        d = self.daemon(sb)
        for i in range(4):
            sb.drop("inbox/a/%d.txt" % i)
            sb.drop("inbox/b/%d.txt" % i)
        self.wait_events(sb, 4, pipeline="a")
        self.wait_events(sb, 4, pipeline="b")
        cold = sb.count("invocations WHERE handler = 'ok.info' AND init_ms IS NOT NULL")
        self.assertEqual(cold, 1, "ok's init ran once for the daemon, not per pipeline/thread")
        self.stop(d)

    def test_handler_that_answers_nothing_passes_null_on(self):
        sb, d = self.run_one([step("ok.silent", "quiet"), step("echo.handler", "echo")])
        inv = self.invocations(sb)
        self.assertEqual([(r["step"], r["status"]) for r in inv],
                         [("quiet", "ok"), ("echo", "ok")])
        self.assertEqual(inv[0]["output_bytes"], len("null"))
        self.assertEqual(inv[1]["input_bytes"], len("null"))
        self.assertEqual(self.only_event(sb)["state"], "done")
        self.stop(d)

    def test_concurrency_bounds_parallel_runs(self):
        files = tuple("f%d.txt" % i for i in range(8))
        sb, d = self.run_one([step("fail.slow", "nap", timeout_ms=5000)], files=files,
                             concurrency=2)
        inv = self.invocations(sb)
        self.assertEqual(len(inv), 8)
        self.assertTrue(all(r["status"] == "ok" for r in inv))
        # overlap of [start, start + duration], shrunk by a few ms for rounding
        def ms(iso):
            return datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp() * 1000
        spans = [(ms(r["started_at"]) + 10, ms(r["started_at"]) + r["duration_ms"] - 10)
                 for r in inv]
        points = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans],
                        key=lambda p: (p[0], p[1]))
        running = peak = 0
        for _, delta in points:
            running += delta
            peak = max(peak, running)
        self.assertEqual(peak, 2, "at most (and, with 8 queued, exactly) 2 at once: %r" % spans)
        self.stop(d)

    def test_sigterm_during_a_retry_wait_exits_promptly_and_resumes(self):
        sb, d = self.run_one([step("fail.error", "boom",
                                   retry={"max_attempts": 2, "interval_ms": 600000})],
                             settle=False)
        self.wait_for(lambda: sb.count("invocations") == 1, what="the first (failed) attempt")
        self.stop(d, timeout=10)      # must not sit out the ten-minute retry interval
        self.assertEqual(self.only_event(sb)["state"], "pending",
                         "an event waiting for its retry stays in the journal")
        d2 = self.daemon(sb)
        self.wait_for(lambda: sb.count("invocations") >= 2,
                      what="the event to run again after the restart")
        self.stop(d2, timeout=10)

    def test_checksum_of_a_vanished_file_fails_clearly(self):
        """The bundled checksum plugin: a file listed in the event but gone
        by the time the step runs is a FileError naming the path."""
        sb = self.sandbox()
        sb.add_pipeline(pipeline("sums", [step("checksum.handler", "sha256")]))
        d = self.daemon(sb)
        sb.drop("inbox/sums/real.txt", "abc")
        self.wait_events(sb, 1, pipeline="sums")
        line = sb.db_rows("SELECT message FROM logs WHERE pipeline = 'sums'")
        self.assertEqual(len(line), 1)
        # sha256("abc")
        self.assertIn("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                      line[0]["message"])
        # now remove a file between its event and its step
        os.unlink(sb.path("inbox", "sums", "real.txt"))
        payload = sb.db_value("SELECT payload FROM events WHERE pipeline = 'sums'")
        self.stop(d)
        gone = sb.path("inbox", "sums", "gone.txt")
        ev = json.loads(payload)
        ev["Records"][0]["s3"]["object"].update(key="gone.txt", path=gone)
        con = sqlite3.connect(sb.database, timeout=10)
        with con:
            con.execute("INSERT INTO events (event_id, pipeline, source, payload, received_at)"
                        " VALUES ('gone-1', 'sums', 'directory:inbox/sums', ?, ?)",
                        (json.dumps(ev), time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())))
        con.close()
        d2 = self.daemon(sb)
        self.wait_settled(sb, 2, pipeline="sums")
        self.stop(d2)
        inv = sb.db_rows("SELECT * FROM invocations WHERE event_id = 'gone-1'")
        self.assertEqual([r["status"] for r in inv], ["error"])
        self.assertIn(gone, inv[0]["error"])
        self.assertEqual(sb.db_value("SELECT state FROM events WHERE event_id = 'gone-1'"), "dead")
        letters = self.dead_letters(sb, "sums")
        self.assertEqual(len(letters), 1)
        self.assertEqual(letters[0][1]["responsePayload"]["errorType"], "FileError")


if __name__ == "__main__":
    harness.main()
