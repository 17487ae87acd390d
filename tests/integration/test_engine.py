"""The execution engine (docs/architecture.md): one shared pool of slots and
executor threads, warm workers reused most-recent-first and reclaimed when
idle, fair turns between pipelines, reloads that swap generations without
stopping or losing anything, and attempts that survive a restart."""

import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

import harness
from test_isolation import IsolationCase, pipeline, step, workers_of


def threads_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return -1


class Engine(IsolationCase):

    def cold_starts(self, sb, name):
        return sb.count("invocations WHERE pipeline = ? AND init_ms IS NOT NULL", (name,))

    def test_invocations_one_after_another_pay_one_cold_start(self):
        sb = self.sandbox()
        name = self.name("warm")
        sb.add_pipeline(pipeline(name, [step("echo.handler")], concurrency=3))
        d = self.daemon(sb)
        for i in range(6):
            self.assertEqual(self.invoke_ok(sb, name, '{"i": %d}' % i), {"i": i})
        self.wait_for(lambda: sb.count("invocations WHERE pipeline = ?", (name,)) == 6,
                      what="6 invocation rows")
        self.assertEqual(self.cold_starts(sb, name), 1,
                         "the most recently used idle worker is taken: one cold start")
        self.assertEqual(len(workers_of(name, d.pid())), 1)
        self.stop(d)

    def test_an_idle_worker_is_stopped_after_idle_timeout_s(self):
        sb = self.sandbox({"idle_timeout_s": 1})
        name = self.name("idle")
        sb.add_pipeline(pipeline(name, [step("echo.handler")]))
        d = self.daemon(sb)
        self.invoke_ok(sb, name)
        self.assertEqual(len(workers_of(name, d.pid())), 1, "kept warm after the invocation")
        self.wait_for(lambda: workers_of(name, d.pid()) == [], timeout=15,
                      what="the idle worker to be reclaimed")
        self.assertEqual(self.invoke_ok(sb, name, '{"again": true}'), {"again": True})
        self.wait_for(lambda: self.cold_starts(sb, name) == 2, what="a second cold start")
        self.stop(d)

    def test_a_flooded_pipeline_does_not_starve_a_quiet_one(self):
        # two slots in all: the flood could take both for as long as it lasts
        sb = self.sandbox({"max_concurrency": 2, "workers": 1})
        flood, quiet = self.name("flood"), self.name("quiet")
        sb.add_pipeline(pipeline(flood, [step("fail.slow")], concurrency=2))
        sb.add_pipeline(pipeline(quiet, [step("echo.handler")], concurrency=1))
        d = self.daemon(sb)
        harness.publish_lines(self, sb, "unused." + flood, "{}\n" * 40)
        self.wait_for(lambda: sb.count("invocations WHERE pipeline = ?", (flood,)) >= 2,
                      what="the flood to be running")
        self.assertEqual(self.invoke_ok(sb, quiet, '{"q": 1}'), {"q": 1})
        done = sb.count("invocations WHERE pipeline = ?", (flood,))
        self.assertLess(done, 20, "the quiet pipeline had its turn long before the flood "
                        "ended (%d of 40 flood events had run)" % done)
        self.wait_events(sb, 40, pipeline=flood, timeout=60)
        self.stop(d)

    def test_a_slow_pipelines_backlog_does_not_pause_the_others_intake(self):
        # queue_size 1: 300 slow events are far over what it holds in memory
        # (and over the old all-pipelines pause at queue_size x 64)
        sb = self.sandbox({"queue_size": 1})
        slow, fast = self.name("slow"), self.name("fast")
        sb.add_pipeline(pipeline(slow, [step("fail.slow")], concurrency=1))
        sb.add_pipeline(pipeline(fast, [step("echo.handler")], concurrency=1))
        d = self.daemon(sb)
        harness.publish_lines(self, sb, "unused." + slow, "{}\n" * 300)
        self.wait_for(lambda: sb.count("events WHERE pipeline = ?", (slow,)) == 300,
                      what="the slow pipeline's events to be journaled")
        r = sb.cli("publish", "unused." + fast, '{"fast": true}')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_events(sb, 1, pipeline=fast)
        self.assertGreater(sb.count("events WHERE pipeline = ? AND state = 'pending'", (slow,)),
                           200, "the fast event ran while the slow backlog waited")
        self.assertNotIn("backlog is high", d.log())
        self.stop(d)

    def test_threads_are_the_pool_plus_a_few_with_1000_pipelines(self):
        sb = self.sandbox({"workers": 2})
        for i in range(1000):
            sb.add_pipeline(pipeline("p%04d_%s" % (i, self.tag), [step("echo.handler")],
                                     concurrency=4))
        d = self.daemon(sb, start=False)
        d.start(timeout=120)
        self.assertLessEqual(threads_of(d.pid()), 2 + 8, "workers + a small constant")
        self.assertEqual(self.invoke_ok(sb, "p0999_" + self.tag, '{"x": 1}'), {"x": 1})
        self.assertLessEqual(threads_of(d.pid()), 2 + 8)
        self.stop(d)

    def test_check_refuses_reservations_beyond_max_concurrency(self):
        sb = self.sandbox({"max_concurrency": 4})
        sb.add_pipeline(pipeline("a", [step("echo.handler")], concurrency=3,
                                 reserved_concurrency=3))
        sb.add_pipeline(pipeline("b", [step("echo.handler")], concurrency=3,
                                 reserved_concurrency=2))
        r = sb.cli("check")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("reserve 5 slots (reserved_concurrency) but max_concurrency", r.stdout +
                      r.stderr)
        sb.add_pipeline(pipeline("c", [step("echo.handler")], concurrency=1,
                                 reserved_concurrency=2))
        r = sb.cli("check")
        self.assertIn("reserved_concurrency (2) is more than concurrency (1)", r.stdout +
                      r.stderr)

    def test_check_refuses_sizes_a_worker_cannot_take(self):
        sb = self.sandbox({"zmq": {"pull": "tcp://127.0.0.1:1", "router": "tcp://127.0.0.1:2",
                                   "max_message_bytes": 100 << 20}})
        sb.add_pipeline(pipeline("a", [step("echo.handler")]))
        r = sb.cli("check")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("zmq.max_message_bytes: 104857600 is more than the largest event a worker "
                      "process takes", r.stdout + r.stderr)

    def test_a_reserved_pipeline_runs_while_another_floods(self):
        sb = self.sandbox({"max_concurrency": 2, "workers": 1})
        flood, vip = self.name("flood"), self.name("vip")
        sb.add_pipeline(pipeline(flood, [step("fail.slow")], concurrency=2))
        sb.add_pipeline(pipeline(vip, [step("fail.slow"), step("echo.handler")],
                                 concurrency=1, reserved_concurrency=1))
        d = self.daemon(sb)
        subprocess.run([harness.sluice_bin(), "publish", "-c", sb.config_path, "--lines",
                        "unused." + flood], input="{}\n" * 20, cwd=sb.cwd, timeout=60,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.wait_for(lambda: sb.count("invocations WHERE pipeline = ?", (flood,)) >= 1,
                      what="the flood to be running")
        # the flood never has more than one slot: the other is vip's alone
        self.assert_stays(lambda: len(workers_of(flood, d.pid())) <= 1, 1.0,
                          "at most one flood worker at a time")
        self.invoke_ok(sb, vip)
        self.wait_events(sb, 20, pipeline=flood, timeout=60)
        self.stop(d)

    def test_attempts_survive_a_restart(self):
        sb = self.sandbox()
        name = self.name("again")
        sb.add_pipeline(pipeline(name, [step("fail.error", retry={
            "max_attempts": 2, "interval_ms": 600000})]))
        d = self.daemon(sb)
        r = sb.cli("publish", "--id", "e-1", "unused." + name, "{}")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_for(lambda: sb.count("invocations WHERE pipeline = ?", (name,)) == 1,
                      what="the first attempt")
        self.stop(d)  # waiting ten minutes for its retry: interrupted, its attempt counted
        self.assertEqual(sb.db_value("SELECT attempts FROM events WHERE event_id = 'e-1'"), 1)
        d = self.daemon(sb)
        self.wait_for(lambda: sb.db_value(
            "SELECT state FROM events WHERE event_id = 'e-1'") == "dead",
            what="the event to use its last attempt and die")
        self.assertEqual(sb.db_value("SELECT attempts FROM events WHERE event_id = 'e-1'"), 2)
        self.assertEqual(sb.count("invocations WHERE pipeline = ?", (name,)), 2,
                         "max_attempts 2 across restarts, not 2 per life")
        self.stop(d)


class Reloads(IsolationCase):

    def test_a_sighup_storm_with_rewrites_during_a_slow_invoke(self):
        """100 SIGHUPs a second for 20 s while a pipeline file is rewritten
        with plain `>` (so some reloads read it half-written), during slow
        invokes and published events: the daemon lives, every event runs
        exactly once and every invoke is answered."""
        sb = self.sandbox()
        slow, events = self.name("slow"), self.name("events")
        slow_p = pipeline(slow, [step("fail.slow", "nap1"), step("fail.slow", "nap2"),
                                 step("echo.handler")])
        sb.add_pipeline(slow_p)
        sb.add_pipeline(pipeline(events, [step("echo.handler")], concurrency=2))
        d = self.daemon(sb)
        path = sb.pipeline_file(slow)
        text = json.dumps(slow_p)
        stop = threading.Event()
        answers = []

        def storm():
            half = len(text) // 2
            while not stop.is_set():
                with open(path, "w") as f:      # truncates: readers may see it empty
                    f.write(text[:half])
                    f.flush()
                    d.send_signal(signal.SIGHUP)
                    f.write(text[half:])
                time.sleep(0.01)

        def invokes():
            while not stop.is_set():
                answers.append(self.invoke(sb, slow, '{"n": %d}' % len(answers)))

        threads = [threading.Thread(target=storm), threading.Thread(target=invokes)]
        for t in threads:
            t.start()
        published = 0
        t_end = time.monotonic() + 20
        try:
            while time.monotonic() < t_end:
                r = sb.cli("publish", "--id", "ev-%d" % published, "unused." + events,
                           '{"n": %d}' % published)
                self.assertEqual(r.returncode, 0, r.stderr)
                published += 1
                self.assertTrue(d.alive(), "the daemon died during the storm")
        finally:
            stop.set()
            for t in threads:
                t.join(120)
        self.assertTrue(d.alive())
        self.assertNotIn("stopping", d.log().split("SIGHUP", 1)[-1].replace(
            "sluice is stopping", ""), "a reload never stops the daemon")
        self.wait_events(sb, published, pipeline=events, timeout=60)
        runs = sb.db_rows("SELECT event_id, count(*) AS n FROM invocations WHERE pipeline = ?"
                          " GROUP BY event_id HAVING n != 1", (events,))
        self.assertEqual(runs, [], "every event ran exactly once")
        self.assertGreater(len(answers), 0)
        for rc, answer in answers:
            if rc != 0: # refused while a reload swaps generations: retryable, never lost
                self.assertEqual(answer.get("errorType"), "Interrupted", answer)
        # (how many ran during the storm depends on the machine's speed: under a
        # sanitizer nearly every one meets a swap) once it is over, invokes run
        d.send_signal(signal.SIGHUP)  # the file is whole now: the last reload succeeds
        self.wait_for(lambda: self.invoke(sb, slow, '{"after": 1}')[0] == 0,
                      what="an invoke to run once the storm is over")
        self.stop(d)


class HttpIds(IsolationCase):

    def test_an_idempotency_key_over_255_bytes_is_refused(self):
        sb = self.sandbox()
        name = self.name("route")
        sb.add_pipeline({"name": name, "trigger": {"http": {"method": "POST", "path": "/x"}},
                         "steps": [step("echo.handler")], "isolation": "thread"})
        d = self.daemon(sb)
        url = "http://%s/x" % sb.config["http"]["listen"]

        def post(key):
            req = urllib.request.Request(url, data=b"{}", method="POST",
                                         headers={"Idempotency-Key": key})
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    return r.status, r.read().decode()
            except urllib.error.HTTPError as e:
                return e.code, e.read().decode()

        status, body = post("k" * 300)
        self.assertEqual(status, 400, body)
        self.assertIn("255", body)
        # two long keys that share their first 255 bytes are not one key
        self.assertEqual(post("k" * 255)[0], 200)
        self.assertEqual(sb.count("events WHERE pipeline = ?", (name,)), 1)
        self.stop(d)


if __name__ == "__main__":
    harness.main()
