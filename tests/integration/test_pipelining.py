"""Pipelining (docs/isolation.md#pipelining): while a function's workers are
all busy with fast handlers, the daemon sends a worker the next invocations
before it has answered the one it runs. Each event still runs once; a crash
or a timeout is charged to the invocation that ran, never to those queued
behind it; a queued invocation's time limit counts from when it starts."""

import json
import re
import urllib.request

import harness
from cases import ScriptRuntimeCase, script_step
from test_runtime_node import NODE
from test_runtime_python import PYTHON

APP = '''\
import os, time

def handler(event, context):
    if event.get("crash"):
        os._exit(3)
    if event.get("hang"):
        time.sleep(60)
    if event.get("nap_ms"):
        time.sleep(event["nap_ms"] / 1000.0)
    print("ran %d remaining %d pid %d" % (event["i"], context.get_remaining_time_in_millis(),
                                          os.getpid()))
    return event["i"]
'''

NODE_APP = '''\
exports.handler = async (event, context) => {
  if (event.nap_ms) await new Promise((done) => setTimeout(done, event.nap_ms));
  console.log(`ran ${event.i} remaining ${context.getRemainingTimeInMillis()} pid ${process.pid}`);
  return event.i;
};
'''


def metric(sb, name):
    url = "http://%s/metrics" % sb.config["admin"]["listen"]
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
    return int(m.group(1)) if m else None


class Pipelining(ScriptRuntimeCase):

    interpreters = {"python": PYTHON, "node": NODE}
    code_files = {"code/py/app.py": APP, "code/js/app.js": NODE_APP}

    def start_flood(self, events, timeout_ms=10000, retry=None, runtime="python3"):
        if runtime == "c":
            step = {"name": "main", "handler": "nap.handler", "timeout_ms": timeout_ms}
        else:
            step = script_step(runtime, "app.handler", "main",
                               "code/py" if runtime == "python3" else "code/js",
                               timeout_ms=timeout_ms)
        if retry:
            step["retry"] = retry
        sb, d = self.start({"name": "pp", "trigger": {"zmq": {"topic": "pp."}},
                            "isolation": "process", "concurrency": 1, "steps": [step]})
        # a first event alone: the function is known to be fast before the flood
        harness.publish_lines(self, sb, "pp.x", json.dumps({"i": -1}) + "\n")
        self.wait_events(sb, 1, pipeline="pp")
        harness.publish_lines(self, sb, "pp.x", "".join(json.dumps(e) + "\n" for e in events))
        return sb, d

    def runs(self, sb):
        """{i: [(status, attempt)]} over the invocations of events with an "i"."""
        out = {}
        for r in sb.db_rows("SELECT e.payload, i.status, i.attempt FROM invocations i JOIN "
                            "events e ON e.event_id = i.event_id AND e.pipeline = i.pipeline "
                            "WHERE i.pipeline = 'pp' ORDER BY i.id"):
            out.setdefault(json.loads(r["payload"])["i"], []).append((r["status"], r["attempt"]))
        return out

    def ran_lines(self, sb):
        return [m.groups() for m in (re.match(r"ran (-?\d+) remaining (\d+) pid (\d+)", r["message"])
                                     for r in sb.db_rows("SELECT message FROM logs WHERE "
                                                         "pipeline = 'pp' ORDER BY id")) if m]

    def test_a_flood_through_one_worker_is_pipelined_and_each_event_runs_once(self):
        n = 300
        sb, d = self.start_flood([{"i": i} for i in range(n)])
        self.wait_settled(sb, n + 1, pipeline="pp")
        runs = self.runs(sb)
        self.assertEqual(sorted(runs), list(range(-1, n)))
        self.assertTrue(all(v == [("ok", 1)] for v in runs.values()),
                        [kv for kv in runs.items() if kv[1] != [("ok", 1)]][:5])
        self.assertEqual(sb.count("events WHERE pipeline = 'pp' AND state = 'done'"), n + 1)
        self.assertGreater(metric(sb, "sluice_worker_pipelined_total"), 0,
                           "a flood through one busy worker is sent ahead of its answers")
        lines = self.ran_lines(sb)
        self.assertEqual(len({pid for _, _, pid in lines}), 1, "concurrency 1: one worker")
        self.stop(d)

    def test_c_workers_are_pipelined_too(self):
        n = 300
        sb = self.sandbox(harness.tcp_zmq_config())
        sb.add_pipeline({"name": "cp", "trigger": {"zmq": {"topic": "cp."}},
                         "isolation": "process", "concurrency": 1,
                         "steps": [{"name": "echo", "handler": "echo.handler"}]})
        d = self.daemon(sb)
        harness.publish_lines(self, sb, "cp.x", '{"i": -1}\n')
        self.wait_events(sb, 1, pipeline="cp")
        harness.publish_lines(self, sb, "cp.x", "".join('{"i": %d}\n' % i for i in range(n)))
        self.wait_settled(sb, n + 1, pipeline="cp")
        self.assertEqual(sb.count("events WHERE pipeline = 'cp' AND state = 'done'"), n + 1)
        self.assertEqual(sb.count("invocations WHERE pipeline = 'cp' AND status = 'ok' AND "
                                  "attempt = 1"), n + 1)
        self.assertGreater(metric(sb, "sluice_worker_pipelined_total"), 0)
        self.stop(d)

    def test_a_crash_is_charged_to_the_invocation_that_ran_not_to_those_queued_behind(self):
        n = 200
        events = [{"i": i} for i in range(n)]
        events[60] = {"i": 60, "crash": True}
        sb, d = self.start_flood(events, retry={"max_attempts": 2, "interval_ms": 10})
        self.wait_settled(sb, n + 1, pipeline="pp")
        runs = self.runs(sb)
        self.assertEqual(runs.pop(60), [("crashed", 1), ("crashed", 2)])
        self.assertTrue(all(v == [("ok", 1)] for v in runs.values()),
                        [kv for kv in runs.items() if kv[1] != [("ok", 1)]][:5])
        self.assertEqual(sb.count("events WHERE pipeline = 'pp' AND state = 'dead'"), 1)
        self.assertEqual(sb.count("events WHERE pipeline = 'pp' AND state = 'done'"), n)
        self.assertIn("queued behind it", d.log(),
                      "the invocations sent behind the crashed one were handed on")
        self.stop(d)

    def test_a_hang_times_out_alone_and_the_queue_behind_it_runs(self):
        n = 100
        events = [{"i": i} for i in range(n)]
        events[30] = {"i": 30, "hang": True}
        sb, d = self.start_flood(events, timeout_ms=1500)
        self.wait_settled(sb, n + 1, pipeline="pp")
        runs = self.runs(sb)
        self.assertEqual(runs.pop(30), [("timeout", 1)])
        self.assertTrue(all(v == [("ok", 1)] for v in runs.values()),
                        [kv for kv in runs.items() if kv[1] != [("ok", 1)]][:5])
        self.stop(d)

    def check_a_queued_invocation_gets_its_whole_time_limit(self, runtime):
        # the slow event takes 1.2 s of a 2 s limit; events sent behind it
        # wait for it, and their limit must count from their own start
        n = 60
        events = [{"i": i} for i in range(n)]
        events[20] = {"i": 20, "nap_ms": 1200}
        sb, d = self.start_flood(events, timeout_ms=2000, runtime=runtime)
        self.wait_settled(sb, n + 1, pipeline="pp")
        runs = self.runs(sb)
        self.assertTrue(all(v == [("ok", 1)] for v in runs.values()), runs)
        self.assertGreater(metric(sb, "sluice_worker_pipelined_total"), 0)
        remaining = {int(i): int(ms) for i, ms, _ in self.ran_lines(sb) if i != "20"}
        self.assertEqual(len(remaining), n)
        short = {i: ms for i, ms in remaining.items() if ms < 1500}
        self.assertEqual(short, {}, "invocations whose limit counted while they were queued")
        self.stop(d)

    def test_a_queued_invocation_gets_its_whole_time_limit_python(self):
        self.check_a_queued_invocation_gets_its_whole_time_limit("python3")

    def test_a_queued_invocation_gets_its_whole_time_limit_node(self):
        if not NODE:
            self.skipTest("node is not installed")
        self.check_a_queued_invocation_gets_its_whole_time_limit("nodejs")

    def test_a_queued_invocation_gets_its_whole_time_limit_c(self):
        self.check_a_queued_invocation_gets_its_whole_time_limit("c")


if __name__ == "__main__":
    harness.main()
