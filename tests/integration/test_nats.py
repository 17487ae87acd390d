"""The nats trigger and destination against real `nats-server -js` processes (natsserver.py):
two daemons bound to one durable pull consumer share a flood, each message done exactly once
across both databases; acknowledgement after the commit; redeliveries recognised; `sluice
check` on the trigger's keys; `sluice publish --nats`."""

import json
import os
import subprocess
import unittest

import harness
import natsserver
from harness import SluiceTestCase

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
        a, b = self.sandbox(), self.sandbox()
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
        # nothing was left unacknowledged: a node started again receives nothing
        da2 = self.daemon(a)
        self.wait_for(lambda: "bound consumer" in da2.log(), what="bound again")
        self.publish(srv.url, "orders.eu", payload='{"sentinel":1}')
        self.wait_for(lambda: len(self.done_ids(a)) == len(ids_a) + 1, what="the sentinel")
        self.assertEqual(a.count("events"), len(ids_a) + 1)

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

    def test_publish_nats_reports_a_subject_no_stream_takes(self):
        sb = self.sandbox()
        srv = self.server(sb)
        r = subprocess.run([harness.sluice_bin(), "publish", "--nats", srv.url, "nowhere.x",
                            '{"a":1}'], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no JetStream stream takes subject nowhere.x", r.stderr)


if __name__ == "__main__":
    harness.main()
