"""The crash test of issue 5: events published over ZeroMQ and files
dropped into a watched folder while the daemon is killed with SIGKILL at
random moments, restarted, and killed again, several times over. At the end
every event is done exactly once in the journal, every done event has an ok
invocation of each of its steps, the database is intact, and the number of
steps that ran more than once (at-least-once execution) is reported.

What may be lost, by the guarantees (docs/reliability.md): a ZeroMQ message
the daemon had not journaled when it died. The test behaves like a careful
producer: after the last crash it finds what is missing from the journal and
publishes it again (without ids for `publish --lines`; with the same ids, all
of them, for the pyzmq producer, whose resends must be recognised as
duplicates).

Knobs (environment): SLUICE_CRASH_SEED, SLUICE_CRASH_ROUNDS (default 5),
SLUICE_CRASH_EVENTS (default 5000, half through `sluice publish --lines`,
half through a pyzmq PUSH with event ids), SLUICE_CRASH_FILES (default 500).
The seed is printed, and repeated in every failure message."""

import json
import os
import random
import subprocess
import sys
import time

import harness
from harness import free_port, endpoint
from harness import SluiceTestCase

try:
    import zmq
except ImportError:  # pragma: no cover - python3-zmq is a test dependency
    zmq = None


def env_int(name, default):
    return int(os.environ.get(name, default))


def children(pid):
    """Process ids of pid's children (its worker processes)."""
    out = set()
    try:
        for task in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                out.update(int(c) for c in f.read().split())
    except OSError:
        pass
    return out


def gone(pid):
    """True once pid has exited (a zombie counts as exited)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


STEPS = ("first", "second")


class CrashLoop(SluiceTestCase):

    def setUp(self):
        super().setUp()
        if zmq is None:
            self.skipTest("python3-zmq is not installed for %s" % sys.executable)
        self.seed = env_int("SLUICE_CRASH_SEED", int(time.time() * 1000) % 1000000)
        self.rng = random.Random(self.seed)
        sys.stderr.write("\n[crash loop] seed %d (rerun with SLUICE_CRASH_SEED=%d)\n"
                         % (self.seed, self.seed))
        self.ctx = zmq.Context()
        self.push = None
        self.publishers = []
        self.addCleanup(self.cleanup)

    def cleanup(self):
        for p in self.publishers:
            if p.poll() is None:
                p.kill()
                p.wait()
        if self.push is not None:
            self.push.close(0)
        self.ctx.term()

    def _with_logs(self, text):
        return super()._with_logs(text) + "\n[crash loop] seed %d (rerun with " \
            "SLUICE_CRASH_SEED=%d)\n" % (self.seed, self.seed)

    # -- producers --------------------------------------------------------------
    def publish_lines(self, sb, numbers):
        """`sluice publish --lines` in the background. Its PUSH socket
        reconnects to the next daemon; it gives up after --timeout without one."""
        path = sb.path("lines-%d.jsonl" % len(self.publishers))
        with open(path, "w") as f:
            for n in numbers:
                f.write(json.dumps({"via": "lines", "n": n}) + "\n")
        with open(path) as stdin:
            p = subprocess.Popen([harness.sluice_bin(), "publish", "-c", sb.config_path,
                                  "--lines", "--timeout", "8000", "crash.lines"],
                                 stdin=stdin, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, cwd=sb.cwd)
        self.publishers.append(p)

    def publish_push(self, sb, numbers, block=False):
        """The pyzmq producer: event ids in the third frame. During the crash
        rounds it never blocks (what its queue cannot take is sent again at
        the end); the final resend blocks until the daemon takes each one."""
        if self.push is None:
            self.push = self.ctx.socket(zmq.PUSH)
            self.push.setsockopt(zmq.LINGER, 0)
            self.push.setsockopt(zmq.SNDTIMEO, 60000)
            self.push.connect(sb.config["zmq"]["pull"])
        for n in numbers:
            frames = [b"crash.push", json.dumps({"via": "push", "n": n}).encode(),
                      b"push-%d" % n]
            try:
                self.push.send_multipart(frames, 0 if block else zmq.NOBLOCK)
            except zmq.Again:
                if block:
                    self.fail("the daemon took no message for 60 s\n" + self.daemon_logs())

    def drop_files(self, sb, numbers):
        for n in numbers:
            sb.drop("inbox/file-%04d.txt" % n, "file %d\n" % n)

    # -- the journal ----------------------------------------------------------------
    def progress(self, sb):
        rows = sb.db_rows("SELECT state, count(*) AS n FROM events GROUP BY state")
        return {r["state"]: r["n"] for r in rows}

    def until(self, sb, what, counter, target):
        """Poll until counter() reaches target, or stops moving for 3 s (what
        a producer lost in a crash never arrives); fail after 60 s."""
        last, still_since = None, time.monotonic()
        deadline = still_since + 60

        def reached():
            nonlocal last, still_since
            value = counter()
            if value != last:
                last, still_since = value, time.monotonic()
            return value >= target or time.monotonic() - still_since > 3
        self.wait_for(reached, timeout=deadline - time.monotonic(),
                      what=lambda: "%s to reach %d (at %r)" % (what, target, last))

    def kill_at_a_random_moment(self, sb, d, round_no, base, planned):
        """Kill -9 when the journal reaches a random point of this round's
        work (journaled, or finished), or at once, as the seed decides.
        base: the journal's counts before the round's work was sent."""
        mode = self.rng.choice(["journaled", "finished", "finished", "at-once"])
        target = self.rng.randint(0, planned)
        if mode == "journaled":
            self.until(sb, "the journal", lambda: sb.count("events"),
                       sum(base.values()) + target)
        elif mode == "finished":
            self.until(sb, "the finished events",
                       lambda: sb.count("events WHERE state = 'done'"),
                       base.get("done", 0) + target)
        workers = children(d.pid())
        d.kill9()
        after = self.progress(sb)
        sys.stderr.write("[crash loop] round %d: kill -9 (%s, target %d of %d): journal %s\n"
                         % (round_no, mode, target, planned, after))
        if d.sanitizer_report():
            self.fail("a sanitizer reported a problem\n" + d.describe())
        # worker processes end by themselves when the daemon dies
        self.wait_for(lambda: all(gone(p) for p in workers), timeout=30,
                      what="the killed daemon's workers %s to exit" % sorted(workers))

    # -- the test -------------------------------------------------------------------
    def test_kill_9_at_random_moments_loses_nothing_and_finishes_everything_once(self):
        rounds = env_int("SLUICE_CRASH_ROUNDS", 5)
        n_events = env_int("SLUICE_CRASH_EVENTS", 5000)
        n_files = env_int("SLUICE_CRASH_FILES", 500)
        n_lines, n_push = n_events - n_events // 2, n_events // 2

        sb = self.sandbox({"zmq": {"pull": endpoint(), "router": endpoint()}, "workers": 2})
        steps = [{"name": s, "handler": "echo.handler"} for s in STEPS]
        sb.add_pipeline({"name": "events", "trigger": {"zmq": {"topic": "crash."}},
                         "steps": steps})
        sb.add_pipeline({"name": "files", "trigger": {"directory": "inbox"}, "steps": steps})

        def share(total, k):
            """The k-th of `rounds` slices of range(total)."""
            return list(range(total * k // rounds, total * (k + 1) // rounds))

        t0 = time.monotonic()
        for k in range(rounds):
            d = self.daemon(sb)
            if k > 0 and self.rng.random() < 0.25:
                # a crash during recovery, before anything new arrives
                self.kill_at_a_random_moment(sb, d, k, self.progress(sb), 0)
                d = self.daemon(sb)
            lines, push, files = share(n_lines, k), share(n_push, k), share(n_files, k)
            base = self.progress(sb)
            self.publish_lines(sb, lines)
            self.publish_push(sb, push)
            self.drop_files(sb, files)
            self.kill_at_a_random_moment(sb, d, k, base, len(lines) + len(push) + len(files))

        # Recovery. First let every producer of the crash rounds finish (or
        # give up), and drain what they still had in flight into a daemon
        # that is then stopped cleanly: after that nothing is on its way.
        d = self.daemon(sb)
        for p in self.publishers:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.fail("sluice publish did not finish\n" + self.daemon_logs())
        self.push.close(0)
        self.push = None
        self.stop(d)

        # The careful producer: what is not in the journal is published again.
        journaled = {(json.loads(r["payload"])["via"], json.loads(r["payload"])["n"])
                     for r in sb.db_rows("SELECT payload FROM events WHERE pipeline = 'events'")}
        missing_lines = [n for n in range(n_lines) if ("lines", n) not in journaled]
        missing_push = [n for n in range(n_push) if ("push", n) not in journaled]
        sys.stderr.write("[crash loop] lost in flight (not journaled): %d of %d `publish --lines`"
                         " events, %d of %d pyzmq events\n"
                         % (len(missing_lines), n_lines, len(missing_push), n_push))
        d = self.daemon(sb)
        if missing_lines:
            self.publish_lines(sb, missing_lines)
            self.assertEqual(self.publishers[-1].wait(timeout=120), 0, "catch-up publish failed")
        # the pyzmq producer resends everything, with the same ids
        self.publish_push(sb, range(n_push), block=True)
        total = n_events + n_files
        self.wait_events(sb, total, timeout=180)
        self.wait_for(lambda: sb.count("events WHERE duplicates > 0 AND event_id LIKE 'push-%'")
                      >= n_push - len(missing_push), timeout=60,
                      what="the resent pyzmq events counted as duplicates")
        self.stop(d)
        elapsed = time.monotonic() - t0

        # -- every event done, exactly once -------------------------------------
        self.assertEqual(self.progress(sb), {"done": total}, "journal states")
        per_id = sb.db_rows("SELECT pipeline, event_id, count(*) AS n FROM events"
                            " GROUP BY pipeline, event_id HAVING count(*) <> 1")
        self.assertEqual(per_id, [], "event ids journaled more than once")
        rows = sb.db_rows("SELECT payload FROM events WHERE pipeline = 'events'")
        keys = sorted((json.loads(r["payload"])["via"], json.loads(r["payload"])["n"])
                      for r in rows)
        self.assertEqual(keys, sorted([("lines", n) for n in range(n_lines)] +
                                      [("push", n) for n in range(n_push)]),
                         "published events missing or journaled twice")
        self.assertEqual(sb.count("events WHERE pipeline = 'events' AND event_id LIKE 'push-%'"),
                         n_push)
        files = sorted(json.loads(r["payload"])["Records"][0]["s3"]["object"]["key"]
                       for r in sb.db_rows("SELECT payload FROM events WHERE pipeline = 'files'"))
        self.assertEqual(files, ["file-%04d.txt" % n for n in range(n_files)],
                         "files missing or journaled twice")

        # -- every done event ran each step (its ok rows were committed first) --
        ok = {}
        for r in sb.db_rows("SELECT pipeline, event_id, step, count(*) AS n FROM invocations"
                            " WHERE status = 'ok' GROUP BY pipeline, event_id, step"):
            ok[(r["pipeline"], r["event_id"], r["step"])] = r["n"]
        events = sb.db_rows("SELECT pipeline, event_id FROM events")
        missing = [(e["pipeline"], e["event_id"], s) for e in events for s in STEPS
                   if (e["pipeline"], e["event_id"], s) not in ok]
        self.assertEqual(missing[:20], [], "%d done events lack an ok invocation of a step"
                         % len(missing))
        failed = sb.db_rows("SELECT status, error, count(*) AS n FROM invocations"
                            " WHERE status <> 'ok' GROUP BY status, error")
        self.assertEqual(failed, [], "echo never fails; a crash must not look like a failure")
        self.assertEqual(sb.db_value("PRAGMA integrity_check"), "ok")

        # -- the report -------------------------------------------------------------
        invocations = sb.count("invocations")
        once = len(events) * len(STEPS)
        again = sum(n - 1 for n in ok.values())
        sys.stderr.write(
            "[crash loop] seed %d, %d rounds, %.1f s: %d events (%d published, %d files) done "
            "once each; %d invocation rows for %d steps to run: %d step executions repeated "
            "after a crash (%d of them ok)\n"
            % (self.seed, rounds, elapsed, total, n_events, n_files, invocations, once,
               invocations - once, again))


if __name__ == "__main__":
    harness.main()
