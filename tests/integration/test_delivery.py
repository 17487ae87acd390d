"""Delivery guarantees (issue 5), against a running daemon: retries (each
attempt its own row, backoff visible in started_at, retry.on, jitter,
max_interval_ms, max_event_age_ms), destinations of every kind for failures
and successes (records shaped like Lambda destination records), replay of
dead events (daemon running or stopped, --dry-run, filters), and idempotency
(producer event ids on publish and invoke, files found again at a restart).

Events come in over ZeroMQ (`sluice publish --id`, so each test knows its
event ids) or as files; every daemon has its own loopback ports."""

import datetime
import json
import os
import signal

import harness
from harness import compact, endpoint, step
from cases import ZmqSocketsCase

try:
    import zmq
except ImportError:  # pragma: no cover - python3-zmq is a test dependency
    zmq = None


def retry(max_attempts, interval_ms=10, **extra):
    r = {"max_attempts": max_attempts, "interval_ms": interval_ms}
    r.update(extra)
    return r


def pipeline(name, steps, topic=None, **extra):
    """A pipeline on the zmq topic NAME. (or none: a destination target)."""
    p = {"name": name, "steps": steps}
    if topic is not False:
        p["trigger"] = {"zmq": {"topic": topic or name + "."}}
    p.update(extra)
    return p


def ms(iso):
    """started_at (ISO-8601 UTC with ms) as milliseconds since the epoch."""
    t = datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ")
    return t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000.0


class DeliveryCase(ZmqSocketsCase):

    def let_workers_segfault(self):
        """A sanitizer build catches SIGSEGV and prints a report (which the
        harness counts as a daemon problem); workers that segfault on purpose
        must die of the signal, as in a normal build. Call before starting
        the daemon: workers inherit its environment."""
        old = os.environ.get("ASAN_OPTIONS")
        os.environ["ASAN_OPTIONS"] = (old + ":" if old else "") + "handle_segv=0"
        self.addCleanup(lambda: os.environ.__setitem__("ASAN_OPTIONS", old) if old is not None
                        else os.environ.pop("ASAN_OPTIONS", None))

    def publish(self, sb, topic, payload, event_id=None):
        args = ["publish"] + (["--id", event_id] if event_id else []) + [topic, compact(payload)]
        r = sb.cli(*args)
        self.assertEqual(r.returncode, 0, "sluice publish: " + r.stderr)

    def invoke(self, sb, pipeline, payload, event_id=None):
        args = ["invoke", "--timeout", "60000"] + (["--id", event_id] if event_id else [])
        r = sb.cli(*(args + [pipeline, compact(payload)]), timeout=120)
        try:
            return r.returncode, json.loads(r.stdout)
        except ValueError:
            self.fail("sluice invoke printed no JSON: %r (stderr %r)" % (r.stdout, r.stderr))

    def event(self, sb, event_id, pipeline=None):
        rows = sb.db_rows("SELECT * FROM events WHERE event_id = ?"
                          + (" AND pipeline = ?" if pipeline else ""),
                          (event_id, pipeline) if pipeline else (event_id,))
        self.assertEqual(len(rows), 1, "journal rows for %s: %r" % (event_id, rows))
        return rows[0]

    def wait_state(self, sb, event_id, state, pipeline=None, timeout=harness.DEFAULT_TIMEOUT_S):
        where = "events WHERE event_id = ? AND state = ?" + (" AND pipeline = ?" if pipeline
                                                              else "")
        params = (event_id, state) + ((pipeline,) if pipeline else ())
        self.wait_for(lambda: sb.count(where, params) == 1, timeout=timeout,
                      what=lambda: "event %s %s (journal: %s)"
                      % (event_id, state, harness.LazyJournal(sb)))
        return self.event(sb, event_id, pipeline)

    def attempts(self, sb, event_id, n, pipeline=None):
        """Wait for n invocation rows of an event, then return them by id."""
        where = "invocations WHERE event_id = ?" + (" AND pipeline = ?" if pipeline else "")
        params = (event_id,) + ((pipeline,) if pipeline else ())
        self.wait_for(lambda: sb.count(where, params) >= n,
                      what="%d invocation rows of %s" % (n, event_id))
        return sb.db_rows("SELECT * FROM " + where + " ORDER BY id", params)

    def records(self, sb, folder, n):
        """The n destination records written to folder, parsed."""
        path = sb.path(folder)

        def listing():
            # skip the dot-files of records being written (renamed when complete)
            names = sorted(f for f in os.listdir(path) if not f.startswith(".")) \
                if os.path.isdir(path) else []
            return names if len(names) >= n else None
        names = self.wait_for(listing, what="%d records in %s" % (n, folder))
        out = []
        for name in names:
            self.assertTrue(name.endswith(".json"), name)
            with open(os.path.join(path, name)) as f:
                out.append(json.load(f))
        return out

    def assert_failure_record(self, record, payload, attempts, condition="RetriesExhausted"):
        ctx = record["requestContext"]
        self.assertEqual(ctx["condition"], condition, record)
        self.assertEqual(ctx["approximateInvokeCount"], attempts, record)
        self.assertRegex(ctx["requestId"], r"^[0-9a-f-]{36}$")
        self.assertEqual(record["requestPayload"], payload)
        self.assertEqual(record["responseContext"].get("functionError"), "Unhandled", record)
        self.assertEqual(record["responsePayload"]["errorType"], "TestError", record)
        self.assertEqual(record["responsePayload"]["errorMessage"], "failing on purpose")
        self.assertIn("version", record)
        self.assertIn("timestamp", record)

    def assert_success_record(self, record, payload, body):
        ctx = record["requestContext"]
        self.assertEqual(ctx["condition"], "Success", record)
        self.assertEqual(ctx["approximateInvokeCount"], 1, record)
        self.assertEqual(record["requestPayload"], payload)
        self.assertEqual(record["responseContext"]["statusCode"], 200)
        self.assertNotIn("functionError", record["responseContext"])
        self.assertEqual(record["responsePayload"], body)


# -- retries --------------------------------------------------------------------

class Retries(DeliveryCase):

    def test_flaky_handler_succeeds_on_attempt_2_in_separate_rows_of_one_request(self):
        sb, d = self.start(pipeline("flaky", [step("fail.flaky", retry=retry(2))]))
        self.publish(sb, "flaky.x", {"n": 1}, "f-1")
        e = self.wait_state(sb, "f-1", "done")
        self.assertEqual(e["attempts"], 2)
        rows = self.attempts(sb, "f-1", 2)
        self.assertEqual([(r["attempt"], r["status"]) for r in rows], [(1, "error"), (2, "ok")])
        self.assertEqual(rows[0]["error"], "first attempt fails")
        self.assertEqual(rows[0]["request_id"], rows[1]["request_id"],
                         "the attempts of one run share its request id")
        self.assertEqual({r["source"] for r in rows}, {"zmq:flaky.x"})
        self.assertLessEqual(ms(rows[0]["started_at"]), ms(rows[1]["started_at"]))
        self.stop(d)

    def test_backoff_grows_between_attempts(self):
        sb, d = self.start(pipeline("backoff", [step("fail.error", retry=retry(
            3, interval_ms=100, backoff_rate=2.0))]))
        self.publish(sb, "backoff.x", {"n": 1}, "b-1")
        e = self.wait_state(sb, "b-1", "dead")
        self.assertEqual(e["attempts"], 3)
        rows = self.attempts(sb, "b-1", 3)
        self.assertEqual([(r["attempt"], r["status"]) for r in rows],
                         [(1, "error"), (2, "error"), (3, "error")])
        self.assertEqual(len({r["request_id"] for r in rows}), 1)
        gaps = [ms(b["started_at"]) - ms(a["started_at"]) - a["duration_ms"]
                for a, b in zip(rows, rows[1:])]
        # waits of 100 ms, then 200 ms (timestamps have ms resolution);
        # a loaded machine can only make them longer
        self.assertGreaterEqual(gaps[0], 98, gaps)
        self.assertGreaterEqual(gaps[1], 198, gaps)
        self.stop(d)

    def test_max_interval_caps_the_backoff(self):
        sb, d = self.start(pipeline("capped", [step("fail.error", retry=retry(
            3, interval_ms=100, backoff_rate=10.0, max_interval_ms=150))]))
        self.publish(sb, "capped.x", {}, "c-1")
        self.wait_state(sb, "c-1", "dead")
        rows = self.attempts(sb, "c-1", 3)
        gaps = [ms(b["started_at"]) - ms(a["started_at"]) - a["duration_ms"]
                for a, b in zip(rows, rows[1:])]
        self.assertGreaterEqual(gaps[0], 98, gaps)
        self.assertGreaterEqual(gaps[1], 148, gaps)
        self.assertLess(gaps[1], 900, "without the cap the second wait is 1000 ms: %r" % gaps)
        self.stop(d)

    def test_full_jitter_waits_a_random_part_of_the_interval(self):
        interval = 600
        sb, d = self.start(pipeline("jitter", [step("fail.error", retry=retry(
            6, interval_ms=interval, backoff_rate=1.0, jitter="full"))]))
        self.publish(sb, "jitter.x", {}, "j-1")
        self.wait_state(sb, "j-1", "dead", timeout=60)
        rows = self.attempts(sb, "j-1", 6)
        gaps = [ms(b["started_at"]) - ms(a["started_at"]) - a["duration_ms"]
                for a, b in zip(rows, rows[1:])]
        # without jitter every wait is >= 600 ms; with full jitter each is
        # uniform in [0, 600]: all five >= 540 has a probability of 1e-5
        self.assertTrue(any(g < 0.9 * interval for g in gaps), gaps)
        self.assertTrue(all(g < interval + 1000 for g in gaps), gaps)
        self.stop(d)

    def test_retry_on_timeout_does_not_retry_an_error(self):
        self.let_workers_segfault()
        sb, d = self.start(
            pipeline("errors", [step("fail.error", retry=retry(3, on=["timeout"]))]),
            pipeline("timeouts", [step("fail.slow", timeout_ms=100,
                                       retry=retry(2, on=["timeout"]))]),
            pipeline("crashes", [step("crash.segv", retry=retry(3, on=["error", "timeout"]))]))
        self.publish(sb, "errors.x", {}, "e-1")
        self.publish(sb, "timeouts.x", {}, "t-1")
        self.publish(sb, "crashes.x", {}, "c-1")
        for event_id in ("e-1", "t-1", "c-1"):
            self.wait_state(sb, event_id, "dead")
        self.assertEqual([(r["attempt"], r["status"]) for r in self.attempts(sb, "e-1", 1)],
                         [(1, "error")], "an error is not retried when on is [\"timeout\"]")
        self.assertEqual([(r["attempt"], r["status"]) for r in self.attempts(sb, "t-1", 2)],
                         [(1, "timeout"), (2, "timeout")])
        self.assertEqual([(r["attempt"], r["status"]) for r in self.attempts(sb, "c-1", 1)],
                         [(1, "crashed")])
        self.assertEqual(self.event(sb, "e-1")["attempts"], 1)
        self.stop(d)

    def test_max_event_age_sends_a_failing_event_to_the_dead_letter(self):
        sb, d = self.start(pipeline(
            "aging", [step("fail.error", retry=retry(50, interval_ms=100, backoff_rate=1.0))],
            max_event_age_ms=350, on_failure={"directory": "var/dead"}))
        self.publish(sb, "aging.x", {"old": True}, "a-1")
        e = self.wait_state(sb, "a-1", "dead")
        self.assertGreaterEqual(e["attempts"], 2)
        self.assertLess(e["attempts"], 10, "max_event_age_ms did not stop the retries")
        (record,) = self.records(sb, "var/dead", 1)
        self.assert_failure_record(record, {"old": True}, e["attempts"],
                                   condition="EventAgeExceeded")
        self.stop(d)

    def test_retries_wait_on_timers_so_other_events_run_meanwhile(self):
        # one executor: if the retry wait slept it, the good event would wait
        sb, d = self.start(pipeline("mixed", [step("fail.flaky", retry=retry(
            2, interval_ms=3000))], concurrency=1))
        self.publish(sb, "mixed.x", {"first": True}, "slow-retry")
        self.attempts(sb, "slow-retry", 1)
        self.publish(sb, "mixed.x", {"second": True}, "meanwhile")
        # flaky fails attempt 1 of "meanwhile" too; both retry after 3 s
        # unless the lane were blocked: "meanwhile" must start its first
        # attempt long before "slow-retry" is due again
        rows = self.attempts(sb, "meanwhile", 1)
        first = self.attempts(sb, "slow-retry", 1)[0]
        self.assertLess(ms(rows[0]["started_at"]) - ms(first["started_at"]), 2500)
        self.wait_state(sb, "slow-retry", "done")
        self.wait_state(sb, "meanwhile", "done")
        self.stop(d)


# -- destinations ---------------------------------------------------------------

class Destinations(DeliveryCase):

    def test_on_failure_to_a_directory(self):
        sb, d = self.start(pipeline("p", [step("fail.error", retry=retry(3))],
                                    on_failure={"directory": "var/dead-letter"}))
        self.publish(sb, "p.x", {"order": 7}, "dl-1")
        e = self.wait_state(sb, "dl-1", "dead")
        (record,) = self.records(sb, "var/dead-letter", 1)
        self.assert_failure_record(record, {"order": 7}, 3)
        rows = self.attempts(sb, "dl-1", 3)
        self.assertEqual(record["requestContext"]["requestId"], rows[0]["request_id"])
        self.assertEqual([f for f in os.listdir(sb.path("var/dead-letter"))
                          if not f.startswith(".")], [rows[0]["request_id"] + ".json"])
        self.assertEqual(record["sluice"]["eventId"], "dl-1")
        self.assertEqual(record["sluice"]["source"], "zmq:p.x")
        self.assertEqual(e["error"], "failing on purpose")
        self.stop(d)

    def test_on_failure_to_another_pipeline(self):
        sb, d = self.start(
            pipeline("p", [step("fail.error", retry=retry(2))], on_failure={"pipeline": "dlq"}),
            pipeline("dlq", [step("echo.handler")], topic=False))
        self.publish(sb, "p.x", {"order": 8}, "dp-1")
        self.wait_state(sb, "dp-1", "dead", pipeline="p")
        rows = self.wait_events(sb, 1, pipeline="dlq")
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0]["source"], "destination:p")
        self.assertEqual(rows[0]["event_id"], "dp-1/p.on_failure")
        self.assert_failure_record(json.loads(rows[0]["payload"]), {"order": 8}, 2)
        # the target ran the record through its own steps
        inv = self.attempts(sb, "dp-1/p.on_failure", 1, pipeline="dlq")
        self.assertEqual((inv[0]["status"], inv[0]["source"]), ("ok", "destination:p"))
        self.stop(d)

    def test_on_failure_to_a_zmq_endpoint(self):
        where = endpoint()
        pull = self.socket(zmq.PULL, bind=where)
        sb, d = self.start(pipeline("p", [step("fail.error")], on_failure={
            "zmq": {"endpoint": where, "topic": "dead.letters"}}))
        self.publish(sb, "p.x", {"order": 9}, "dz-1")
        self.assertTrue(pull.poll(20000), "no record arrived\n" + self.daemon_logs())
        frames = pull.recv_multipart()
        self.assertEqual(len(frames), 2, frames)
        self.assertEqual(frames[0], b"dead.letters")
        record = json.loads(frames[1])
        self.assert_failure_record(record, {"order": 9}, 1)
        self.assertEqual(record["sluice"]["eventId"], "dz-1")
        self.wait_state(sb, "dz-1", "dead")
        self.stop(d)

    def test_on_success_to_each_kind(self):
        where = endpoint()
        pull = self.socket(zmq.PULL, bind=where)
        sb, d = self.start(
            pipeline("to-dir", [step("echo.handler")], on_success={"directory": "var/ok"}),
            pipeline("to-pipe", [step("echo.handler")], on_success={"pipeline": "sink"}),
            pipeline("to-zmq", [step("echo.handler")], on_success={"zmq": {"endpoint": where}}),
            pipeline("sink", [step("echo.handler")], topic=False))
        self.publish(sb, "to-dir.x", {"k": "dir"}, "s-dir")
        self.publish(sb, "to-pipe.x", {"k": "pipe"}, "s-pipe")
        self.publish(sb, "to-zmq.x", {"k": "zmq"}, "s-zmq")
        (record,) = self.records(sb, "var/ok", 1)
        self.assert_success_record(record, {"k": "dir"}, {"k": "dir"})

        sink = self.wait_events(sb, 1, pipeline="sink")
        self.assertEqual((sink[0]["event_id"], sink[0]["source"]),
                         ("s-pipe/to-pipe.on_success", "destination:to-pipe"))
        self.assert_success_record(json.loads(sink[0]["payload"]), {"k": "pipe"}, {"k": "pipe"})

        self.assertTrue(pull.poll(20000), "no record arrived\n" + self.daemon_logs())
        topic, body = pull.recv_multipart()
        self.assertEqual(topic, b"to-zmq", "the topic defaults to the pipeline's name")
        self.assert_success_record(json.loads(body), {"k": "zmq"}, {"k": "zmq"})
        for event_id in ("s-dir", "s-pipe", "s-zmq"):
            self.wait_state(sb, event_id, "done")
        self.stop(d)

    def test_a_zmq_destination_whose_receiver_comes_later_still_gets_the_record(self):
        where = endpoint()
        sb, d = self.start(pipeline("p", [step("fail.error")], on_failure={
            "zmq": {"endpoint": where, "topic": "late"}}))
        self.publish(sb, "p.x", {"late": True}, "late-1")
        self.wait_state(sb, "late-1", "dead")
        # nobody listened when the record was sent: the PUSH socket keeps it
        # (up to zmq.hwm) and delivers it once a receiver binds
        pull = self.socket(zmq.PULL, bind=where)
        self.assertTrue(pull.poll(20000), "the queued record never arrived\n"
                        + self.daemon_logs())
        topic, body = pull.recv_multipart()
        self.assertEqual(topic, b"late")
        self.assert_failure_record(json.loads(body), {"late": True}, 1)
        self.stop(d)

    def test_check_refuses_unknown_and_looping_destination_pipelines(self):
        sb, _ = self.start(
            pipeline("ghost", [step("echo.handler")], on_failure={"pipeline": "nowhere"}),
            pipeline("ping", [step("echo.handler")], on_failure={"pipeline": "pong"}),
            pipeline("pong", [step("echo.handler")], topic=False,
                     on_failure={"pipeline": "ping"}), start=False)
        r = sb.cli("check")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        out = r.stdout + r.stderr
        self.assertIn('no pipeline named "nowhere"', out)
        self.assertIn("loop", out)
        d = self.daemon(sb, start=False)
        d.start(wait_running=False)
        self.assertEqual(d.wait_exit(), 1, "the daemon must refuse to start")

    def test_a_success_record_carries_the_last_steps_body(self):
        sb, d = self.start(pipeline("two", [step("echo.handler", "first"),
                                            step("ok.info", "second")],
                                    on_success={"directory": "var/ok"}))
        self.publish(sb, "two.x", {"k": 1}, "two-1")
        (record,) = self.records(sb, "var/ok", 1)
        self.assertEqual(record["requestPayload"], {"k": 1})
        self.assertEqual(record["responsePayload"]["step"], "second")
        self.assertEqual(record["sluice"]["step"], "second")
        self.stop(d)


# -- replay ---------------------------------------------------------------------

class Replay(DeliveryCase):

    def fix(self, sb, name):
        """The pipeline's failing step replaced by echo (the operator's fix)."""
        sb.add_pipeline(pipeline(name, [step("echo.handler", "work")]))

    def dead_event(self, sb, name, event_id, payload=None):
        self.publish(sb, name + ".x", payload or {"id": event_id}, event_id)
        return self.wait_state(sb, event_id, "dead", pipeline=name)

    def test_replay_while_the_daemon_runs(self):
        sb, d = self.start(pipeline("p", [step("fail.error", "work")]))
        old = self.dead_event(sb, "p", "r-1", {"please": "retry"})
        self.fix(sb, "p")
        d.send_signal(signal.SIGHUP)
        self.wait_for(lambda: "reloaded: 1 pipeline" in d.log(), what="the reload")
        r = sb.cli("replay")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("replayed 1 dead event; the daemon is running them", r.stdout)
        new_id = "r-1#r%d" % old["id"]
        new = self.wait_state(sb, new_id, "done")
        self.assertEqual(new["replay_of"], old["id"])
        self.assertEqual(new["source"], "replay:zmq:p.x")
        self.assertEqual(json.loads(new["payload"]), {"please": "retry"})
        self.assertEqual(self.event(sb, "r-1")["state"], "dead", "the old row stays as it was")
        self.assertEqual([r["status"] for r in self.attempts(sb, new_id, 1)], ["ok"])
        self.assertEqual([r["status"] for r in self.attempts(sb, "r-1", 1)], ["error"])
        # replayed once: a second replay finds nothing
        r = sb.cli("replay")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("no dead events match", r.stdout)
        self.stop(d)

    def test_replay_while_the_daemon_is_stopped_runs_at_the_next_start(self):
        sb, d = self.start(pipeline("p", [step("fail.error", "work")]))
        old = self.dead_event(sb, "p", "r-2")
        self.stop(d)
        self.fix(sb, "p")
        r = sb.cli("replay", "--pipeline", "p")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("no daemon is running: they run when `sluice run` starts", r.stdout)
        new_id = "r-2#r%d" % old["id"]
        self.assertEqual(self.event(sb, new_id)["state"], "pending")
        d2 = self.daemon(sb)
        new = self.wait_state(sb, new_id, "done")
        self.assertEqual(new["replay_of"], old["id"])
        self.stop(d2)

    def test_dry_run_changes_nothing_and_filters_choose_events(self):
        sb, d = self.start(pipeline("a", [step("fail.error", "work")]),
                           pipeline("b", [step("fail.error", "work")]))
        for event_id in ("a-1", "a-2"):
            self.dead_event(sb, "a", event_id)
        self.dead_event(sb, "b", "b-1")
        self.fix(sb, "a")
        self.fix(sb, "b")
        d.send_signal(signal.SIGHUP)
        self.wait_for(lambda: "reloaded: 2 pipelines" in d.log(), what="the reload")
        before = sb.db_rows("SELECT * FROM events ORDER BY id")

        r = sb.cli("replay", "--dry-run")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("3 dead events would be replayed", r.stdout)
        for event_id in ("a-1", "a-2", "b-1"):
            self.assertIn(event_id, r.stdout)
        r = sb.cli("replay", "--dry-run", "--pipeline", "a")
        self.assertIn("2 dead events would be replayed", r.stdout)
        self.assertNotIn("b-1", r.stdout)
        self.assertEqual(sb.db_rows("SELECT * FROM events ORDER BY id"), before,
                         "--dry-run changed the journal")

        r = sb.cli("replay", "--since", "2999-01-01T00:00")
        self.assertIn("no dead events match", r.stdout)
        r = sb.cli("replay", "--id", "a-2")
        self.assertIn("replayed 1 dead event", r.stdout)
        self.wait_state(sb, "a-2#r%d" % self.event(sb, "a-2")["id"], "done")
        r = sb.cli("replay", "--pipeline", "b")
        self.assertIn("replayed 1 dead event", r.stdout)
        self.wait_state(sb, "b-1#r%d" % self.event(sb, "b-1")["id"], "done")
        # a-1 was never chosen
        self.assertEqual(sb.count("events WHERE replay_of IS NOT NULL"), 2)
        self.assertEqual(sb.count("events WHERE event_id LIKE 'a-1#%'"), 0)
        r = sb.cli("replay", "--dry-run")
        self.assertIn("1 dead event would be replayed", r.stdout)
        self.stop(d)


# -- idempotency ----------------------------------------------------------------

class Idempotency(DeliveryCase):

    def test_the_same_publish_id_twice_runs_once(self):
        sb, d = self.start(pipeline("p", [step("echo.handler")]))
        self.publish(sb, "p.x", {"n": 1}, "same")
        self.wait_state(sb, "same", "done")
        self.publish(sb, "p.x", {"n": 1}, "same")
        self.wait_for(lambda: self.event(sb, "same")["duplicates"] == 1,
                      what="the second publish counted as a duplicate")
        # a retrying producer sends it again and again (third frame on PUSH)
        push = self.socket(zmq.PUSH, connect=sb.config["zmq"]["pull"])
        for _ in range(3):
            push.send_multipart([b"p.x", b'{"n":1}', b"same"])
        push.send_multipart([b"p.x", b'{"n":2}', b"sentinel"])
        self.wait_state(sb, "sentinel", "done")
        self.wait_for(lambda: self.event(sb, "same")["duplicates"] == 4,
                      what="four duplicates counted")
        self.assertEqual(sb.count("invocations WHERE event_id = 'same'"), 1)
        self.assertEqual(sb.count("events"), 2)
        self.stop(d)

    def test_a_duplicate_of_a_dead_event_is_not_run_again(self):
        sb, d = self.start(pipeline("p", [step("fail.error")]))
        self.publish(sb, "p.x", {}, "dead-dup")
        self.wait_state(sb, "dead-dup", "dead")
        self.publish(sb, "p.x", {}, "dead-dup")
        self.wait_for(lambda: self.event(sb, "dead-dup")["duplicates"] == 1,
                      what="the duplicate counted")
        self.assertEqual(self.event(sb, "dead-dup")["state"], "dead")
        self.assertEqual(sb.count("invocations WHERE event_id = 'dead-dup'"), 1)
        self.stop(d)

    def test_ids_are_per_pipeline(self):
        sb, d = self.start(pipeline("one", [step("echo.handler")], topic="orders."),
                           pipeline("two", [step("echo.handler")], topic="orders."))
        self.publish(sb, "orders.x", {}, "shared")
        self.wait_state(sb, "shared", "done", pipeline="one")
        self.wait_state(sb, "shared", "done", pipeline="two")
        self.assertEqual(sb.count("events WHERE duplicates <> 0"), 0)
        self.stop(d)

    def test_invoke_with_the_same_id_twice_answers_duplicate_event(self):
        sb, d = self.start(pipeline("p", [step("echo.handler")]))
        rc, answer = self.invoke(sb, "p", {"n": 1}, "inv-1")
        self.assertEqual((rc, answer), (0, {"statusCode": 200, "body": {"n": 1}}))
        rc, answer = self.invoke(sb, "p", {"n": 1}, "inv-1")
        self.assertEqual(rc, 1, answer)
        self.assertEqual(answer["errorType"], "DuplicateEvent")
        self.wait_for(lambda: self.event(sb, "inv-1")["duplicates"] == 1,
                      what="the duplicate counted")
        self.assertEqual(sb.count("invocations WHERE event_id = 'inv-1'"), 1)
        # an id published before is a duplicate for invoke too
        self.publish(sb, "p.x", {}, "pub-then-invoke")
        self.wait_state(sb, "pub-then-invoke", "done")
        rc, answer = self.invoke(sb, "p", {}, "pub-then-invoke")
        self.assertEqual((rc, answer["errorType"]), (1, "DuplicateEvent"))
        self.stop(d)

    def test_files_found_again_at_a_restart_are_not_run_twice(self):
        sb, d = self.start(pipeline("files", [step("echo.handler")], topic=False,
                                    trigger={"directory": "inbox"}))
        names = ["f-%d.txt" % i for i in range(5)]
        for name in names:
            sb.drop("inbox/" + name, name)
        self.wait_events(sb, len(names))
        for label, stop in (("clean", lambda dd: self.stop(dd)), ("kill -9", lambda dd: dd.kill9())):
            stop(d)
            d = self.daemon(sb)
            sentinel = "sentinel-%s.txt" % label.replace(" ", "")
            sb.drop("inbox/" + sentinel, label)
            names.append(sentinel)
            self.wait_events(sb, len(names))
            # the start-up scan saw the old files again, and counted them
            self.wait_for(lambda: sb.count("events WHERE duplicates = 0") <= 1,
                          what="the old files counted as duplicates after a %s stop" % label)
        self.stop(d)
        per_event = sb.db_rows("SELECT e.event_id, count(i.id) AS n FROM events e LEFT JOIN"
                               " invocations i ON i.event_id = e.event_id GROUP BY e.event_id")
        self.assertEqual(len(per_event), len(names))
        self.assertEqual({r["n"] for r in per_event}, {1}, per_event)
        self.assertEqual(sb.count("events WHERE state <> 'done'"), 0)


if __name__ == "__main__":
    harness.main()
