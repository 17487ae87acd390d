"""The zmq_forward plugin (plugins/zmq_forward) through a running daemon: real
PULL and SUB sockets receive what pipelines forward, under both isolation
modes; a missing receiver is a clear, timely failure; config errors say how
to fix them; the sample pipeline pipelines/forward.json works."""

import json
import os
import signal
import sys
import time

import harness
from harness import compact, endpoint, tcp_zmq_config, zmq_pipeline
from cases import PluginCase

try:
    import zmq
except ImportError:  # pragma: no cover - python3-zmq is a test dependency
    zmq = None


def fwd_step(config, name="forward", **extra):
    s = {"name": name, "handler": "zmq_forward.handler", "config": config}
    s.update(extra)
    return s


class ZmqForward(PluginCase):

    def setUp(self):
        super().setUp()
        if zmq is None:
            self.skipTest("python3-zmq is not installed for %s" % sys.executable)
        self.ctx = zmq.Context()
        self.addCleanup(self.ctx.destroy, 0)

    # -- helpers ------------------------------------------------------------
    def start(self, *pipelines):
        sb = self.sandbox(tcp_zmq_config())
        for p in pipelines:
            sb.add_pipeline(p)
        return sb, self.daemon(sb)

    def receiver(self, kind, where, bind=True, topics=(b"",)):
        s = self.ctx.socket(kind)
        self.addCleanup(s.close)
        s.setsockopt(zmq.LINGER, 0)
        if kind == zmq.SUB:
            for t in topics:
                s.setsockopt(zmq.SUBSCRIBE, t)
        if bind:
            s.bind(where)
        else:
            s.connect(where)
        return s

    def recv(self, sock, timeout=10.0):
        """Both frames of one message, or fail after timeout seconds."""
        if not sock.poll(int(timeout * 1000)):
            self.fail("nothing arrived within %.1f s\n%s" % (timeout, self.daemon_logs()))
        return sock.recv_multipart()

    def publish(self, sb, topic, event):
        r = sb.cli("publish", topic, compact(event))
        self.assertEqual(r.returncode, 0, r.stderr)

    def invoke(self, sb, pipeline, event, timeout_ms=30000):
        r = sb.cli("invoke", "--timeout", str(timeout_ms), pipeline, compact(event),
                   timeout=timeout_ms / 1000 + 30)
        try:
            return r.returncode, json.loads(r.stdout)
        except ValueError:
            self.fail("sluice invoke printed no JSON: %r (stderr %r)" % (r.stdout, r.stderr))

    def wait_log(self, sb, pipeline, text):
        self.wait_for(lambda: any(text in m for m in self.logs(sb, pipeline)),
                      what="a log line of %s holding %r" % (pipeline, text))

    def wait_until_subscribed(self, sb, topic, sub, make_event):
        """PUB drops what it sends before a subscription arrives (ZeroMQ's
        slow joiner): publish probes until one gets through. Returns the
        number of probes sent."""
        deadline = time.monotonic() + 15
        n = 0
        while time.monotonic() < deadline:
            self.publish(sb, topic, make_event(n))
            n += 1
            if sub.poll(200):
                sub.recv_multipart()
                return n
        self.fail("no probe reached the subscriber\n%s" % self.daemon_logs())

    # -- push -------------------------------------------------------------
    def test_push_sends_topic_and_json_under_both_isolations(self):
        for isolation in ("process", "thread"):
            with self.subTest(isolation=isolation):
                where = endpoint()
                pull = self.receiver(zmq.PULL, where)
                name = "fwd_" + isolation
                sb, d = self.start(zmq_pipeline(name, [fwd_step({"endpoint": where,
                                                                 "topic": "orders.out"})],
                                                isolation=isolation, concurrency=1))
                self.publish(sb, name + ".new", {"id": 1, "name": "naïve"})
                topic, payload = self.recv(pull)
                self.assertEqual(topic, b"orders.out")
                self.assertEqual(json.loads(payload), {"id": 1, "name": "naïve"})

                rc, out = self.invoke(sb, name, {"id": 2})
                self.assertEqual(rc, 0, out)
                self.assertEqual(out, {"statusCode": 200, "body": {
                    "forwarded": True, "endpoint": where, "topic": "orders.out",
                    "bytes": len('{"id":2}')}})
                self.assertEqual(self.recv(pull), [b"orders.out", b'{"id":2}'])
                self.wait_events(sb, 1, pipeline=name)
                self.assertEqual([r["status"] for r in self.invocations(sb, name, 2)],
                                 ["ok", "ok"])
                self.wait_log(sb, name, "connected a push socket to %s; it stays open for the "
                              "next events" % where)
                # One socket (one worker: concurrency 1), one line when it is made,
                # none per message.
                self.assertEqual(sum("socket" in m for m in self.logs(sb, name)), 1)
                self.stop(d)
                pull.close()

    def test_many_events_from_concurrent_threads_all_arrive(self):
        where = endpoint()
        pull = self.receiver(zmq.PULL, where)
        sb, d = self.start(zmq_pipeline("many", [fwd_step({"endpoint": where})],
                                        isolation="thread", concurrency=4),
                           zmq_pipeline("many_p", [fwd_step({"endpoint": where})],
                                        concurrency=2))
        n = 200
        lines = "\n".join(compact({"n": i}) for i in range(n)) + "\n"
        for topic in ("many.x", "many_p.x"):
            harness.publish_lines(self, sb, topic, lines)
        got = []
        for _ in range(2 * n):
            topic, payload = self.recv(pull)
            got.append((topic, json.loads(payload)["n"]))
        # The default topic is the pipeline's name.
        self.assertEqual(sorted(got), sorted([(b"many", i) for i in range(n)] +
                                             [(b"many_p", i) for i in range(n)]))
        self.wait_events(sb, n, pipeline="many")
        self.wait_events(sb, n, pipeline="many_p")
        self.stop(d)

    def test_a_missing_receiver_is_a_clear_failure_on_time(self):
        for isolation in ("process", "thread"):
            with self.subTest(isolation=isolation):
                where = endpoint()  # nobody listens here
                name = "nobody_" + isolation
                sb, d = self.start(zmq_pipeline(name, [fwd_step({"endpoint": where},
                                                                timeout_ms=400)],
                                                isolation=isolation))
                started = time.monotonic()
                rc, out = self.invoke(sb, name, {"lost": False})
                elapsed = time.monotonic() - started
                self.assertEqual(rc, 1, out)
                self.assertEqual(out["errorType"], "ForwardTimeout", out)
                self.assertRegex(out["errorMessage"],
                                 r"^nothing took the message at %s within \d+ ms: no PULL socket "
                                 r"is bound there, or every receiver's queue is full\. Start the "
                                 r"receiver \(a PULL socket bound to %s\), or raise the step's "
                                 r'"timeout_ms"$' % (where, where))
                self.assertLess(elapsed, 5)
                inv = self.invocations(sb, name, 1)
                self.assertEqual([r["status"] for r in inv], ["error"])
                self.assertLess(inv[0]["duration_ms"], 400 + 300)
                # Once a receiver appears, the same (cached) socket delivers.
                pull = self.receiver(zmq.PULL, where)
                rc, out = self.invoke(sb, name, {"lost": False})
                self.assertEqual(rc, 0, out)
                self.assertEqual(self.recv(pull), [name.encode(), b'{"lost":false}'])
                stop_started = time.monotonic()
                self.stop(d)
                self.assertLess(time.monotonic() - stop_started, 5)
                pull.close()

    def test_chained_after_exec_forwards_the_previous_steps_response(self):
        """Directory trigger -> exec (a script's JSON) -> zmq_forward: what
        arrives is the exec step's response, not the S3 event."""
        where = endpoint()
        pull = self.receiver(zmq.PULL, where)
        sb = self.sandbox(tcp_zmq_config())
        sb.add_pipeline({"name": "chain", "trigger": {"directory": "inbox"}, "steps": [
            {"name": "describe", "handler": "exec.handler", "config": {"command": [
                sys.executable, "-c",
                "import json, sys; o = json.load(sys.stdin)['Records'][0]['s3']['object']; "
                "print(json.dumps({'file': o['key'], 'size': o['size']}))"]}},
            fwd_step({"endpoint": where, "topic": "files.new"})]})
        d = self.daemon(sb)
        sb.drop("inbox/hello.txt", "hello\n")
        topic, payload = self.recv(pull)
        self.assertEqual(topic, b"files.new")
        self.assertEqual(json.loads(payload), {"file": "hello.txt", "size": 6})
        self.wait_events(sb, 1, pipeline="chain")
        self.stop(d)

    # -- pub --------------------------------------------------------------
    def test_pub_binds_by_default_and_subscribers_get_every_message(self):
        for isolation in ("process", "thread"):
            with self.subTest(isolation=isolation):
                where = endpoint()
                name = "pub_" + isolation
                sb, d = self.start(zmq_pipeline(name, [fwd_step(
                    {"endpoint": where, "socket": "pub", "topic": "news.sports"})],
                    isolation=isolation, concurrency=1))
                # Two subscribers connect to the daemon's PUB (it binds on first use).
                subs = [self.receiver(zmq.SUB, where, bind=False, topics=(b"news.",)),
                        self.receiver(zmq.SUB, where, bind=False, topics=(b"news.sports",))]
                self.wait_until_subscribed(sb, name + ".p", subs[0], lambda i: {"probe": i})
                self.wait_until_subscribed(sb, name + ".p", subs[1], lambda i: {"probe": i})
                for s in subs:  # drop probes that reached one before the other
                    while s.poll(300):
                        s.recv_multipart()
                for i in range(5):
                    self.publish(sb, name + ".x", {"n": i})
                for s in subs:
                    self.assertEqual([self.recv(s) for _ in range(5)],
                                     [[b"news.sports", compact({"n": i}).encode()]
                                      for i in range(5)])
                self.wait_log(sb, name, "bound a pub socket to %s" % where)
                self.stop(d)
                for s in subs:
                    s.close()

    def test_pub_can_connect_to_a_bound_subscriber(self):
        where = endpoint()
        sub = self.receiver(zmq.SUB, where, bind=True)
        sb, d = self.start(zmq_pipeline("pubc", [fwd_step(
            {"endpoint": where, "socket": "pub", "bind": False, "topic": "t"})],
            isolation="thread", concurrency=3))
        self.wait_until_subscribed(sb, "pubc.p", sub, lambda i: {"probe": i})
        while sub.poll(300):
            sub.recv_multipart()
        self.publish(sb, "pubc.x", {"last": True})
        self.assertEqual(self.recv(sub), [b"t", b'{"last":true}'])
        self.stop(d)

    def test_a_second_worker_cannot_bind_the_same_endpoint_and_says_why(self):
        where = endpoint()
        sb, d = self.start(
            zmq_pipeline("b1", [fwd_step({"endpoint": where, "socket": "pub"})]),
            zmq_pipeline("b2", [fwd_step({"endpoint": where, "socket": "pub"})]))
        rc, out = self.invoke(sb, "b1", {})
        self.assertEqual(rc, 0, out)
        rc, out = self.invoke(sb, "b2", {})
        self.assertEqual(rc, 1, out)
        self.assertEqual(out["errorType"], "ForwardError", out)
        self.assertEqual(out["errorMessage"],
                         "cannot bind the pub socket to %s: the address is in use, by another "
                         "program or another sluice worker process (with \"isolation\": "
                         "\"process\" every pipeline, and each of its \"concurrency\" slots, "
                         "has its own worker): bind from one worker only, use \"isolation\": "
                         "\"thread\", or let the receivers bind and set \"bind\": false"
                         % where)
        self.stop(d)

    def test_reload_rebinds_after_destroy(self):
        """SIGHUP runs destroy (closing the bound socket) and init again; the
        next event binds the same endpoint afresh."""
        where = endpoint()
        sb, d = self.start(zmq_pipeline("rb", [fwd_step({"endpoint": where, "socket": "pub"})],
                                        isolation="thread"))
        self.assertEqual(self.invoke(sb, "rb", {"n": 1})[0], 0)
        d.send_signal(signal.SIGHUP)
        self.wait_for(lambda: "reloaded" in d.log(), what="the reload")
        rc, out = self.invoke(sb, "rb", {"n": 2})
        self.assertEqual(rc, 0, out)
        self.stop(d)

    # -- configuration ----------------------------------------------------
    def test_configuration_errors_say_how_to_fix_them(self):
        # What the declared keys settle: `sluice check`, before anything runs.
        checked = [
            ({}, 'config: missing required key "endpoint": the ZeroMQ endpoint to send to'),
            ({"endpoint": 5}, "config.endpoint: expected a string, got a number"),
            ({"endpoint": "tcp://127.0.0.1:1", "topics": "x"},
             'config: unknown key "topics" (did you mean "topic"?)'),
            ({"endpoint": "tcp://127.0.0.1:1", "bind": "yes"},
             "config.bind: expected true or false, got a string"),
            ({"endpoint": "tcp://127.0.0.1:1", "topic": 3},
             "config.topic: expected a string, got a number"),
        ]
        sb = self.sandbox(tcp_zmq_config())
        for i, (cfg, _) in enumerate(checked):
            sb.add_pipeline(zmq_pipeline("k%d" % i, [fwd_step(cfg)]))
        r = sb.cli("check")
        self.assertEqual(r.returncode, 1, r.stderr)
        for i, (cfg, want) in enumerate(checked):
            with self.subTest(config=cfg):
                self.assertIn("%s: steps[0] (forward).%s" % (sb.pipeline_file("k%d" % i), want),
                              r.stderr)
        # What the plugin's create refuses, and what only connecting shows.
        cases = [
            ({"endpoint": "tcp://127.0.0.1:1", "socket": "dealer"}, "Runtime.InitError",
             'config.socket must be "push"'),
            ({"endpoint": ""}, "Runtime.InitError", "config.endpoint must be a ZeroMQ endpoint "
             "string"),
            ({"endpoint": "127.0.0.1:5560"}, "ForwardError",
             "cannot connect the push socket to 127.0.0.1:5560: Invalid argument (endpoints look "
             "like tcp://127.0.0.1:5560"),
        ]
        sb, d = self.start(*[zmq_pipeline("c%d" % i, [fwd_step(cfg)], isolation="thread")
                             for i, (cfg, _, _) in enumerate(cases)])
        for i, (cfg, error_type, want) in enumerate(cases):
            with self.subTest(config=cfg):
                rc, out = self.invoke(sb, "c%d" % i, {})
                self.assertEqual(rc, 1, out)
                self.assertEqual(out["errorType"], error_type, out)
                self.assertIn(want, out["errorMessage"])
        self.stop(d)

    def test_binding_beyond_loopback_needs_allow_remote(self):
        """Issue 21: the daemon's own exposure rule. A bound endpoint other
        machines can reach is refused (the plugin has no authentication)
        unless the step says "allow_remote": true; loopback and ipc:// are
        fine as they are."""
        port = endpoint().rsplit(":", 1)[1]
        cases = [
            ("wide", {"endpoint": "tcp://0.0.0.0:%s" % port, "bind": True}, False),
            ("star", {"endpoint": "tcp://*:%s" % port, "socket": "pub"}, False),
            ("eth", {"endpoint": "tcp://eth0:%s" % port, "bind": True}, False),
            ("opted", {"endpoint": "tcp://0.0.0.0:%s" % port, "bind": True,
                       "allow_remote": True}, True),
        ]
        sb, d = self.start(*[zmq_pipeline(name, [fwd_step(cfg)], isolation="thread")
                             for name, cfg, _ in cases])
        for name, cfg, allowed in cases:
            with self.subTest(config=cfg):
                rc, out = self.invoke(sb, name, {})
                self.assertEqual(rc, 1, out)
                if allowed:  # bound, then nobody took the message
                    self.assertEqual(out["errorType"], "ForwardTimeout", out)
                else:
                    self.assertEqual(out["errorType"], "Runtime.InitError", out)
                    self.assertIn("makes it reachable from other machines without "
                                  "authentication", out["errorMessage"])
                    self.assertIn('set "allow_remote": true', out["errorMessage"])
        self.stop(d)

    # -- the sample pipeline ----------------------------------------------
    def test_the_sample_pipeline_works_as_shipped(self):
        src = os.path.join(harness.env_path("SLUICE_SOURCE_DIR"), "pipelines", "forward.json")
        with open(src) as f:
            sample = json.load(f)
        sb = self.sandbox(tcp_zmq_config())
        # The shipped endpoint, moved to a free port so tests can run in parallel.
        step = sample["steps"][0]
        shipped = step["config"]["endpoint"]
        self.assertTrue(shipped.startswith("tcp://127.0.0.1:"), shipped)
        where = endpoint()
        step["config"]["endpoint"] = where
        sb.add_pipeline(sample)
        check = sb.cli("check")
        self.assertEqual(check.returncode, 0, check.stderr)
        pull = self.receiver(zmq.PULL, where)
        d = self.daemon(sb)
        prefix = sample["trigger"]["zmq"]["topic"]
        self.publish(sb, prefix + "demo", {"hello": "world"})
        topic, payload = self.recv(pull)
        self.assertEqual(topic, step["config"]["topic"].encode())
        self.assertEqual(json.loads(payload), {"hello": "world"})
        self.wait_events(sb, 1, pipeline=sample["name"])
        self.stop(d)
        pull.close()


if __name__ == "__main__":
    harness.main()
