"""ZeroMQ as an event source (issue 3), against a running daemon over real
sockets: the PULL socket at volume (`sluice publish --lines` and a pyzmq
PUSH), SUB subscriptions to a publisher, `sluice invoke` over the ROUTER
socket (success, failure, unknown pipeline, no daemon, timeout), bad input
of every kind followed by good events that still run, the `rejected` table,
fan-out, match filters on the payload, the `source` column and `sluice logs`,
and batches with batchItemFailures.

Every daemon binds its PULL and ROUTER sockets on free loopback ports, so
these tests run in parallel with each other and with other files."""

import json
import os
import signal
import subprocess
import time

import harness
from harness import compact, endpoint
from cases import ZmqSocketsCase

try:
    import zmq
except ImportError:  # pragma: no cover - python3-zmq is a test dependency
    zmq = None


# -- helpers -----------------------------------------------------------------

def zmq_pipeline(name, topic, steps=None, **extra):
    """A pipeline on a zmq trigger; one echo step unless told otherwise."""
    p = {"name": name, "trigger": {"zmq": {"topic": topic}},
         "steps": steps or [{"name": "echo", "handler": "echo.handler"}]}
    p.update(extra)
    return p


class ZmqCase(ZmqSocketsCase):
    """Sandboxes with their own ZeroMQ endpoints, and pyzmq sockets that are
    closed when the test ends (cases.ZmqSocketsCase)."""

    def pusher(self, sb):
        """A PUSH socket connected to the daemon's PULL socket."""
        return self.socket(zmq.PUSH, connect=sb.config["zmq"]["pull"])

    def publish(self, sb, topic, payload, *options, stdin=None, expect=0):
        argv = [harness.sluice_bin(), "publish", "-c", sb.config_path] + list(options) + [topic]
        if payload is not None:
            argv.append(payload if isinstance(payload, str) else compact(payload))
        r = subprocess.run(argv, cwd=sb.cwd, stdin=stdin, input=None, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=120)
        if expect is not None:
            self.assertEqual(r.returncode, expect, "sluice publish: %s" % r.stderr)
        return r

    def invoke(self, sb, pipeline, payload=None, *options, timeout_ms=60000, stdin_text=None):
        """`sluice invoke`; returns (exit status, parsed stdout, stderr, seconds)."""
        argv = [harness.sluice_bin(), "invoke", "-c", sb.config_path, "--timeout",
                str(timeout_ms)] + list(options) + [pipeline]
        if payload is not None:
            argv.append(payload if isinstance(payload, str) else compact(payload))
        t0 = time.monotonic()
        r = subprocess.run(argv, cwd=sb.cwd, input=stdin_text, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=timeout_ms / 1000 + 60)
        took = time.monotonic() - t0
        try:
            answer = json.loads(r.stdout)
        except ValueError:
            self.fail("sluice invoke printed no JSON: stdout %r, stderr %r" % (r.stdout, r.stderr))
        return r.returncode, answer, r.stderr, took

    def rejected(self, sb):
        return sb.db_rows("SELECT id, source, reason, payload FROM rejected ORDER BY id")

    def wait_event_done(self, sb, event_id, timeout=harness.DEFAULT_TIMEOUT_S):
        self.wait_for(lambda: sb.count("events WHERE event_id = ? AND state = 'done'",
                                       (event_id,)) >= 1,
                      timeout=timeout, what=lambda: "event %s done (journal: %s)"
                      % (event_id, harness.LazyJournal(sb)))


# -- volume through PULL -------------------------------------------------------

class Pull(ZmqCase):

    N = 10000

    def assert_all_done(self, sb, pipeline, source, n):
        events = self.wait_events(sb, n, pipeline=pipeline, timeout=240)
        self.assertEqual(len(events), n)
        self.assertEqual(sb.count("events WHERE pipeline = ?", (pipeline,)), n,
                         "more journal rows than events published")
        numbers = sorted(json.loads(e["payload"])["n"] for e in events)
        self.assertEqual(numbers, list(range(n)), "payloads lost or duplicated")
        self.assertEqual({e["source"] for e in events}, {source})
        self.assertEqual(sb.count("events WHERE pipeline = ? AND attempts <> 1", (pipeline,)), 0)
        # one ok invocation row per event, tied to it by event_id
        self.wait_for(lambda: sb.count("invocations WHERE pipeline = ?", (pipeline,)) >= n,
                      timeout=60, what="%d invocation rows" % n)
        ok_rows = {r["event_id"]: r["n"] for r in sb.db_rows(
            "SELECT event_id, count(*) AS n FROM invocations WHERE pipeline = ? AND status = 'ok'"
            " GROUP BY event_id", (pipeline,))}
        self.assertEqual(sorted(ok_rows), sorted(e["event_id"] for e in events),
                         "every event has ok invocations, and only events do")
        self.assertEqual(set(ok_rows.values()), {1}, "one ok invocation per event")
        self.assertEqual(sb.count("invocations WHERE pipeline = ?", (pipeline,)), n)
        self.assertEqual(sb.count("invocations WHERE pipeline = ? AND source <> ?",
                                  (pipeline, source)), 0)

    def test_ten_thousand_events_from_publish_lines(self):
        sb, d = self.start(zmq_pipeline("bulk", "bulk."))
        path = sb.path("events.jsonl")
        with open(path, "w") as f:
            for i in range(self.N):
                f.write(compact({"n": i, "pad": "x" * (i % 50)}) + "\n")
                if i % 1000 == 0:
                    f.write("\n")  # blank lines are skipped, not events
        with open(path) as stdin:
            self.publish(sb, "bulk.lines", None, "--lines", stdin=stdin)
        self.assert_all_done(sb, "bulk", "zmq:bulk.lines", self.N)
        self.assertEqual(self.rejected(sb), [])
        self.stop(d)

    def test_ten_thousand_events_from_a_pyzmq_push_with_event_ids(self):
        sb, d = self.start(zmq_pipeline("bulk", "bulk.", isolation="thread"))
        push = self.pusher(sb)
        for i in range(self.N):
            push.send_multipart([b"bulk.push", compact({"n": i}).encode(),
                                 ("push-%05d" % i).encode()])
        self.assert_all_done(sb, "bulk", "zmq:bulk.push", self.N)
        ids = [r["event_id"] for r in sb.db_rows("SELECT event_id FROM events ORDER BY event_id")]
        self.assertEqual(ids, ["push-%05d" % i for i in range(self.N)],
                         "the third frame is the event id")
        self.stop(d)

    def test_publish_reads_stdin_and_refuses_bad_json_lines(self):
        sb, d = self.start(zmq_pipeline("p", "t."))
        r = subprocess.run([harness.sluice_bin(), "publish", "-c", sb.config_path, "t.stdin", "-"],
                           input='{"from": "stdin"}', cwd=sb.cwd, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = subprocess.run([harness.sluice_bin(), "publish", "-c", sb.config_path, "--lines",
                            "t.lines"], input='{"line": 1}\nnot json\n{"line": 3}\n',
                           cwd=sb.cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 1, "a bad line makes publish fail")
        self.assertIn("line 2 is not valid JSON", r.stderr)
        self.wait_events(sb, 3)
        payloads = sorted(e["payload"] for e in sb.db_rows("SELECT payload FROM events"))
        self.assertEqual([json.loads(p) for p in payloads],
                         [{"from": "stdin"}, {"line": 1}, {"line": 3}])
        r = sb.cli("publish", "t.bad", "{oops")
        self.assertEqual(r.returncode, 1)
        self.assertIn("not valid JSON", r.stderr)
        r = sb.cli("publish")
        self.assertEqual(r.returncode, 2, "no topic is a usage error")
        self.stop(d)


# -- SUB ------------------------------------------------------------------------

class Sub(ZmqCase):

    def test_a_subscription_with_two_topics(self):
        pub_ep = endpoint()
        pub = self.socket(zmq.PUB, bind=pub_ep)
        sb, d = self.start(zmq_pipeline("alpha", "alpha."), zmq_pipeline("beta", "beta."),
                           zmq_pipeline("gamma", "gamma."),
                           zmq_extra={"sub": [{"endpoint": pub_ep,
                                               "topics": ["alpha.", "beta."]}]})
        self.assertIn("zmq sub socket on %s" % pub_ep, d.log())

        # ZeroMQ's slow joiner: a PUB drops what it sends before the
        # subscription reaches it. Send probes on both topics until one of
        # each has been journaled.
        def probe():
            pub.send_multipart([b"alpha.probe", b"{}"])
            pub.send_multipart([b"beta.probe", b"{}"])
            return (sb.count("events WHERE source = 'zmq:alpha.probe'") > 0 and
                    sb.count("events WHERE source = 'zmq:beta.probe'") > 0)
        self.wait_for(probe, timeout=30, what="a probe on each topic through the subscription")

        n = 50
        for i in range(n):
            pub.send_multipart([b"alpha.real", compact({"i": i}).encode()])
            pub.send_multipart([b"beta.real", compact({"i": i}).encode(), b"beta-%d" % i])
            # gamma has a pipeline, but the subscription does not ask for it
            pub.send_multipart([b"gamma.real", compact({"i": i}).encode()])
        # PUB/SUB keeps the order of one publisher: once the sentinels are
        # in, everything before them was delivered or filtered
        pub.send_multipart([b"alpha.sentinel", b"{}"])
        pub.send_multipart([b"beta.sentinel", b"{}"])
        for topic in ("alpha.sentinel", "beta.sentinel"):
            self.wait_for(lambda: sb.count("events WHERE source = ? AND state = 'done'",
                                           ("zmq:" + topic,)) == 1, what=topic + " done")
        for name in ("alpha", "beta"):
            rows = sb.db_rows("SELECT payload, state FROM events WHERE source = ?",
                              ("zmq:%s.real" % name,))
            self.assertEqual(sorted(json.loads(r["payload"])["i"] for r in rows), list(range(n)),
                             "%s: every message published after the subscription" % name)
        self.assertEqual(sb.count("events WHERE pipeline = 'gamma'"), 0,
                         "a topic outside the subscription reached a pipeline")
        self.assertEqual(sb.count("rejected WHERE source LIKE '%gamma%'"), 0,
                         "the SUB filter should drop gamma before the daemon sees it")
        self.assertEqual(sb.count("events WHERE event_id LIKE 'beta-%'"), n,
                         "the third frame is the event id on SUB too")
        self.stop(d)


# -- invoke ---------------------------------------------------------------------

class Invoke(ZmqCase):

    def test_success_prints_the_response_and_is_logged(self):
        sb, d = self.start(zmq_pipeline("echo", "echo."))
        rc, answer, err, _ = self.invoke(sb, "echo", {"hello": "world"}, "-v")
        self.assertEqual(rc, 0, err)
        self.assertEqual(answer, {"statusCode": 200, "body": {"hello": "world"}})
        self.assertRegex(err, r"request id: [0-9a-f-]{36}")
        request_id = err.split("request id:")[1].strip()
        # the answer is sent when the run ends; its rows are committed soon after
        rows = self.wait_for(lambda: sb.db_rows("SELECT * FROM invocations WHERE request_id = ?",
                                                (request_id,)), what="the invocation row")
        self.assertEqual(len(rows), 1)
        self.assertEqual((rows[0]["pipeline"], rows[0]["status"], rows[0]["source"]),
                         ("echo", "ok", "invoke"))
        self.wait_event_done(sb, rows[0]["event_id"])
        event = sb.db_rows("SELECT * FROM events WHERE event_id = ?", (rows[0]["event_id"],))
        self.assertEqual([(e["state"], json.loads(e["payload"])) for e in event],
                         [("done", {"hello": "world"})], "invoke journals its event")
        # the event from stdin; {} without one
        rc, answer, err, _ = self.invoke(sb, "echo", "-", stdin_text='{"from": "stdin"}')
        self.assertEqual((rc, answer), (0, {"statusCode": 200, "body": {"from": "stdin"}}), err)
        rc, answer, err, _ = self.invoke(sb, "echo")
        self.assertEqual((rc, answer), (0, {"statusCode": 200, "body": {}}), err)
        self.stop(d)

    def test_a_failing_handler_exits_1_with_the_error_json(self):
        sb, d = self.start(zmq_pipeline("failing", "failing.", steps=[
            {"name": "boom", "handler": "fail.error",
             "retry": {"max_attempts": 2, "interval_ms": 10}}]))
        rc, answer, err, _ = self.invoke(sb, "failing", {"x": 1})
        self.assertEqual(rc, 1, err)
        self.assertEqual(answer["errorType"], "TestError")
        self.assertEqual(answer["errorMessage"], "failing on purpose")
        self.assertEqual(answer.get("status"), "error")
        self.assertEqual(answer.get("step"), "boom")
        self.wait_settled(sb, 1, pipeline="failing")
        self.assertEqual(sb.count("invocations WHERE pipeline = 'failing' AND status = 'error'"),
                         2, "the answer comes after the retries")
        self.assertEqual(sb.count("events WHERE pipeline = 'failing' AND state = 'dead'"), 1)
        # a status code >= 500 is a failure too
        sb.add_pipeline(zmq_pipeline("busy", "busy.", steps=[{"handler": "fail.status500"}]))
        d.send_signal(signal.SIGHUP)
        self.wait_for(lambda: "reloaded: 2 pipelines" in d.log(), what="the reload")
        rc, answer, err, _ = self.invoke(sb, "busy", {})
        self.assertEqual(rc, 1, answer)
        self.stop(d)

    def test_an_unknown_pipeline_is_an_error_and_a_rejected_row(self):
        sb, d = self.start(zmq_pipeline("echo", "echo."))
        rc, answer, err, took = self.invoke(sb, "no-such-pipeline", {"x": 1})
        self.assertEqual(rc, 1, err)
        self.assertEqual(answer["errorType"], "UnknownPipeline")
        self.assertIn("no-such-pipeline", answer["errorMessage"])
        self.assertLess(took, 10)
        rows = self.wait_for(lambda: self.rejected(sb), what="a rejected row")
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0]["source"], "zmq:invoke")
        self.assertIn('no pipeline named "no-such-pipeline"', rows[0]["reason"])
        self.assertEqual(json.loads(rows[0]["payload"]), {"x": 1})
        self.assertEqual(sb.count("events"), 0)
        self.stop(d)

    def test_no_daemon_is_exit_3_at_once_with_a_clear_message(self):
        sb, d = self.start(zmq_pipeline("echo", "echo."), start=False)
        # never started: nothing listens on the port
        rc, answer, err, took = self.invoke(sb, "echo", {}, timeout_ms=30000)
        self.assertEqual(rc, 3, (answer, err))
        self.assertEqual(answer["errorType"], "NotConnected")
        self.assertIn("no sluice daemon", answer["errorMessage"])
        self.assertIn(sb.config["zmq"]["router"], err)
        self.assertLess(took, 10, "a refused connection must not wait for --timeout")
        r = sb.cli("publish", "echo.x", "{}")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no sluice daemon", r.stderr)
        # started, then stopped
        d = self.daemon(sb)
        rc, answer, err, _ = self.invoke(sb, "echo", {"up": True})
        self.assertEqual(rc, 0, err)
        self.stop(d)
        rc, answer, err, took = self.invoke(sb, "echo", {}, timeout_ms=30000)
        self.assertEqual(rc, 3, (answer, err))
        self.assertIn("no sluice daemon", err)
        self.assertLess(took, 10)

    def test_no_answer_within_timeout_is_exit_3(self):
        sb, d = self.start(zmq_pipeline("hang", "hang.", steps=[
            {"handler": "crash.hang", "timeout_ms": 3000}]))
        rc, answer, err, took = self.invoke(sb, "hang", {}, timeout_ms=300)
        self.assertEqual(rc, 3, (answer, err))
        self.assertEqual(answer["errorType"], "Timeout")
        self.assertLess(took, 2.5)
        # the run itself goes on: the worker is killed at its deadline
        self.wait_for(lambda: sb.count("invocations WHERE status = 'timeout'") == 1,
                      what="the hung attempt to time out")
        self.stop(d)

    def test_usage_errors_are_exit_2(self):
        sb, d = self.start(zmq_pipeline("echo", "echo."), start=False)
        r = sb.cli("invoke")
        self.assertEqual(r.returncode, 2)
        r = sb.cli("invoke", "echo", "{not json")
        self.assertEqual(r.returncode, 2)
        self.assertIn("not valid JSON", r.stderr)
        r = sb.cli("invoke", "--timeout", "soon", "echo")
        self.assertEqual(r.returncode, 2)

    def test_raw_dealer_requests_get_clear_errors(self):
        sb, d = self.start(zmq_pipeline("echo", "echo."))
        dealer = self.socket(zmq.DEALER, connect=sb.config["zmq"]["router"])

        def ask(*frames):
            dealer.send_multipart(list(frames))
            self.assertTrue(dealer.poll(20000), "no answer to %r" % (frames,))
            return dealer.recv_multipart()

        reply = ask(b"", b"invoke", b"echo")
        self.assertEqual(reply[1], b"error")
        self.assertEqual(json.loads(reply[2])["errorType"], "InvalidRequest")
        self.assertIn("got 3 frames", json.loads(reply[2])["errorMessage"])
        reply = ask(b"", b"invoke", b"echo", b"not json")
        self.assertEqual((reply[1], json.loads(reply[2])["errorType"]),
                         (b"error", "InvalidRequest"))
        self.assertIn("not valid JSON", json.loads(reply[2])["errorMessage"])
        reply = ask(b"", b"invoke", b"echo", b"{}", b"bad\x01id")
        self.assertEqual((reply[1], json.loads(reply[2])["errorType"]),
                         (b"error", "InvalidRequest"))
        reply = ask(b"", b"invoke", b"echo", b'{"ok":1}')
        self.assertEqual(reply[1], b"ok")
        self.assertEqual(json.loads(reply[2]), {"statusCode": 200, "body": {"ok": 1}})
        self.assertEqual(len(reply[3]), 36, "the last frame is the request id")
        self.wait_for(lambda: len(self.rejected(sb)) == 3, what="3 rejected rows")
        self.stop(d)


# -- bad input ------------------------------------------------------------------

class BadInput(ZmqCase):

    # (frames, words the rejected reason must hold)
    GARBAGE = [
        ([b"bad.one-frame"], "got 1"),
        ([b"bad.four", b"{}", b"id-4", b"extra"], "got 4"),
        ([b"bad.nine"] + [b"{}"] * 8, "got 9"),
        ([b"bad.text", b"this is not json"], "not valid JSON"),
        ([b"bad.trailing", b'{"a":1} trailing'], "not valid JSON"),
        ([b"bad.empty", b""], "not valid JSON"),
        ([b"bad.truncated", b'{"a": [1, 2'], "not valid JSON"),
        ([b"bad\x00topic", b"{}"], "NUL"),
        ([b"bad.nul-in-payload", b'{"a":1}\x00{"b":2}'], ("NUL", "not valid JSON")),
        ([b"bad.binary", bytes(range(256))], ("NUL", "not valid JSON")),
        # JSON cJSON alone would take, refused as plugins' parser refuses it (issue 15)
        ([b"bad.leading-zero", b'{"a": 01}'], "leading zero"),
        ([b"bad.raw-tab", b'{"a": "x\ty"}'], "not valid JSON (near byte"),
        ([b"bad.empty-id", b"{}", b""], "event id"),
        ([b"bad.control-id", b"{}", b"line\nbreak"], "event id"),
        ([b"bad.long-id", b"{}", b"x" * 201], "event id"),
    ]

    def test_garbage_frames_are_rejected_and_good_events_still_run(self):
        sb, d = self.start(zmq_pipeline("good", "good."), zmq_pipeline("bad", "bad."))
        push = self.pusher(sb)
        for k, (frames, _) in enumerate(self.GARBAGE):
            push.send_multipart(frames)
            good_id = "good-after-%d" % k
            push.send_multipart([b"good.event", compact({"after": k}).encode(), good_id.encode()])
            self.wait_event_done(sb, good_id)
        self.wait_for(lambda: len(self.rejected(sb)) >= len(self.GARBAGE),
                      what="a rejected row per garbage message")
        rows = self.rejected(sb)
        self.assertEqual(len(rows), len(self.GARBAGE), rows)
        for row, (frames, words) in zip(rows, self.GARBAGE):
            words = (words,) if isinstance(words, str) else words
            self.assertTrue(any(w in row["reason"] for w in words),
                            "reason %r for %r should say %s" % (row["reason"], frames,
                                                               " or ".join(words)))
            self.assertTrue(row["source"].startswith("zmq:pull"), row)
        self.assertEqual(rows[0]["source"], "zmq:pull:bad.one-frame", "the source names the topic")
        self.assertEqual(rows[3]["payload"], b"this is not json", "the payload is kept")
        # nothing garbage became an event
        self.assertEqual(sb.count("events WHERE pipeline = 'bad'"), 0)
        self.assertEqual(sb.count("events WHERE pipeline = 'good' AND state = 'done'"),
                         len(self.GARBAGE))
        # the log names the first ones
        self.assertIn("message rejected", d.log())
        self.stop(d)

    def test_a_flood_of_garbage_is_recorded_without_flooding_the_log(self):
        sb, d = self.start(zmq_pipeline("good", "good."))
        push = self.pusher(sb)
        n = 3000
        for i in range(n):
            push.send_multipart([b"good.garbage", b"not json %d" % i])
        push.send_multipart([b"good.event", b"{}", b"after-flood"])
        self.wait_event_done(sb, "after-flood", timeout=60)
        self.wait_for(lambda: sb.count("rejected") >= n, timeout=60,
                      what="%d rejected rows" % n)
        warnings = d.log().count("message rejected")
        self.assertLess(warnings, 60, "every rejection logged: %d lines" % warnings)
        self.stop(d)

    def test_an_oversized_message_is_refused_and_good_events_still_run(self):
        limit = 4096
        sb, d = self.start(zmq_pipeline("good", "good."),
                           zmq_extra={"max_message_bytes": limit})
        push = self.pusher(sb)
        # just under the limit is an event
        under = compact({"pad": "u" * (limit - 200)}).encode()
        push.send_multipart([b"good.under", under, b"under"])
        self.wait_event_done(sb, "under")
        # over it, libzmq drops the connection (ZMQ_MAXMSGSIZE): no event
        push.send_multipart([b"good.over", compact({"pad": "o" * (4 * limit)}).encode(), b"over"])
        # a new producer connection is served
        self.publish(sb, "good.fresh", {"fresh": True}, "--id", "fresh")
        self.wait_event_done(sb, "fresh")
        # the producer that sent it reconnects: resending with an event id
        # until it is journaled is safe (duplicates are not run again)
        def resend():
            push.send_multipart([b"good.again", b'{"again":true}', b"again"])
            return sb.count("events WHERE event_id = 'again' AND state = 'done'")
        self.wait_for(resend, timeout=30, what="a good event on the same PUSH socket")
        self.assertEqual(sb.count("events WHERE event_id = 'over'"), 0)
        self.assertEqual(sb.count("invocations WHERE event_id = 'again'"), 1)
        d.check_alive()
        self.stop(d)

    def test_an_oversized_message_is_recorded_in_rejected(self):
        """Issue 3: an oversized message is "recorded (journal or invocations
        with a clear error)". Today it vanishes without a trace: no rejected
        row, no log line."""
        limit = 4096
        sb, d = self.start(zmq_pipeline("good", "good."),
                           zmq_extra={"max_message_bytes": limit})
        push = self.pusher(sb)
        push.send_multipart([b"good.over", compact({"pad": "o" * (4 * limit)}).encode()])
        self.publish(sb, "good.sentinel", {}, "--id", "sentinel")
        self.wait_event_done(sb, "sentinel")
        self.wait_for(lambda: self.rejected(sb), timeout=10,
                      what="a rejected row for the oversized message")
        self.assertRegex(self.rejected(sb)[0]["reason"], r"max_message_bytes|too (large|big)")
        self.stop(d)

    def test_an_oversized_invoke_is_answered_with_a_clear_error(self):
        """Issue 3: bad input "for invoke, answered with a clear error". An
        invoke over zmq.max_message_bytes gets no answer at all: the client
        waits its whole --timeout and then says the run "may still finish"."""
        limit = 4096
        sb, d = self.start(zmq_pipeline("good", "good."),
                           zmq_extra={"max_message_bytes": limit})
        rc, answer, err, took = self.invoke(sb, "good", {"pad": "o" * (4 * limit)},
                                            timeout_ms=5000)
        self.assertNotEqual(rc, 0)
        self.assertNotEqual(answer.get("errorType"), "Timeout",
                            "an oversized invoke waited for its whole timeout (%.1f s) and was "
                            "answered %r" % (took, answer))
        self.assertIn("max_message_bytes", answer.get("errorMessage", ""))
        self.stop(d)

    def test_an_unmatched_topic_is_recorded_in_rejected(self):
        sb, d = self.start(zmq_pipeline("orders", "orders."))
        self.publish(sb, "invoices.new", {"n": 1})
        self.publish(sb, "orders.new", {"n": 2}, "--id", "sentinel")
        self.wait_event_done(sb, "sentinel")
        rows = self.wait_for(lambda: self.rejected(sb), what="a rejected row")
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0]["source"], "zmq:invoices.new")
        self.assertIn('no pipeline has a zmq trigger (and match) for topic "invoices.new"',
                      rows[0]["reason"])
        self.assertEqual(json.loads(rows[0]["payload"]), {"n": 1})
        self.assertEqual(sb.count("events"), 1)
        self.stop(d)


# -- routing --------------------------------------------------------------------

class Routing(ZmqCase):

    def test_fan_out_two_pipelines_matching_one_topic_both_run(self):
        sb, d = self.start(zmq_pipeline("all-orders", "orders."),
                           zmq_pipeline("new-orders", "orders.new"),
                           zmq_pipeline("invoices", "invoices."))
        self.publish(sb, "orders.new", {"n": 1}, "--id", "o-1")
        self.publish(sb, "orders.old", {"n": 2}, "--id", "o-2")
        self.wait_events(sb, 3)
        rows = sb.db_rows("SELECT event_id, pipeline, state FROM events ORDER BY pipeline, event_id")
        self.assertEqual([(r["event_id"], r["pipeline"], r["state"]) for r in rows],
                         [("o-1", "all-orders", "done"), ("o-2", "all-orders", "done"),
                          ("o-1", "new-orders", "done")])
        inv = sb.db_rows("SELECT pipeline, event_id FROM invocations ORDER BY pipeline, event_id")
        self.assertEqual([(r["pipeline"], r["event_id"]) for r in inv],
                         [("all-orders", "o-1"), ("all-orders", "o-2"), ("new-orders", "o-1")])
        self.assertEqual(self.rejected(sb), [])
        self.stop(d)

    def test_match_filter_on_the_payload(self):
        big = zmq_pipeline("big-orders", "orders.")
        big["trigger"]["match"] = {"event": {"kind": ["big"],
                                             "amount": [{"numeric": [">", 100]}]}}
        vip = zmq_pipeline("vip", "orders.")
        vip["trigger"]["match"] = {"event": {"customer": {"tier": [{"prefix": "gold"}]}}}
        sb, d = self.start(big, vip)
        cases = [
            ("m-1", {"kind": "big", "amount": 500}, ["big-orders"]),
            ("m-2", {"kind": "big", "amount": 50}, []),
            ("m-3", {"kind": "small", "amount": 500}, []),
            ("m-4", {"kind": "big", "amount": 101, "customer": {"tier": "gold-plus"}},
             ["big-orders", "vip"]),
            ("m-5", {"customer": {"tier": "silver"}}, []),
            ("m-6", {"customer": {"tier": "gold"}}, ["vip"]),
        ]
        for event_id, payload, _ in cases:
            self.publish(sb, "orders.new", payload, "--id", event_id)
        self.publish(sb, "orders.new", {"kind": "big", "amount": 1000}, "--id", "sentinel")
        self.wait_event_done(sb, "sentinel")
        expected = sum(len(c[2]) for c in cases) + 1
        self.wait_events(sb, expected)
        for event_id, _, pipelines in cases:
            got = [r["pipeline"] for r in sb.db_rows(
                "SELECT pipeline FROM events WHERE event_id = ? ORDER BY pipeline", (event_id,))]
            self.assertEqual(got, pipelines, event_id)
        # the ones nobody wanted are in rejected, one row per message
        self.assertEqual(len(self.rejected(sb)), sum(1 for c in cases if not c[2]))
        self.stop(d)

    def test_source_column_and_sluice_logs_show_the_topic(self):
        sb, d = self.start(zmq_pipeline("orders", "orders."))
        self.publish(sb, "orders.created.eu", {"n": 1}, "--id", "src-1")
        self.wait_event_done(sb, "src-1")
        self.assertEqual(sb.db_value("SELECT source FROM events WHERE event_id = 'src-1'"),
                         "zmq:orders.created.eu")
        self.wait_for(lambda: sb.db_value("SELECT source FROM invocations WHERE event_id = "
                                          "'src-1'"), what="the invocation row")
        self.assertEqual(sb.db_value("SELECT source FROM invocations WHERE event_id = 'src-1'"),
                         "zmq:orders.created.eu")
        r = sb.cli("logs", "--pipeline", "orders")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("zmq:orders.created.eu", r.stdout)
        self.stop(d)


# -- events that start before their journal row commits ---------------------------

class RunAhead(ZmqCase):
    """Events whose ids sluice makes itself may start while their journal
    append is still being written (docs/reliability.md, "Run-ahead"). These
    tests check the guarantees that must still hold: a crash loses nothing
    that was journaled and leaves nothing pending, and the brief pause that
    keeps a flood on that path never holds up other pipelines behind a slow
    one."""

    def test_kill_9_during_a_flood_of_unnamed_events_leaves_nothing_pending(self):
        """20,000 events without ids (a pyzmq PUSH), SIGKILL once some have
        run, restart: every journaled event ends done exactly once in the
        journal, with an ok invocation row; none stays pending or repeats."""
        n = 20000
        sb, d = self.start(zmq_pipeline("flood", "flood."))
        push = self.pusher(sb)
        for i in range(n):
            push.send_multipart([b"flood.x", compact({"n": i}).encode()])
        self.wait_for(lambda: sb.count("invocations WHERE pipeline = 'flood'") >= 2000,
                      what="2,000 invocations before the kill")
        d.kill9()
        d2 = self.daemon(sb)
        self.wait_for(lambda: sb.count("events WHERE state = 'pending'") == 0 and
                      sb.count("events WHERE state = 'done'") >= 2000,
                      timeout=240, what=lambda: "no pending events (journal: %s)"
                      % harness.LazyJournal(sb))
        rows = sb.db_rows("SELECT event_id, payload, state, attempts FROM events")
        self.assertEqual({r["state"] for r in rows}, {"done"})
        numbers = [json.loads(r["payload"])["n"] for r in rows]
        self.assertEqual(len(numbers), len(set(numbers)), "an event was journaled twice")
        self.assertTrue(set(numbers) <= set(range(n)))
        missing_ok = sb.count("events e WHERE NOT EXISTS (SELECT 1 FROM invocations i WHERE"
                              " i.event_id = e.event_id AND i.status = 'ok')")
        self.assertEqual(missing_ok, 0, "a done event without an ok invocation row")
        self.assertEqual(sb.count("events WHERE attempts < 1"), 0)
        self.stop(d2)

    def test_a_flooded_slow_pipeline_does_not_hold_up_another(self):
        """A pipeline whose handler takes 300 ms gets 40 events while a fast
        one gets 500: the fast ones all finish while most slow ones still
        wait (their overflow waits in the journal, and the pause that lets a
        lane's executors catch up gives up on a lane whose runs do not end)."""
        slow = zmq_pipeline("slow", "slow.", steps=[{"name": "s", "handler": "fail.slow"}],
                            concurrency=1)
        sb, d = self.start(slow, zmq_pipeline("fast", "fast."), config={"queue_size": 8})
        push = self.pusher(sb)
        for i in range(40):
            push.send_multipart([b"slow.x", compact({"n": i}).encode()])
        self.wait_for(lambda: sb.count("invocations WHERE pipeline = 'slow'") >= 1,
                      what="the slow pipeline running")
        for i in range(500):
            push.send_multipart([b"fast.x", compact({"n": i}).encode()])
        self.wait_events(sb, 500, pipeline="fast", timeout=120)
        slow_settled = sb.count("events WHERE pipeline = 'slow' AND state <> 'pending'")
        self.assertLess(slow_settled, 30, "the fast pipeline waited for the slow one")
        self.wait_settled(sb, 40, pipeline="slow", timeout=240)
        self.stop(d)


# -- batches --------------------------------------------------------------------

def batch_pipeline(name, size=5, window_ms=3000, handler="batch.partial", **extra):
    p = zmq_pipeline(name, name + ".", steps=[{"name": "batch", "handler": handler}],
                     batch={"size": size, "window_ms": window_ms}, concurrency=1)
    p.update(extra)
    return p


class Batches(ZmqCase):

    def publish_lines(self, sb, topic, payloads):
        r = subprocess.run([harness.sluice_bin(), "publish", "-c", sb.config_path, "--lines",
                            topic], input="".join(compact(p) + "\n" for p in payloads),
                           cwd=sb.cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)

    def push_all(self, sb, topic, items):
        """Send (event id, payload) pairs at once from one PUSH socket."""
        push = self.pusher(sb)
        for event_id, payload in items:
            push.send_multipart([topic.encode(), compact(payload).encode(), event_id.encode()])

    def batch_rows(self, sb, pipeline):
        """The first step's invocation rows, with event_id parsed (a batch's
        row names the ids of its items as a JSON array)."""
        rows = sb.db_rows("SELECT * FROM invocations WHERE pipeline = ? AND step = 'batch'"
                          " ORDER BY id", (pipeline,))
        for r in rows:
            r["ids"] = json.loads(r["event_id"])
        return rows

    def test_ten_events_with_batch_size_5_reach_the_handler_as_records(self):
        sb, d = self.start(batch_pipeline("b"))
        self.publish_lines(sb, "b.x", [{"i": i} for i in range(10)])
        events = self.wait_events(sb, 10, pipeline="b")
        rows = self.batch_rows(sb, "b")
        self.assertEqual([len(r["ids"]) for r in rows], [5, 5], rows)
        self.assertEqual(sorted(i for r in rows for i in r["ids"]),
                         sorted(e["event_id"] for e in events),
                         "each event is in exactly one batch, and keeps its own journal row")
        self.assertTrue(all(r["status"] == "ok" and r["attempt"] == 1 for r in rows))
        self.assertEqual({e["attempts"] for e in events}, {1})
        self.stop(d)

    def test_the_first_step_gets_sqs_records(self):
        # an echo first step answers with the batch event itself; the next
        # step's input and the success record show what the handler got
        p = batch_pipeline("shape", handler="echo.handler",
                           on_success={"directory": "var/records"})
        p["steps"].append({"name": "after", "handler": "echo.handler"})
        sb, d = self.start(p)
        payloads = [{"i": i} for i in range(5)]
        self.push_all(sb, "shape.x", [("shape-%d" % i, p) for i, p in enumerate(payloads)])
        self.wait_events(sb, 5, pipeline="shape")
        folder = sb.path("var/records")
        # dot-files are records being written; they are renamed when complete
        files = self.wait_for(lambda: [f for f in os.listdir(folder) if not f.startswith(".")]
                              if os.path.isdir(folder) else None, what="a success record")
        with open(os.path.join(folder, files[0])) as f:
            record = json.load(f)
        records = record["responsePayload"]["Records"]
        # SQS's record shape (issue 16): the body is the event as text
        self.assertEqual([r["messageId"] for r in records], ["shape-%d" % i for i in range(5)])
        self.assertEqual({r["eventSource"] for r in records}, {"aws:sqs"})
        self.assertEqual({r["messageAttributes"]["source"]["stringValue"] for r in records},
                         {"zmq:shape.x"})
        self.assertEqual([json.loads(r["body"]) for r in records], payloads)
        self.stop(d)

    def test_batch_item_failures_retry_only_the_named_items_then_dead_letter_them(self):
        p = batch_pipeline("partial", size=10)
        p["steps"][0]["retry"] = {"max_attempts": 3, "interval_ms": 50}
        sb, d = self.start(p)
        payloads = []
        for i in range(10):
            body = {"i": i}
            if i in (2, 7):
                body["fail"] = True            # named in every attempt
            if i == 4:
                body.update(fail=True, heal_at=2)   # named in attempt 1 only
            payloads.append(body)
        self.push_all(sb, "partial.x", [("item-%d" % i, p) for i, p in enumerate(payloads)])
        self.wait_settled(sb, 10, pipeline="partial")
        rows = self.batch_rows(sb, "partial")
        self.assertEqual([(r["attempt"], sorted(r["ids"])) for r in rows],
                         [(1, ["item-%d" % i for i in range(10)]),
                          (2, ["item-2", "item-4", "item-7"]),
                          (3, ["item-2", "item-7"])],
                         "only the named items are retried, in smaller batches")
        events = {e["event_id"]: e for e in sb.db_rows(
            "SELECT * FROM events WHERE pipeline = 'partial'")}
        for i in range(10):
            e = events["item-%d" % i]
            if i in (2, 7):
                self.assertEqual((e["state"], e["attempts"]), ("dead", 3), e)
                self.assertIn("batchItemFailures", e["error"])
            elif i == 4:
                self.assertEqual((e["state"], e["attempts"]), ("done", 2), e)
            else:
                self.assertEqual((e["state"], e["attempts"]), ("done", 1), e)
        self.stop(d)

    def test_every_item_of_a_batch_gets_its_own_destination_record(self):
        """A folder destination is named after the request id, which a batch
        shares: 5 done events should leave 5 success records (and 2 dead ones
        2 failure records), each naming its own event."""
        p = batch_pipeline("recs", size=5, on_success={"directory": "var/ok"},
                           on_failure={"directory": "var/dead"})
        sb, d = self.start(p)
        self.push_all(sb, "recs.x", [("rec-%d" % i, {"i": i, "fail": i >= 5})
                                     for i in range(7)])
        self.wait_settled(sb, 7, pipeline="recs")
        self.assertEqual(sb.count("events WHERE state = 'done'"), 5)

        def record_ids(folder):
            path = sb.path(folder)
            ids = []
            for name in sorted(os.listdir(path)) if os.path.isdir(path) else []:
                if name.startswith("."):
                    continue  # a record being written
                with open(os.path.join(path, name)) as f:
                    ids.append(json.load(f)["sluice"]["eventId"])
            return sorted(ids)
        self.assertEqual(record_ids("var/ok"), ["rec-%d" % i for i in range(5)],
                         "success records lost: items of one batch overwrite each other")
        self.assertEqual(record_ids("var/dead"), ["rec-5", "rec-6"])
        self.stop(d)

    def test_invoke_on_a_batch_pipeline_gets_the_runs_answer(self):
        """`sluice invoke` on a pipeline with "batch": the event runs and is
        done, but the caller is told it was Interrupted ("sluice stopped
        before the run finished")."""
        sb, d = self.start(batch_pipeline("binv", size=5, window_ms=0))
        rc, answer, err, _ = self.invoke(sb, "binv", {"i": 1})
        self.wait_events(sb, 1, pipeline="binv")
        self.assertNotEqual(answer.get("errorType"), "Interrupted",
                            "the event is done, but invoke answered %r" % answer)
        self.assertEqual(rc, 0, answer)
        self.stop(d)


if __name__ == "__main__":
    harness.main()
