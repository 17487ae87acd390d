"""Day-to-day operation of a running daemon (docs/operations.md): the admin
listener's /metrics (every line parsed as the Prometheus text format),
/healthz and /status, `sluice status`, `sluice logs --follow` and `--json`,
the loopback rule for admin.listen, and the systemd notifications (READY,
RELOADING, STOPPING, WATCHDOG) sent to a NOTIFY_SOCKET the test owns."""

import json
import math
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import urllib.request

import harness
from harness import SluiceTestCase, echo_pipeline

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\\\|\\"|\\n)*"'
SAMPLE = re.compile(r"^(%s)(?:\{((?:%s)(?:,%s)*)?\})? (\S+)$" % (NAME, LABEL, LABEL))


def parse_exposition(text):
    """Every line of a text-format exposition, strictly: HELP and TYPE before
    a family's samples, each family once, sample values numbers. Returns
    {family: {"type": t, "samples": [(name, {labels}, value)]}}."""
    families, current = {}, None
    assert text.endswith("\n"), "the exposition ends with a newline"
    for line in text.splitlines():
        m = re.match(r"^# (HELP|TYPE) (%s) (.+)$" % NAME, line)
        if m:
            fam = families.setdefault(m.group(2), {"type": None, "samples": [], "help": None})
            if m.group(1) == "TYPE":
                assert fam["type"] is None and not fam["samples"], "TYPE once, first: " + line
                assert m.group(3) in ("counter", "gauge", "histogram", "summary", "untyped"), line
                fam["type"] = m.group(3)
            else:
                fam["help"] = m.group(3)
            current = m.group(2)
            continue
        assert not line.startswith("#"), "unexpected comment: " + line
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        fam = name if name in families else base
        assert fam == current, "sample %s outside its family (%s)" % (name, current)
        parsed = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', labels))
        families[fam]["samples"].append((name, parsed, float(value)))
    for name, fam in families.items():
        assert fam["type"] and fam["help"], "family %s lacks TYPE or HELP" % name
        if fam["type"] == "counter":
            assert name.endswith("_total"), "a counter's name ends in _total: " + name
    return families


def samples(families, family, name=None, **labels):
    return [v for n, l, v in families[family]["samples"]
            if (name is None or n == name) and all(l.get(k) == w for k, w in labels.items())]


def line_reader(stream):
    """Lines of stream as they come, from a queue (get with a deadline)."""
    q = queue.Queue()
    threading.Thread(target=lambda: [q.put(line) for line in stream], daemon=True).start()
    return lambda: q.get(timeout=harness.DEFAULT_TIMEOUT_S)


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.headers.get("content-type"), r.read().decode()


class Metrics(SluiceTestCase):

    def start(self):
        sb = self.sandbox()
        sb.add_pipeline(echo_pipeline("fine", "inbox/fine"))
        sb.add_pipeline({"name": "flaky", "trigger": {"directory": "inbox/flaky"},
                         "steps": [{"name": "boom", "handler": "fail.error",
                                    "retry": {"max_attempts": 2, "interval_ms": 10}}],
                         "isolation": "thread"})
        d = self.daemon(sb)
        return sb, d, "http://%s" % sb.config["admin"]["listen"]

    def test_metrics_parse_and_count_what_ran(self):
        sb, d, base = self.start()
        for i in range(5):
            sb.drop("inbox/fine/%d.txt" % i)
        sb.drop("inbox/flaky/x.txt")
        self.wait_events(sb, 5, pipeline="fine")
        self.wait_events(sb, 1, state="dead", pipeline="flaky")
        status, ctype, text = get(base + "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(ctype.startswith("text/plain; version=0.0.4"), ctype)
        fams = parse_exposition(text)
        inv = "sluice_invocations_total"
        self.assertEqual(fams[inv]["type"], "counter")
        self.assertEqual(samples(fams, inv, pipeline="fine", step="echo", status="ok"), [5])
        self.assertEqual(samples(fams, inv, pipeline="flaky", step="boom", status="error"), [2])
        self.assertEqual(samples(fams, "sluice_retries_total", pipeline="flaky", step="boom"), [1])
        hist = "sluice_invocation_duration_seconds"
        self.assertEqual(fams[hist]["type"], "histogram")
        buckets = [(l["le"], v) for n, l, v in fams[hist]["samples"]
                   if n == hist + "_bucket" and l["pipeline"] == "fine"]
        les = [math.inf if le == "+Inf" else float(le) for le, _ in buckets]
        self.assertEqual(les, sorted(les))
        self.assertEqual(buckets[-1][0], "+Inf")
        counts = [v for _, v in buckets]
        self.assertEqual(counts, sorted(counts), "buckets are cumulative")
        self.assertEqual(counts[-1], 5)
        self.assertEqual(samples(fams, hist, hist + "_count", pipeline="fine"), [5])
        for gauge in ("sluice_queue_depth", "sluice_journal_backlog"):
            self.assertEqual(fams[gauge]["type"], "gauge")
            self.assertEqual(sorted(l["pipeline"] for _, l, _ in fams[gauge]["samples"]),
                             ["fine", "flaky"])
        self.assertEqual(samples(fams, "sluice_journal_backlog", pipeline="fine"), [0])
        self.assertEqual(samples(fams, "sluice_workers"), [0]) # thread isolation
        self.assertGreater(samples(fams, "sluice_database_bytes")[0], 0)
        self.assertIn("sluice_cold_starts_total", fams)

    def test_journal_backlog_counts_what_waits(self):
        sb = self.sandbox()
        sb.add_pipeline({"name": "slow", "trigger": {"directory": "inbox/slow"},
                         "steps": [{"name": "nap", "handler": "fail.slow"}],
                         "concurrency": 1, "isolation": "thread"})
        sb.add_pipeline(echo_pipeline("fine", "inbox/fine"))
        d = self.daemon(sb)
        base = "http://%s" % sb.config["admin"]["listen"]
        for i in range(10):  # 300 ms each, one at a time: seconds of backlog
            sb.drop("inbox/slow/%d.txt" % i)

        def backlog(name):
            return samples(parse_exposition(get(base + "/metrics")[2]),
                           "sluice_journal_backlog", pipeline=name)[0]
        self.wait_for(lambda: backlog("slow") >= 2, what="a backlog of slow events")
        self.assertEqual(backlog("fine"), 0)
        self.wait_events(sb, 10, pipeline="slow")
        self.wait_for(lambda: backlog("slow") == 0, what="the backlog drained")
        d.stop()

    def test_healthz_status_and_sluice_status(self):
        sb, d, base = self.start()
        sb.drop("inbox/flaky/x.txt")
        self.wait_events(sb, 1, state="dead", pipeline="flaky")
        self.assertEqual(get(base + "/healthz")[:3:2], (200, "ok\n"))
        with self.assertRaises(urllib.error.HTTPError) as cm:
            get(base + "/nothing")
        self.assertEqual(cm.exception.code, 404)
        status = json.loads(get(base + "/status")[2])
        self.assertEqual(status["pid"], d.pid())
        by_name = {p["name"]: p for p in status["pipelines"]}
        self.assertEqual(by_name["fine"]["trigger"], "directory:inbox/fine")
        self.assertEqual((by_name["flaky"]["invocations"], by_name["flaky"]["errors"]), (2, 2))
        self.assertIsNotNone(by_name["flaky"]["last_error"])
        self.assertIsNone(by_name["fine"]["last_error"])
        r = sb.cli("status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"(?m)^fine\s+directory:inbox/fine\s+0\s+0\s+0\s+0$")
        self.assertRegex(r.stdout, r"(?m)^flaky\s+directory:inbox/flaky\s+0\s+0\s+2\s+2$")
        self.assertIn("last error", r.stdout)
        r = sb.cli("status", "--json")
        self.assertEqual(json.loads(r.stdout)["pid"], d.pid())
        self.stop(d)
        r = sb.cli("status")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no sluice daemon answers on %s" % sb.config["admin"]["listen"], r.stderr)

    def test_logs_follow_and_json(self):
        sb, d, base = self.start()
        sb.drop("inbox/fine/first.txt")
        self.wait_events(sb, 1, pipeline="fine")
        r = sb.cli("logs", "--json")
        rows = [json.loads(line) for line in r.stdout.splitlines()]
        self.assertEqual(len(rows), 1, r.stdout)
        self.assertEqual((rows[0]["pipeline"], rows[0]["step"], rows[0]["status"]),
                         ("fine", "echo", "ok"))
        self.assertEqual(rows[0]["source"], "directory:inbox/fine")
        follow = subprocess.Popen([harness.sluice_bin(), "logs", "-c", sb.config_path, "--follow",
                                   "--json", "--limit", "1"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, cwd=sb.cwd)
        next_line = line_reader(follow.stdout)
        try:
            # the last row first; once it is out, what follows is what lands later
            self.assertEqual(json.loads(next_line())["id"], rows[0]["id"])
            sb.drop("inbox/flaky/later.txt")
            lines = [json.loads(next_line()) for _ in range(2)]
            self.assertEqual([(l["pipeline"], l["attempt"], l["status"]) for l in lines],
                             [("flaky", 1, "error"), ("flaky", 2, "error")])
        finally:
            follow.send_signal(signal.SIGINT)
            out, err = follow.communicate(timeout=20)
        self.assertEqual(follow.returncode, 0, err)
        self.assertEqual(out, "")

    def test_admin_beyond_loopback_needs_allow_remote(self):
        sb = self.sandbox({"admin": {"listen": "0.0.0.0:%d" % harness.free_port()}})
        r = sb.cli("check")
        self.assertEqual(r.returncode, 1)
        self.assertIn("admin.listen: 0.0.0.0:", r.stderr)
        self.assertIn("admin.allow_remote", r.stderr)
        sb.config["admin"]["allow_remote"] = True
        sb.write_config()
        self.assertEqual(sb.cli("check").returncode, 0)


class SystemdNotify(SluiceTestCase):

    def test_ready_reloading_watchdog_stopping(self):
        sb = self.sandbox()
        sb.add_pipeline(echo_pipeline("fine", "inbox/fine"))
        path = sb.path("notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        self.addCleanup(sock.close)
        sock.settimeout(harness.DEFAULT_TIMEOUT_S)
        old = {k: os.environ.get(k) for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
        os.environ.update(NOTIFY_SOCKET=path, WATCHDOG_USEC="200000")
        try:
            d = self.daemon(sb)
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

        def until(want):
            while True:
                msg = sock.recv(4096).decode()
                if want in msg.split("\n"):
                    return msg

        self.assertIn("STATUS=running", until("READY=1"))
        until("WATCHDOG=1")
        until("WATCHDOG=1") # again: it is a timer, not a one-off
        d.send_signal(signal.SIGHUP)
        self.assertRegex(until("RELOADING=1"), r"MONOTONIC_USEC=\d+")
        self.assertIn("STATUS=reloaded", until("READY=1"))
        d.send_signal(signal.SIGTERM)
        until("STOPPING=1")
        d.wait_exit()


if __name__ == "__main__":
    harness.main()
