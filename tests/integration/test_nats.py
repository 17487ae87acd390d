"""The nats trigger and destination against real `nats-server -js` processes (natsserver.py):
two daemons bound to one durable pull consumer share a flood, each message done exactly once
across both databases; acknowledgement after the commit; redeliveries recognised; `sluice
check` on the trigger's keys; `sluice publish --nats`."""

import datetime
import json
import os
import shutil
import signal
import subprocess
import textwrap
import unittest

import harness
import natsserver
from harness import SluiceTestCase

PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else shutil.which("python3")
SLOW = textwrap.dedent('''\
    import time

    def slow(event, context):
        time.sleep(event["data"]["sleep_s"])
        return {"delivered": event["delivered"]}
''')

SANITIZED = harness.sanitizer() is not None
# the brief's 20,000 in a release build; a smaller flood under the sanitizers (several times
# slower), so the test stays well under a minute there too
FLOOD = 4000 if SANITIZED else 20000


def nats_pipeline(name, url, **trigger):
    t = {"url": url, "stream": "ORDERS", "subject": "orders.>", "consumer": "sluice-orders",
         "create": True}
    t.update(trigger)
    return {"name": name, "trigger": {"nats": t}, "isolation": "thread",
            "steps": [{"name": "echo", "handler": "echo.handler"}]}


@unittest.skipUnless(natsserver.available(), "nats-server is not installed")
class Nats(SluiceTestCase):

    def server(self, sb):
        s = natsserver.NatsServer(sb.root).start()
        self.addCleanup(s.stop)
        return s

    def publish(self, url, subject, lines=None, payload=None, extra=(), timeout=120):
        argv = [harness.sluice_bin(), "publish", "--nats", url, "--timeout", "10000"]
        argv += list(extra)
        if lines is not None:
            argv += ["--lines", subject]
        else:
            argv += [subject, payload]
        r = subprocess.run(argv, input="".join(l + "\n" for l in lines) if lines else None,
                           capture_output=True, text=True, timeout=timeout)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def done_ids(self, sb):
        return [r["event_id"] for r in sb.db_rows(
            "SELECT event_id FROM events WHERE state = 'done'")]

    def test_two_daemons_share_a_flood_each_message_done_exactly_once(self):
        a, b = self.sandbox({"node_name": "node-a"}), self.sandbox({"node_name": "node-b"})
        srv = self.server(a)
        for sb in (a, b):
            sb.add_pipeline(nats_pipeline("orders", srv.url))
        da, db = self.daemon(a), self.daemon(b)
        self.wait_for(lambda: "bound consumer" in da.log() and "bound consumer" in db.log(),
                      what="both daemons bound to the consumer")
        self.publish(srv.url, "orders.eu", lines=['{"n":%d}' % i for i in range(FLOOD)])
        self.wait_for(lambda: len(self.done_ids(a)) + len(self.done_ids(b)) >= FLOOD,
                      timeout=240, what="every message done on one node or the other")
        # the acks reached the server: a restart of both gets nothing again
        self.stop(da)
        self.stop(db)
        ids_a, ids_b = self.done_ids(a), self.done_ids(b)
        both = ids_a + ids_b
        self.assertEqual(len(both), FLOOD, "done rows over both databases")
        self.assertEqual(len(set(both)), FLOOD, "a message done on both nodes")
        self.assertEqual(set(both), {"ORDERS:%d" % (i + 1) for i in range(FLOOD)})
        self.assertGreater(len(ids_a), 0, "node A took none")
        self.assertGreater(len(ids_b), 0, "node B took none")
        for sb in (a, b):
            self.assertEqual(sb.count("events WHERE state <> 'done'"), 0)
        # the event shape: the body as data, and where it came from
        row = a.db_rows("SELECT payload FROM events LIMIT 1")[0]
        ev = json.loads(row["payload"])
        self.assertEqual(ev["subject"], "orders.eu")
        self.assertEqual(ev["stream"], "ORDERS")
        self.assertEqual(ev["delivered"], 1)
        self.assertIsNone(ev["msg_id"])
        self.assertIn("n", ev["data"])
        self.assertEqual("ORDERS:%d" % ev["sequence"], a.db_value(
            "SELECT event_id FROM events WHERE payload = ?", (row["payload"],)))
        # one command sees the fleet: both databases attached
        r = a.cli("stats", "--db", a.database, "--db", b.database, with_config=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        line = next(l for l in r.stdout.splitlines() if l.startswith("orders/echo"))
        self.assertEqual(int(line.split()[1]), FLOOD, r.stdout)
        r = a.cli("logs", "--db", a.database, "--db", b.database, "--limit", "400", "--json",
                  with_config=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        nodes = {json.loads(l)["node"] for l in r.stdout.splitlines()}
        self.assertLessEqual(nodes, {"node-a", "node-b"})
        # every row says which node wrote it
        for sb, name in ((a, "node-a"), (b, "node-b")):
            for table in ("events", "invocations"):
                self.assertEqual(sb.db_rows("SELECT DISTINCT node FROM %s" % table),
                                 [{"node": name}], table)
        self.assertEqual(len(r.stdout.splitlines()), 400)
        r = a.cli("logs", "--db", a.database, "--db", b.database, "--follow",
                  with_config=False)
        self.assertEqual(r.returncode, 2)
        # nothing was left unacknowledged: a node started again receives nothing
        da2 = self.daemon(a)
        self.wait_for(lambda: "bound consumer" in da2.log(), what="bound again")
        self.publish(srv.url, "orders.eu", payload='{"sentinel":1}')
        self.wait_for(lambda: len(self.done_ids(a)) == len(ids_a) + 1, what="the sentinel")
        self.assertEqual(a.count("events"), len(ids_a) + 1)

    def test_server_restart_costs_no_message(self):
        sb = self.sandbox({"python": PYTHON})
        srv = self.server(sb)
        # a handler of a few ms, so the flood is still running when the server goes
        sb.drop("code/app.py", SLOW)
        p = nats_pipeline("orders", srv.url, ack_wait_ms=2000)
        p.pop("isolation")
        p["steps"] = [{"name": "slow", "runtime": "python3", "code": "code",
                       "handler": "app.slow"}]
        sb.add_pipeline(p)
        d = self.daemon(sb)
        self.wait_for(lambda: "bound consumer" in d.log(), what="bound")
        self.publish(srv.url, "orders.eu",
                     lines=['{"sleep_s":0.003,"n":%d}' % i for i in range(2000)])
        self.wait_for(lambda: len(self.done_ids(sb)) >= 20, what="the first ones done")
        self.assertLess(len(self.done_ids(sb)), 2000, "all done before the server went")
        srv.stop(sig=signal.SIGKILL)
        srv.start()  # the same port and store: the stream and its consumer are still there
        self.publish(srv.url, "orders.eu",
                     lines=['{"sleep_s":0,"n":%d}' % i for i in range(2000, 2100)])
        self.wait_for(lambda: len(set(self.done_ids(sb))) == 2100, timeout=90,
                      what="every message done after the server came back")
        self.assertEqual(len(self.done_ids(sb)), 2100)

    def test_missing_stream_names_the_command_and_binds_once_created(self):
        a, b = self.sandbox(), self.sandbox()
        srv = self.server(a)
        a.add_pipeline(nats_pipeline("orders", srv.url, create=False))
        r = a.cli("check")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        da = self.daemon(a)
        self.wait_for(lambda: "stream ORDERS does not exist" in da.log(),
                      what="the missing stream reported")
        self.assertIn("nats stream add ORDERS --subjects 'orders.>'", da.log())
        self.assertIn('or set "create": true', da.log())
        # another node creates it; the first binds on its next try and takes messages
        b.add_pipeline(nats_pipeline("orders", srv.url, create=True))
        self.daemon(b)
        self.wait_for(lambda: "bound consumer sluice-orders" in da.log(), timeout=30,
                      what="node A bound once the stream exists")
        self.publish(srv.url, "orders.eu", lines=['{"n":%d}' % i for i in range(40)])
        self.wait_for(lambda: len(self.done_ids(a)) + len(self.done_ids(b)) >= 40,
                      what="40 messages done")
        self.assertEqual(len(set(self.done_ids(a) + self.done_ids(b))), 40)

    def test_check_reports_bad_nats_keys(self):
        sb = self.sandbox()
        sb.add_pipeline(nats_pipeline("orders", "nats://127.0.0.1:4222", consumer="a.b",
                                      ack_wait=5))
        r = sb.cli("check")
        self.assertNotEqual(r.returncode, 0)
        out = r.stdout + r.stderr
        self.assertIn("orders.json: trigger.nats.consumer: \"a.b\": a durable name has no", out)
        self.assertIn("orders.json: trigger.nats: unknown key \"ack_wait\"", out)

    def test_body_that_is_not_json_is_rejected_and_not_redelivered(self):
        sb = self.sandbox()
        srv = self.server(sb)
        sb.add_pipeline(nats_pipeline("orders", srv.url))
        d = self.daemon(sb)
        self.wait_for(lambda: "bound consumer" in d.log(), what="bound")
        self.publish(srv.url, "orders.eu", payload='{"ok":1}')
        self.wait_for(lambda: len(self.done_ids(sb)) == 1, what="the first message done")
        natsserver.raw_publish(srv.port, "orders.eu", b"not json")
        self.wait_for(lambda: sb.count("rejected") == 1, what="the body rejected")
        row = sb.db_rows("SELECT source, reason, payload FROM rejected")[0]
        self.assertEqual(row["source"], "nats:orders.eu")
        self.assertIn("not JSON", row["reason"])
        self.publish(srv.url, "orders.eu", payload='{"ok":2}')
        self.wait_for(lambda: len(self.done_ids(sb)) == 2, what="the message after it")
        # terminated, not nak'd: a restart does not see it again
        self.stop(d)
        d2 = self.daemon(sb)
        self.wait_for(lambda: "bound consumer" in d2.log(), what="bound again")
        self.publish(srv.url, "orders.eu", payload='{"ok":3}')
        self.wait_for(lambda: len(self.done_ids(sb)) == 3, what="the sentinel")
        self.assertEqual(sb.count("rejected"), 1)

    def test_destination_publishes_with_the_event_id_as_nats_msg_id(self):
        sb = self.sandbox()
        srv = self.server(sb)
        orders = nats_pipeline("orders", srv.url)
        orders["on_success"] = {"nats": {"url": srv.url, "subject": "results.ok"}}
        sb.add_pipeline(orders)
        sb.add_pipeline(nats_pipeline("results", srv.url, stream="RESULTS", subject="results.>",
                                      consumer="sluice-results"))
        d = self.daemon(sb)
        self.wait_for(lambda: d.log().count("bound consumer") == 2, what="both bound")
        self.publish(srv.url, "orders.eu", payload='{"n":1}', extra=["--id", "order-1"])
        # a producer's retry with the same id is not stored twice (JetStream's dedup window):
        # the next message is sequence 2
        self.publish(srv.url, "orders.eu", payload='{"n":1}', extra=["--id", "order-1"])
        self.publish(srv.url, "orders.eu", payload='{"n":2}')
        self.wait_events(sb, 2, pipeline="results")
        rows = sb.db_rows("SELECT event_id, payload FROM events WHERE pipeline = 'results' "
                          "ORDER BY event_id")
        self.assertEqual([r["event_id"] for r in rows], ["ORDERS:2", "order-1"])
        for r in rows:
            ev = json.loads(r["payload"])
            self.assertEqual(ev["subject"], "results.ok")
            self.assertEqual(ev["msg_id"], r["event_id"])
            self.assertEqual(ev["data"]["requestPayload"]["data"]["n"],
                             1 if r["event_id"] == "order-1" else 2)
        self.assertEqual(sb.count("events WHERE pipeline = 'orders'"), 2)
        r = sb.cli("check")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_destination_whose_server_is_down_holds_nothing_up(self):
        # the record goes out once the server is there; until then the loop
        # must not wait for it (nothing else would run, invokes included)
        sb = self.sandbox()
        srv = natsserver.NatsServer(sb.root)  # not started yet
        self.addCleanup(srv.stop)
        orders = {"name": "orders", "trigger": {"zmq": {"topic": "unused.orders"}},
                  "isolation": "thread", "steps": [{"name": "echo", "handler": "echo.handler"}],
                  "on_success": {"nats": {"url": srv.url, "subject": "results.ok"}}}
        sb.add_pipeline(orders)
        sb.add_pipeline(nats_pipeline("results", srv.url, stream="RESULTS", subject="results.>",
                                      consumer="sluice-results"))
        d = self.daemon(sb)
        for n in (1, 2):
            p, out = harness.invoke_run(self, sb, "orders", {"n": n}, timeout_ms=10000)
            self.assertEqual((p.returncode, out["body"]), (0, {"n": n}), p.stderr)
        self.assertIn("results.ok: no connection to %s yet (sluice tries again every 0.5 s; is "
                      "nats-server running there?)" % srv.url, d.log())
        srv.start()
        self.wait_for(lambda: "bound consumer" in d.log(), what="the results pipeline bound")
        sent = []

        def delivered():
            # records sent before the publisher's connection is up are refused (logged
            # above); one sent after it is stored
            n = len(sent) + 3
            p, _ = harness.invoke_run(self, sb, "orders", {"n": n}, timeout_ms=10000)
            self.assertEqual(p.returncode, 0, p.stderr)
            sent.append(n)
            return any(json.loads(r["payload"])["data"]["requestPayload"]["n"] in sent
                       for r in sb.db_rows("SELECT payload FROM events WHERE pipeline = 'results'"))
        self.wait_for(delivered, what="a record published once the server was up")

    def test_publish_nats_reports_a_subject_no_stream_takes(self):
        sb = self.sandbox()
        srv = self.server(sb)
        r = subprocess.run([harness.sluice_bin(), "publish", "--nats", srv.url, "--timeout",
                            "500", "nowhere.x", '{"a":1}'], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no JetStream stream takes subject nowhere.x", r.stderr)

    def test_kill9_mid_flood_and_restart_every_message_done(self):
        n = 1500 if SANITIZED else 4000
        a, b = self.sandbox(), self.sandbox()
        srv = self.server(a)
        for sb in (a, b):
            sb.add_pipeline(nats_pipeline("orders", srv.url, ack_wait_ms=2000))
        da, db = self.daemon(a), self.daemon(b)
        self.wait_for(lambda: "bound consumer" in da.log() and "bound consumer" in db.log(),
                      what="both bound")
        lines = "".join('{"n":%d}\n' % i for i in range(n))
        pub = subprocess.Popen([harness.sluice_bin(), "publish", "--nats", srv.url, "--lines",
                                "orders.eu"], stdin=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
        self.addCleanup(lambda: pub.poll() is None and pub.kill())
        pub.stdin.write(lines)
        pub.stdin.close()
        self.wait_for(lambda: len(self.done_ids(a)) >= n // 10, timeout=60,
                      what="node A well into the flood")
        da.kill9()
        self.assertEqual(pub.wait(timeout=120), 0, pub.stderr.read())
        # B takes the rest, and what A held once its AckWait runs out
        self.wait_for(lambda: len(self.done_ids(b)) > n // 10, timeout=60, what="B going on")
        restart_at = datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        da2 = self.daemon(a)
        everything = {"ORDERS:%d" % (i + 1) for i in range(n)}
        self.wait_for(lambda: set(self.done_ids(a)) | set(self.done_ids(b)) == everything,
                      timeout=120, what="every message done on one node or the other")
        self.stop(da2)
        self.stop(db)
        ids_a, ids_b = self.done_ids(a), self.done_ids(b)
        self.assertEqual(len(ids_a), len(set(ids_a)), "done twice on node A")
        self.assertEqual(len(ids_b), len(set(ids_b)), "done twice on node B")
        # What A held and had not finished was left to NATS, not resumed from A's journal at
        # its restart; the only events both nodes may have finished are ones A committed in
        # the instant before its ack left (docs/reliability.md), never more than A held
        # (at most 1,024, the most a node holds: core/source_nats.c IN_HAND_MAX).
        twice = set(ids_a) & set(ids_b)
        self.assertLessEqual(len(twice), 1024, "done on both nodes: %s" % sorted(twice))
        for eid in twice:
            ev = json.loads(b.db_value("SELECT payload FROM events WHERE event_id = ?", (eid,)))
            self.assertGreater(ev["delivered"], 1, eid)
            self.assertLess(a.db_value("SELECT finished_at FROM events WHERE event_id = ?",
                                       (eid,)), restart_at,
                            "%s: node A ran a leftover of its journal after its restart" % eid)

    def test_poison_message_dies_on_one_node_and_is_not_redelivered(self):
        a, b = self.sandbox(), self.sandbox()
        srv = self.server(a)
        for sb in (a, b):
            p = nats_pipeline("orders", srv.url)
            p["steps"] = [{"name": "boom", "handler": "fail.error",
                           "retry": {"max_attempts": 2, "interval_ms": 10}}]
            sb.add_pipeline(p)
        da, db = self.daemon(a), self.daemon(b)
        self.wait_for(lambda: "bound consumer" in da.log() and "bound consumer" in db.log(),
                      what="both bound")
        self.publish(srv.url, "orders.eu", payload='{"poison":1}', extra=["--id", "poison"])

        def rows():
            return [r for sb in (a, b) for r in sb.db_rows(
                "SELECT event_id, state, attempts FROM events WHERE event_id = 'poison'")]
        self.wait_for(lambda: [r["state"] for r in rows()] == ["dead"], what="poison dead")
        # a later message is taken and dies too; the poison is not seen again anywhere
        self.publish(srv.url, "orders.eu", payload='{"after":1}', extra=["--id", "after"])
        self.wait_for(lambda: a.count("events WHERE event_id = 'after' AND state = 'dead'") +
                      b.count("events WHERE event_id = 'after' AND state = 'dead'") == 1,
                      what="the next message dead")
        self.assert_stays(lambda: len(rows()) == 1 and rows()[0]["attempts"] == 2, 3.0,
                          "the poison message dead once, after its 2 attempts")
        self.assertEqual(sum(sb.count("invocations WHERE event_id = 'poison'")
                             for sb in (a, b)), 2, "attempts of the poison message")
        # the fleet's dead events in one listing, each under its node's file
        r = a.cli("replay", "--db", a.database, "--db", b.database, "--dry-run",
                  with_config=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("2 dead events would be replayed over 2 databases", r.stdout)
        self.assertIn(" poison: ", r.stdout)
        self.assertIn(a.database + ":", r.stdout)
        r = a.cli("replay", "--db", a.database, with_config=False)
        self.assertEqual(r.returncode, 2)

    @unittest.skipUnless(PYTHON, "python3 is not installed")
    def test_slow_handler_beyond_ack_wait_keeps_its_message(self):
        a, b = self.sandbox({"python": PYTHON}), self.sandbox({"python": PYTHON})
        srv = self.server(a)
        for sb in (a, b):
            sb.drop("code/app.py", SLOW)
            p = nats_pipeline("orders", srv.url, ack_wait_ms=1000)
            p.pop("isolation")
            p["steps"] = [{"name": "slow", "runtime": "python3", "code": "code",
                           "handler": "app.slow", "timeout_ms": 30000}]
            sb.add_pipeline(p)
        da, db = self.daemon(a), self.daemon(b)
        self.wait_for(lambda: "bound consumer" in da.log() and "bound consumer" in db.log(),
                      what="both bound")
        # four times AckWait: without in-progress acks it would be redelivered to the other
        self.publish(srv.url, "orders.eu", payload='{"sleep_s": 4}', extra=["--id", "slow"])
        self.wait_for(lambda: a.count("events WHERE state = 'done'") +
                      b.count("events WHERE state = 'done'") == 1, timeout=60,
                      what="the slow message done")
        self.publish(srv.url, "orders.eu", payload='{"sleep_s": 0}', extra=["--id", "next"])
        self.wait_for(lambda: a.count("events WHERE event_id = 'next'") +
                      b.count("events WHERE event_id = 'next'") == 1, what="the next one")
        self.wait_for(lambda: a.count("events WHERE state = 'done'") +
                      b.count("events WHERE state = 'done'") == 2, what="the next one done")
        self.assertEqual(a.count("events WHERE event_id = 'slow'") +
                         b.count("events WHERE event_id = 'slow'"), 1, "run on both nodes")
        self.assertEqual(a.count("invocations") + b.count("invocations"), 2,
                         "the slow message ran more than once")
        ev = json.loads((a.db_rows("SELECT payload FROM events WHERE event_id = 'slow'") or
                         b.db_rows("SELECT payload FROM events WHERE event_id = 'slow'"))[0]
                        ["payload"])
        self.assertEqual(ev["delivered"], 1)

    def test_cluster_stream_leader_stopped_mid_flood_loses_nothing(self):
        # three servers on two CPUs are slow to elect: modest counts, generous deadlines
        n = 300 if SANITIZED else 1000
        a, b = self.sandbox(), self.sandbox()
        servers = natsserver.cluster(a.root)
        for s in servers:
            self.addCleanup(s.stop)
            s.start()
        urls = ",".join(s.url for s in servers)
        for sb in (a, b):
            sb.add_pipeline(nats_pipeline("orders", urls, replicas=3, ack_wait_ms=3000))
        da, db = self.daemon(a), self.daemon(b)
        self.wait_for(lambda: "bound consumer" in da.log() and "bound consumer" in db.log(),
                      timeout=90, what="both bound to the R3 stream")
        pub = subprocess.Popen([harness.sluice_bin(), "publish", "--nats", urls, "--lines",
                                "--id", "m", "--timeout", "60000", "orders.eu"],
                               stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: pub.poll() is None and pub.kill())
        pub.stdin.write("".join('{"n":%d}\n' % i for i in range(n)))
        pub.stdin.close()

        def done_ns():
            return [json.loads(r["payload"])["data"]["n"] for sb in (a, b) for r in sb.db_rows(
                "SELECT payload FROM events WHERE state = 'done'")]
        self.wait_for(lambda: len(done_ns()) >= n // 4, timeout=120, what="a quarter done")
        leader = self.wait_for(lambda: natsserver.stream_leader(servers, "ORDERS"),
                               what="the stream's leader")
        victim = next(s for s in servers if s.name == leader)
        victim.stop(sig=signal.SIGTERM)
        self.assertEqual(pub.wait(timeout=180), 0, pub.stderr.read())
        self.wait_for(lambda: set(done_ns()) == set(range(n)), timeout=180,
                      what="every message done after the leader stopped")
        self.assertNotEqual(natsserver.stream_leader(servers, "ORDERS"), leader)
        for sb in (a, b):
            ids = [r["event_id"] for r in sb.db_rows("SELECT event_id FROM events")]
            self.assertEqual(len(ids), len(set(ids)))


if __name__ == "__main__":
    harness.main()
